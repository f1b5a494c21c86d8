"""The :class:`~gensweep.platform.results.ResultsStore` behaviour a backend must carry: appends
and reads, the partitioned part-file layout, schemas, idempotent retries, dedupe, schema
evolution, value normalisation, hidden and foreign files, compaction and plain Parquet parts.

Mixed into :class:`gensweep.testing.results.ResultsBackendSuite`, which provides ``backend_root``.
"""
from __future__ import annotations

import datetime as dt
import io
import math

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from gensweep.platform.results import ResultsStore, SchemaError, make_row_key


def metric_rows(experiment: str, trial_id: str, steps, **extra) -> list[dict]:
    """Metrics rows of one trial: ``fid = 100 - step`` at each step, plus ``extra`` columns."""
    return [
        {"experiment": experiment, "trial_id": trial_id, "step": s, "fid": 100.0 - s, **extra}
        for s in steps
    ]


class StoreBehaviour:
    """What :class:`ResultsStore` promises on a backend (needs a ``backend_root`` fixture)."""

    @pytest.fixture
    def store(self, backend_root) -> ResultsStore:
        return ResultsStore(*backend_root)

    def test_append_read_roundtrip(self, store):
        assert store.read("metrics").empty
        store.write("metrics", metric_rows("exp-a", "t1", range(5), backbone="inception", eval_n=500))
        store.write("metrics", metric_rows("exp-a", "t2", range(3)))
        df = store.read("metrics", "exp-a").sort_values(["trial_id", "step"]).reset_index(drop=True)
        assert len(df) == 8
        assert list(df["trial_id"]) == ["t1"] * 5 + ["t2"] * 3
        assert list(df["step"]) == [0, 1, 2, 3, 4, 0, 1, 2]
        assert df.loc[0, "fid"] == 100.0
        assert df.loc[0, "backbone"] == "inception"
        assert pd.isna(df.loc[7, "backbone"])  # column absent from the second write
        assert df.loc[0, "row_key"] == make_row_key("exp-a", "t1", 0)
        assert str(df["written_at"].dtype).startswith("datetime64")
        assert store.read("metrics", "other").empty

    def test_layout_is_partitioned_part_files(self, store):
        written = store.write("metrics", metric_rows("exp/with space", "t1", range(2)))
        assert len(written) == 1
        path = written[0]
        assert "/metrics/experiment=exp%2Fwith%20space/part-" in path
        assert path.endswith(".parquet")
        assert store.part_files("metrics", "exp/with space") == written
        assert store.experiments() == ["exp/with space"]

    def test_multiple_tables_and_experiments(self, store):
        started = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
        store.log_experiment("e1", spec={"model": "dcgan"}, versions={"ray": "2.60"}, git_commit="abc",
                             seed=1, started_at=started, status="running")
        store.log_trial("e1", "t1", "completed", config={"lr": 1e-3}, wall_time_s=12.5)
        store.log_metrics("e1", "t1", 10, fid=33.0)
        store.log_artifact("e1", "t1", "sample_grid", "s3://bucket/grid-10.png", step=10)
        store.log_metrics("e2", "t9", 1, fid=50.0)
        # one write spanning two experiments goes to two partitions
        paths = store.write("trials", [
            {"experiment": "e2", "trial_id": "t9", "status": "running"},
            {"experiment": "e3", "trial_id": "t1", "status": "failed", "reason": "boom"},
        ])
        assert len(paths) == 2
        assert store.experiments() == ["e1", "e2", "e3"]

        exp = store.read("experiments")
        assert exp.loc[0, "spec"] == '{"model": "dcgan"}'
        assert exp.loc[0, "started_at"] == pd.Timestamp(started)
        trials = store.read("trials").sort_values("experiment").reset_index(drop=True)
        assert list(trials["status"]) == ["completed", "running", "failed"]
        assert trials.loc[2, "reason"] == "boom"
        assert trials.loc[0, "config"] == '{"lr": 0.001}'
        assert trials.loc[0, "config/lr"] == 0.001  # a config mapping is also flattened
        arts = store.read("artifacts", "e1")
        assert arts.loc[0, "kind"] == "sample_grid" and arts.loc[0, "step"] == 10
        assert len(store.read("metrics")) == 2

    def test_missing_required_column_is_named(self, store):
        with pytest.raises(SchemaError, match="'step'"):
            store.write("metrics", [{"experiment": "e", "trial_id": "t"}])
        with pytest.raises(SchemaError, match="'trial_id'"):
            store.write("trials", [{"experiment": "e", "status": "running"}])
        with pytest.raises(SchemaError, match="status"):
            store.write("trials", [{"experiment": "e", "trial_id": "t", "status": "weird"}])
        with pytest.raises(ValueError, match="unknown results table"):
            store.write("nope", [{"experiment": "e"}])
        assert store.read("metrics").empty and store.experiments() == []

    def test_retry_of_same_batch_is_idempotent(self, store):
        batch = metric_rows("e", "t1", range(20))
        store.write("metrics", batch)
        store.write("metrics", batch)  # e.g. a retry after an ambiguous failure
        store.write("metrics", metric_rows("e", "t1", [3.0]))  # 3.0 is the same step as 3
        assert len(store.part_files("metrics", "e")) == 3
        df = store.read("metrics", "e")
        assert len(df) == 20
        assert df["row_key"].is_unique
        assert len(store.read("metrics", "e", dedupe_rows=False)) == 41

    def test_dedupe_keeps_last_written(self, store):
        t0 = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
        store.write("metrics", metric_rows("e", "t", [1], fid=5.0), written_at=t0 + dt.timedelta(seconds=10))
        store.write("metrics", metric_rows("e", "t", [1], fid=7.0), written_at=t0)  # older, written later
        assert store.read("metrics", "e")["fid"].tolist() == [5.0]
        # trials: a terminal status wins over "running" whatever the timestamps say
        store.log_trial("e", "t", "completed")
        store.log_trial("e", "t", "running")
        assert store.read("trials", "e")["status"].tolist() == ["completed"]
        # a caller-given row key is kept
        store.write("artifacts", [{"experiment": "e", "trial_id": "t", "kind": "checkpoint",
                                   "uri": "a", "row_key": "ckpt-latest"}])
        store.write("artifacts", [{"experiment": "e", "trial_id": "t", "kind": "checkpoint",
                                   "uri": "b", "row_key": "ckpt-latest"}])
        assert store.read("artifacts", "e")["uri"].tolist() == ["b"]

    def test_schema_evolution(self, store):
        store.write("metrics", [
            {"experiment": "e", "trial_id": "t1", "step": s, "fid": 10 + s, "eval_n": 500, "config/lr": 0.1}
            for s in range(3)
        ])
        # later: a new config column, fid and eval_n turn float, a new loss column
        store.write("metrics", [
            {"experiment": "e", "trial_id": "t2", "step": s, "fid": 9.5 + s, "eval_n": 1000.5,
             "config/lr": 0.2, "config/ema": 0.999, "g_loss": 1.25}
            for s in range(2)
        ])
        # and a file where a column changed to an incompatible type
        store.write("metrics", [{"experiment": "e", "trial_id": "t3", "step": 0, "eval_n": "full"}])
        df = store.read("metrics", "e").sort_values(["trial_id", "step"]).reset_index(drop=True)
        assert len(df) == 6
        assert pd.api.types.is_float_dtype(df["fid"])
        assert df.loc[0, "fid"] == 10.0 and df.loc[3, "fid"] == 9.5
        assert df["config/ema"].isna().tolist() == [True, True, True, False, False, True]
        assert df.loc[3, "config/ema"] == 0.999
        assert df["g_loss"].isna().sum() == 4
        assert set(df["eval_n"].astype(str)) == {"500", "1000.5", "full"}

    def test_values_are_normalised(self, store):
        store.write("metrics", [{
            "experiment": "e", "trial_id": "t", "step": np.int64(4), "fid": np.float32(1.5),
            "diverged": np.bool_(False), "losses": {"d": 1.0}, "shape": (1, 2), "mixed": 1,
        }, {
            "experiment": "e", "trial_id": "t", "step": 5, "mixed": "x",
        }])
        df = store.read("metrics", "e").sort_values("step").reset_index(drop=True)
        assert df["step"].tolist() == [4, 5]
        assert df.loc[0, "fid"] == 1.5 and not df.loc[0, "diverged"]
        assert df.loc[0, "losses"] == '{"d": 1.0}' and df.loc[0, "shape"] == "[1, 2]"
        assert df["mixed"].tolist() == ["1", "x"]

    def test_hidden_and_foreign_files_are_ignored(self, store):
        store.write("metrics", metric_rows("e", "t", range(3)))
        part = store.part_files("metrics", "e")[0]
        folder = part.rsplit("/", 1)[0]
        store.backend.write_bytes(folder + "/.part-x.parquet.tmp", b"torn garbage")
        store.backend.write_bytes(folder + "/_SUCCESS", b"")
        store.backend.write_bytes(folder + "/_temporary/part-y.parquet", b"torn garbage")
        assert store.part_files("metrics", "e") == [part]
        assert len(store.read("metrics", "e")) == 3

    def test_compact_merges_parts_without_losing_rows(self, store):
        for b in range(4):
            store.write("metrics", metric_rows("e", "t", range(b * 5, b * 5 + 5), batch=b))
        store.write("metrics", metric_rows("e", "t", range(5), batch=9))  # re-sent rows, newer
        before = store.read("metrics", "e").sort_values("step").reset_index(drop=True)
        assert store.compact("metrics", "e") == 5
        assert len(store.part_files("metrics", "e")) == 1
        after = store.read("metrics", "e").sort_values("step").reset_index(drop=True)
        pd.testing.assert_frame_equal(before, after)
        assert after.loc[0, "batch"] == 9
        assert store.compact("metrics", "e") == 0

    def test_part_files_are_plain_parquet(self, store):
        (path,) = store.write("metrics", metric_rows("e", "t", range(4)))
        table = pq.read_table(io.BytesIO(store.backend.read_bytes(path)))
        assert table.num_rows == 4
        assert {"experiment", "trial_id", "step", "fid", "row_key", "written_at"} <= set(table.column_names)
        assert not math.isnan(table.column("fid").to_pylist()[0])

    def test_compact_merges_only_that_experiments_parts(self, store):
        # "e1" is a prefix of "e10": compacting e1 must leave e10's parts and rows alone
        for name in ("e1", "e10", "e1"):
            store.write("metrics", metric_rows(name, "t", range(3)))
        store.write("metrics", metric_rows("e10", "t", range(3, 5)))
        e10_parts = store.part_files("metrics", "e10")
        assert len(e10_parts) == 2
        assert store.compact("metrics", "e1") == 2
        assert store.part_files("metrics", "e10") == e10_parts
        assert len(store.part_files("metrics", "e1")) == 1
        assert len(store.read("metrics", "e1")) == 3
        assert len(store.read("metrics", "e10")) == 5
        assert sorted(store.experiments()) == ["e1", "e10"]
