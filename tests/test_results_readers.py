"""Any Parquet reader sees gensweep's rows: a store written through the results callback's hooks,
read by DuckDB, Polars and pyarrow.dataset with the README's "Query the store" examples (local disk
and S3); typed all-null columns; ``results ls`` reading one summary row per experiment."""
from __future__ import annotations

import io
import re
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gensweep.platform.results import ResultsStore, list_experiments
from gensweep.platform.results.callback import ResultsCallback
from gensweep.platform.results.columns import COLUMN_TYPES
from tests.results_support import store_uri  # noqa: F401 - fixture

TABLES = ("experiments", "trials", "metrics", "artifacts")
EXPERIMENTS = {"sweep-a": 3, "other b": 2}  # name -> trials (a name that URL-quoting changes)


def readme_examples() -> dict:
    """The Python of the README's "Query the store" section, executed."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("## Query the store", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, "README has no Python example under 'Query the store'"
    namespace: dict = {}
    exec(compile("\n".join(blocks), "README.md", "exec"), namespace)
    return namespace


def write_sweeps(uri: str) -> None:
    """Two experiments written through the callback's hooks, as a sweep would: a trial's
    ``running`` row and its terminal row, metrics, artifacts, one metric only one sweep has."""
    for experiment, n in EXPERIMENTS.items():
        cb = ResultsCallback(uri, experiment, flush_every=2, flush_interval_s=3600, compact_over=3,
                             spec={"model": "dcgan"}, git_commit_sha="abc", versions={"ray": "x"})
        cb.setup()
        trials = [SimpleNamespace(trial_id=f"t{i}", config={"lr": 0.1 * (i + 1), "arch": "dcgan"}, path=None,
                                  status="RUNNING", placement_group_factory=None) for i in range(n)]
        for i, trial in enumerate(trials):
            cb.on_trial_start(0, trials, trial)
            for k in range(3):
                extra = {"kid": 0.5} if experiment == "other b" else {}
                cb.on_trial_result(0, trials, trial, {"training_iteration": k + 1, "step": 10 * (k + 1),
                                                      "fid": 50.0 - k - i, "artifact/sample_grid": f"g{k}.png",
                                                      **extra})
            trial.status = "TERMINATED"
            cb.on_trial_complete(0, trials, trial)
        cb.on_experiment_end(trials)


def canonical(df: pd.DataFrame, columns: list[str]) -> list[tuple]:
    """Rows as comparable tuples: datetimes in UTC, missing values None, sorted by row key."""
    out = pd.DataFrame(index=range(len(df)))
    for col in columns:
        values = df[col].reset_index(drop=True)
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            values = values.dt.tz_convert("UTC")
        out[col] = [None if v is None or (not isinstance(v, str) and pd.isna(v)) else v for v in values.astype(object)]
    return sorted(out.itertuples(index=False, name=None), key=lambda r: r[columns.index("row_key")])


@pytest.fixture
def swept(store_uri):
    write_sweeps(store_uri)
    return store_uri


def test_duckdb_polars_and_pyarrow_read_gensweeps_rows(swept):
    examples = readme_examples()
    store = ResultsStore.open(swept)
    for table in TABLES:
        for experiment in EXPERIMENTS:
            ours = store.read(table, experiment)
            columns = list(ours.columns)
            assert len(store.part_files(table, experiment)) == 1  # compacted at the experiment's end
            frames = {
                "duckdb": examples["duckdb_rows"](swept, table, experiment),
                "polars": examples["polars_rows"](swept, table, experiment).to_pandas(),
                "pyarrow": examples["pyarrow_rows"](swept, table, experiment).to_pandas(),
            }
            for engine, theirs in frames.items():
                assert set(columns) <= set(theirs.columns), (engine, table, set(columns) - set(theirs.columns))
                assert canonical(theirs, columns) == canonical(ours, columns), (engine, table, experiment)
    trials = store.read("trials", "sweep-a")
    assert (trials["status"] == "completed").all() and len(trials) == 3  # no stale "running" row


def test_all_null_columns_are_written_with_their_declared_type(store_uri):
    store = ResultsStore.open(store_uri)
    store.write("trials", [{"experiment": "e", "trial_id": "t1", "status": "running"}])
    store.write("trials", [{"experiment": "e", "trial_id": "t1", "status": "failed", "reason": "OOM",
                            "started_at": pd.Timestamp("2025-01-01", tz="UTC"), "last_step": 3}])
    store.log_experiment("e", status="running", spec=None, seed=None, ended_at=None)
    store.log_metrics("e", "t1", 1, fid=None, loss=2.0)
    for table in ("trials", "experiments", "metrics"):
        for path in store.part_files(table, "e"):
            schema = pq.read_schema(io.BytesIO(store.backend.read_bytes(path)))
            assert not [f.name for f in schema if pa.types.is_null(f.type)], (table, schema)
            for name, declared in COLUMN_TYPES[table].items():
                assert schema.field(name).type == declared, (table, name)
    assert "fid" not in pq.read_schema(io.BytesIO(store.backend.read_bytes(store.part_files("metrics", "e")[0]))).names
    trials = store.read("trials", "e")
    assert trials["status"].tolist() == ["failed"] and trials["last_step"].tolist() == [3]


def test_ls_reads_one_summary_row_per_experiment_not_the_trials(swept):
    store = ResultsStore.open(swept)
    read = []
    real = store.backend.read_bytes
    store.backend.read_bytes = lambda path: read.append(path) or real(path)
    listed = list_experiments(store)
    assert listed["experiment"].tolist() == sorted(EXPERIMENTS)
    assert listed["n_trials"].tolist() == [EXPERIMENTS["other b"], EXPERIMENTS["sweep-a"]]
    assert listed["best_fid"].tolist() == [47.0, 46.0]
    assert listed["status"].tolist() == ["completed", "completed"]
    assert read and all("/experiments/" in p for p in read), read


def test_stores_written_before_read_their_timestamps_under_the_new_names(tmp_path):
    """Before the ``*_at`` rule, ``wall_time_s`` held a UNIX timestamp in metrics and artifacts."""
    store = ResultsStore.open(str(tmp_path / "old"))
    store.write("metrics", [{"experiment": "e", "trial_id": "t", "step": 1, "fid": 3.0, "wall_time_s": 1.7e9}])
    store.write("artifacts", [{"experiment": "e", "trial_id": "t", "kind": "grid", "uri": "g.png",
                               "wall_time_s": 1.7e9}])
    when = pd.Timestamp(1.7e9, unit="s", tz="UTC")
    metrics = store.read("metrics", "e")
    assert "wall_time_s" not in metrics.columns and metrics["reported_at"].tolist() == [when]
    assert store.read("metrics", "e", columns=["reported_at"])["reported_at"].tolist() == [when]
    assert store.read("artifacts", "e")["created_at"].tolist() == [when]
    assert list_experiments(store)["started_at"].tolist() == [when]  # no summary row: first report time
