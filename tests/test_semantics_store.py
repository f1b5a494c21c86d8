"""Semantics of the results store, through its public API only (``ResultsStore.open``, ``write``,
``read``, ``compact``, ``part_files``): two experiments in one table, timestamps with and without
a zone, columns whose type differs across parts, and foreign files in a partition."""
from __future__ import annotations

import datetime as dt
import os

import pandas as pd
import pytest

from gensweep.platform.results import ResultsStore

UTC = dt.timezone.utc


def rows(experiment, steps, **extra):
    return [{"experiment": experiment, "trial_id": "t0", "step": s, "fid": float(s), **extra} for s in steps]


@pytest.fixture
def store(tmp_path):
    return ResultsStore.open(str(tmp_path / "results"))


def test_compacting_one_experiment_leaves_the_other_untouched(store):
    for batch in (range(0, 3), range(3, 5)):
        store.write("metrics", rows("a", batch))
        store.write("metrics", rows("b", [10 + s for s in batch]))
    b_parts = store.part_files("metrics", "b")
    b_rows = store.read("metrics", "b")
    assert len(store.part_files("metrics", "a")) == 2 and len(b_parts) == 2

    assert store.compact("metrics", "a") == 2
    (merged,) = store.part_files("metrics", "a")
    assert merged not in b_parts
    assert store.part_files("metrics", "b") == b_parts  # not merged, not deleted, not moved
    assert sorted(store.read("metrics", "a")["step"]) == [0, 1, 2, 3, 4]
    assert set(store.read("metrics", "a")["experiment"]) == {"a"}
    pd.testing.assert_frame_equal(store.read("metrics", "b"), b_rows)
    everything = store.read("metrics")
    assert sorted(everything["step"]) == [0, 1, 2, 3, 4, 10, 11, 12, 13, 14]
    assert store.compact("metrics", "b") == 2
    assert sorted(store.read("metrics", "b")["step"]) == [10, 11, 12, 13, 14]
    assert sorted(store.read("metrics", "a")["step"]) == [0, 1, 2, 3, 4]


def test_a_naive_written_at_is_utc_and_zones_compare_as_instants(store):
    # the same row twice: naive 12:00 (read as UTC) and 13:00+02:00 (11:00 UTC), written after it
    store.write("metrics", rows("a", [0], fid=1.0), written_at=dt.datetime(2024, 5, 1, 12, 0))
    store.write("metrics", rows("a", [0], fid=2.0), written_at=dt.datetime(2024, 5, 1, 13, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))))
    (kept,) = store.read("metrics", "a").itertuples()
    assert kept.fid == 1.0  # the later instant wins, not the later wall clock or the later file
    store.write("metrics", rows("a", [0], fid=3.0), written_at=dt.datetime(2024, 5, 1, 12, 0, 1, tzinfo=UTC))
    assert store.read("metrics", "a")["fid"].tolist() == [3.0]
    assert len(store.read("metrics", "a", dedupe_rows=False)) == 3


def test_timestamp_columns_null_naive_and_zoned(store):
    noon = dt.datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    store.write("metrics", rows("a", [0], finished_at=None))
    store.write("metrics", rows("a", [1], finished_at=noon))
    store.write("metrics", rows("a", [2], finished_at=noon.astimezone(dt.timezone(dt.timedelta(hours=-5)))))
    got = store.read("metrics", "a").sort_values("step")["finished_at"].tolist()
    assert pd.isna(got[0])
    assert pd.Timestamp(got[1]) == pd.Timestamp(noon) == pd.Timestamp(got[2])  # one instant, whatever the zone


def test_conflicting_column_types_across_parts_are_kept_as_text(store):
    store.write("metrics", rows("a", [0], note=7, lr=1))
    store.write("metrics", rows("a", [1], note="warm-up", lr=0.5))
    df = store.read("metrics", "a").sort_values("step")
    assert df["note"].tolist() == ["7", "warm-up"]  # int vs str: no row lost, both as text
    assert df["lr"].tolist() == [1.0, 0.5]  # int vs float: promoted to float
    assert store.compact("metrics", "a") == 2
    assert store.read("metrics", "a").sort_values("step")["note"].tolist() == ["7", "warm-up"]


def test_a_partition_holding_a_non_parquet_file(store):
    store.write("metrics", rows("a", [0, 1]))
    store.write("metrics", rows("a", [2]))
    parts = store.part_files("metrics", "a")
    folder = os.path.dirname(parts[0])
    with open(os.path.join(folder, "notes.txt"), "w") as handle:
        handle.write("copied here by hand")
    assert store.part_files("metrics", "a") == parts
    assert sorted(store.read("metrics", "a")["step"]) == [0, 1, 2]
    assert store.compact("metrics", "a") == 2
    assert os.path.exists(os.path.join(folder, "notes.txt"))  # compaction deletes only the parts it merged
    assert sorted(store.read("metrics", "a")["step"]) == [0, 1, 2]


def test_a_corrupt_part_file_is_an_error_naming_it(store):  # in a read and in a compaction
    store.write("metrics", rows("a", [0]))
    (part,) = store.part_files("metrics", "a")
    bad = part[: -len(".parquet")] + "-zz.parquet"
    with open(bad, "wb") as handle:
        handle.write(b"not parquet at all")
    assert bad in store.part_files("metrics", "a")
    with pytest.raises(OSError, match="zz.parquet"):
        store.read("metrics", "a")
    with pytest.raises(OSError, match="zz.parquet"):
        store.compact("metrics", "a")
