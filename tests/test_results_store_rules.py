"""ResultsStore rules the contract suite leaves open, on local disk: how ``open`` builds the retry
policy, compaction of every table of an experiment, compaction during a sweep (a dominant part
stays), and the clean-up of temp files left by killed writers."""
from __future__ import annotations

import datetime as dt
import os
import re
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gensweep.platform.results import LocalBackend, ResultsStore
from gensweep.platform.storage.local_files import temp_name
from gensweep.platform.storage.retry import RetryPolicy


@pytest.fixture
def store(tmp_path):
    return ResultsStore.open(str(tmp_path / "results"))


def metric_rows(experiment, steps, trial_id="t0"):
    return [{"experiment": experiment, "trial_id": trial_id, "step": s, "fid": float(s)} for s in steps]


def test_open_builds_the_retry_policy_and_passes_the_options_on(tmp_path):
    uri = str(tmp_path / "results")
    plain = ResultsStore.open(uri)
    assert plain.retry == RetryPolicy() and plain.read_threads == 8
    assert ResultsStore.open(uri, deadline_s=5.0).retry == RetryPolicy(deadline_s=5.0)
    policy = RetryPolicy(deadline_s=1.0, initial_s=0.01)
    assert ResultsStore.open(uri, retry=policy, deadline_s=9.0).retry is policy  # an explicit policy wins
    assert ResultsStore.open(uri, read_threads=3).read_threads == 3
    assert ResultsStore.open(uri, fsync=False).backend.fsync is False
    direct = ResultsStore(LocalBackend(), uri)
    assert direct.retry == RetryPolicy() and direct.read_threads == 8


def test_compact_experiment_merges_each_table_of_that_experiment(store):
    for batch in ([0, 1], [2]):
        store.write("metrics", metric_rows("a", batch))
        store.log_trial("a", "t0", "running")
    store.log_experiment("a", status="running")
    store.write("metrics", metric_rows("b", [0]))
    store.write("metrics", metric_rows("b", [1]))
    assert store.compact_experiment("a") == {"experiments": 0, "trials": 2, "metrics": 2, "artifacts": 0, "lineage": 0}
    assert len(store.part_files("metrics", "b")) == 2
    for batch in ([3], [4], [5]):
        store.write("metrics", metric_rows("a", batch))
    store.log_trial("a", "t0", "completed")
    # over=2: only a table with more than two parts is merged
    assert store.compact_experiment("a", over=2) == {"experiments": 0, "trials": 0, "metrics": 4, "artifacts": 0, "lineage": 0}
    assert sorted(store.read("metrics", "a")["step"]) == [0, 1, 2, 3, 4, 5]


def _parts_with_rows(store, sizes):
    """One metrics part of experiment ``a`` per size, each with that many distinct rows."""
    paths, step = [], 0
    for size in sizes:
        (path,) = store.write("metrics", metric_rows("a", range(step, step + size)))
        paths.append(path)
        step += size
        time.sleep(0.002)  # part names sort by write time
    assert store.part_files("metrics", "a") == paths
    return paths


def test_compaction_during_a_sweep_leaves_a_part_bigger_than_all_others_together(store):
    paths = _parts_with_rows(store, [1, 5, 1, 1])
    assert store.compact("metrics", "a", over=2) == 3  # the three small parts
    left = store.part_files("metrics", "a")
    assert len(left) == 2 and paths[1] in left
    assert sorted(store.read("metrics", "a")["step"]) == list(range(8))
    assert store.compact("metrics", "a", over=1) == 2  # at the end every part is merged


@pytest.mark.parametrize("sizes", [[2, 1, 1], [1, 1, 1], [3, 1, 1, 1]])
def test_compaction_during_a_sweep_merges_every_part_when_none_dominates(store, sizes):
    _parts_with_rows(store, sizes)
    assert store.compact("metrics", "a", over=2) == len(sizes)
    assert len(store.part_files("metrics", "a")) == 1
    assert sorted(store.read("metrics", "a")["step"]) == list(range(sum(sizes)))


def test_compaction_during_a_sweep_with_three_parts_and_a_dominant_one(store):
    paths = _parts_with_rows(store, [4, 1, 1])
    assert store.compact("metrics", "a", over=2) == 2
    assert paths[0] in store.part_files("metrics", "a")
    assert len(store.part_files("metrics", "a")) == 2


def test_clean_temp_removes_only_temp_files_older_than_the_limit(store):
    (part,) = store.write("metrics", metric_rows("a", [0]))
    folder = os.path.dirname(part)
    now = time.time()
    ages = {"hours": 2 * 3600, "hour": 3600.5, "half-hour": 1800, "minute": 60}
    temps = {}
    for label, age in ages.items():
        path = os.path.join(folder, temp_name(f"part-{label}.parquet"))
        with open(path, "wb") as handle:
            handle.write(b"partial")
        os.utime(path, (now - age, now - age))
        temps[label] = path
    assert store.clean_temp() == 2  # default: older than an hour
    assert not os.path.exists(temps["hours"]) and not os.path.exists(temps["hour"])
    assert os.path.exists(temps["half-hour"])
    assert store.clean_temp(older_than_s=600) == 1
    assert os.path.exists(temps["minute"]) and os.path.exists(part)


class FlakyBackend(LocalBackend):
    """Local disk whose named operations fail with a connection reset (a transient error)."""

    def __init__(self, failing=()):
        super().__init__(fsync=False)
        self.failing = set(failing)

    def _maybe_fail(self, op):
        if op in self.failing:
            raise ConnectionResetError(f"{op}: connection reset by peer")

    def list(self, prefix):
        self._maybe_fail("list")
        return super().list(prefix)

    def list_dirs(self, prefix):
        self._maybe_fail("list_dirs")
        return super().list_dirs(prefix)

    def read_bytes(self, path):
        self._maybe_fail("read_bytes")
        return super().read_bytes(path)

    def write_bytes(self, path, data):
        self._maybe_fail("write_bytes")
        return super().write_bytes(path, data)

    def delete(self, path):
        self._maybe_fail("delete")
        return super().delete(path)


def test_an_exhausted_retry_names_the_operation_and_its_path(tmp_path):
    backend = FlakyBackend()
    store = ResultsStore(backend, str(tmp_path / "results"), RetryPolicy(deadline_s=0.0))
    for batch in ([0], [1]):
        store.write("metrics", metric_rows("a", batch))
    partition = store.partition_path("metrics", "a")
    parts = store.part_files("metrics", "a")

    def message(op, call):
        backend.failing = {op}
        with pytest.raises(OSError) as info:
            call()
        backend.failing = set()
        return str(info.value)

    assert message("write_bytes", lambda: store.write("metrics", metric_rows("a", [2]))).startswith(
        f"write {partition}/part-")
    assert message("list", lambda: store.part_files("metrics", "a")).startswith(f"list {partition} failed")
    assert message("list", lambda: store.read("metrics")).startswith(f"list {store.table_path('metrics')} failed")
    assert message("read_bytes", lambda: store.read("metrics", "a")).startswith(f"read {parts[0]} failed")
    assert message("list_dirs", store.experiments).startswith(f"list {store.table_path('experiments')} failed")
    assert message("write_bytes", lambda: store.compact("metrics", "a")).startswith(f"write {partition}/part-")
    assert message("delete", lambda: store.compact("metrics", "a")).startswith(f"delete {parts[0]} failed")


def test_read_arrow_dedupes_unless_told_not_to(store):
    store.write("metrics", metric_rows("a", [0, 1]))
    store.write("metrics", metric_rows("a", [1]))
    assert store.read_arrow("metrics", "a").num_rows == 2
    assert store.read_arrow("metrics", "a", dedupe_rows=False).num_rows == 3


def test_a_compaction_that_loses_a_part_to_another_gives_up(tmp_path):
    class VanishingBackend(LocalBackend):
        def read_bytes(self, path):
            raise FileNotFoundError(path)  # another compaction deleted it after the listing

    store = ResultsStore(VanishingBackend(), str(tmp_path / "results"))
    for batch in ([0], [1]):
        store.write("metrics", metric_rows("a", batch))
    parts = store.part_files("metrics", "a")
    assert store.compact("metrics", "a") == 0
    assert store.part_files("metrics", "a") == parts  # nothing written, nothing deleted


def test_compaction_at_the_end_merges_a_dominant_part_too(store):
    _parts_with_rows(store, [5, 1, 1])
    assert store.compact("metrics", "a") == 3
    assert len(store.part_files("metrics", "a")) == 1


def test_compacted_trials_keep_the_terminal_row_over_a_later_running_one(store):
    late = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)
    store.write("trials", [{"experiment": "a", "trial_id": "t0", "status": "completed"}],
                written_at=late - dt.timedelta(minutes=1))
    store.write("trials", [{"experiment": "a", "trial_id": "t0", "status": "running"}], written_at=late)
    assert store.read("trials", "a")["status"].tolist() == ["completed"]
    assert store.compact("trials", "a") == 2
    (part,) = store.part_files("trials", "a")
    assert pq.read_table(part).column("status").to_pylist() == ["completed"]


def test_compaction_renames_a_legacy_timestamp_column_in_the_merged_part(store):
    store.write("metrics", metric_rows("a", [1]))
    _write_legacy_part(store, "a", 0, 1_700_000_000.0)
    assert store.compact("metrics", "a") == 2
    (part,) = store.part_files("metrics", "a")
    merged = pq.read_table(part)
    assert "wall_time_s" not in merged.column_names  # a plain Parquet reader sees what read() returns
    stamps = dict(zip(merged.column("step").to_pylist(), merged.column("reported_at").to_pylist()))
    assert stamps[0] == dt.datetime.fromtimestamp(1_700_000_000, dt.timezone.utc)


def _write_legacy_part(store, experiment, step, seconds):
    """A metrics part written before ``reported_at``: the report time as ``wall_time_s`` seconds."""
    legacy = pa.table({"experiment": [experiment], "trial_id": ["t0"], "step": [step],
                       "row_key": [f"legacy-{step}"],
                       "written_at": pa.array([dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)],
                                              pa.timestamp("us", tz="UTC")),
                       "wall_time_s": [seconds]})
    folder = store.partition_path("metrics", experiment)
    os.makedirs(folder, exist_ok=True)
    pq.write_table(legacy, os.path.join(folder, f"part-00000000T000000.00000{step}Z-legacy.parquet"))


def test_a_legacy_part_reads_with_the_new_column_name(store):
    _write_legacy_part(store, "a", 0, 1_700_000_000.0)
    when = dt.datetime.fromtimestamp(1_700_000_000, dt.timezone.utc)
    df = store.read("metrics", "a")
    assert "wall_time_s" not in df.columns and df["reported_at"].tolist() == [when]
    assert store.read("metrics", "a", columns=["reported_at"])["reported_at"].tolist() == [when]


def test_read_projects_the_asked_columns(store):
    store.write("metrics", [{"experiment": "a", "trial_id": "t0", "step": 0, "fid": 5.0, "kid": 0.5,
                             "config/lr": 0.1, "config/seed": 3}])
    store.write("metrics", [{"experiment": "a", "trial_id": "t0", "step": 0, "fid": 4.0, "kid": 0.4,
                             "config/lr": 0.1, "config/seed": 3}])  # the same row, written later
    df = store.read("metrics", "a", columns=["fid", "config/*", "no_such_column"])
    assert list(df.columns) == ["fid", "config/lr", "config/seed"]
    assert df.values.tolist() == [[4.0, 0.1, 3]]  # deduped on columns it was not asked for
    table = store.read_arrow("metrics", "a", columns=["kid"])
    assert table.column_names == ["kid"] and table.column("kid").to_pylist() == [0.4]


def test_projected_trials_keep_the_terminal_row(store):
    late = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)
    store.write("trials", [{"experiment": "a", "trial_id": "t0", "status": "completed", "reason": "done"}],
                written_at=late - dt.timedelta(minutes=1))
    store.write("trials", [{"experiment": "a", "trial_id": "t0", "status": "running", "reason": None}],
                written_at=late)
    assert store.read("trials", "a", columns=["reason"])["reason"].tolist() == ["done"]


def test_reading_a_table_without_parts_gives_the_expected_empty_columns(store):
    df = store.read("metrics")
    assert list(df.columns) == ["experiment", "trial_id", "step", "row_key"] and df.empty
    assert set(map(str, df.dtypes)) == {"object"}
    projected = store.read("trials", "a", columns=["status", "config/*"])
    assert list(projected.columns) == ["status"] and projected.empty
    assert str(projected["status"].dtype) == "object"
    assert store.read_arrow("metrics") is None


class VanishingOnce(LocalBackend):
    """A part vanishes between the listing and the read ``times`` times (concurrent compactions)."""

    def __init__(self, times):
        super().__init__(fsync=False)
        self.times = times
        self.reads = 0

    def read_bytes(self, path):
        self.reads += 1
        if self.times > 0:
            self.times -= 1
            raise FileNotFoundError(path)
        return super().read_bytes(path)


@pytest.mark.parametrize("times", [1, 4])
def test_a_read_relists_when_a_part_vanished_under_it(tmp_path, times):
    backend = VanishingOnce(0)
    store = ResultsStore(backend, str(tmp_path / "results"), read_threads=1)
    store.write("metrics", metric_rows("a", [0, 1]))
    backend.times = times
    assert sorted(store.read("metrics", "a")["step"]) == [0, 1]
    assert backend.reads == times + 1


def test_a_read_gives_up_after_five_listings(tmp_path):
    backend = VanishingOnce(10**6)
    store = ResultsStore(backend, str(tmp_path / "results"), read_threads=1)
    store.write("metrics", metric_rows("a", [0]))
    with pytest.raises(FileNotFoundError):
        store.read("metrics", "a")
    assert backend.reads == 5


def test_hidden_parquet_files_are_not_parts(store):
    (part,) = store.write("metrics", metric_rows("a", [0]))
    folder = os.path.dirname(part)
    for name in ("_partial.parquet", ".hidden.parquet"):
        with open(os.path.join(folder, name), "wb") as handle:
            handle.write(b"not a part")
    assert store.part_files("metrics", "a") == [part]
    assert store.part_files("metrics") == [part]
    assert store.read("metrics", "a")["step"].tolist() == [0]


def test_part_names_carry_the_utc_write_time_and_a_uuid():
    from gensweep.platform.results.store import part_name

    name = part_name(dt.datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=dt.timezone.utc))
    assert re.fullmatch(r"part-20250102T030405\.123456Z-[0-9a-f]{32}\.parquet", name)


@pytest.fixture
def tokyo_clock(monkeypatch):
    """The process's local zone is UTC+9 (naive local times are then 9 hours off UTC)."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_write_times_and_part_names_are_utc_whatever_the_local_zone(store, tokyo_clock):
    from gensweep.platform.results.store import part_name

    before = dt.datetime.now(dt.timezone.utc)
    name = part_name()
    (part,) = store.write("metrics", metric_rows("a", [0]))
    after = dt.datetime.now(dt.timezone.utc)
    stamp = dt.datetime.strptime(name[5:28], "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=dt.timezone.utc)
    assert before - dt.timedelta(seconds=1) <= stamp <= after
    (written,) = store.read("metrics", "a")["written_at"]
    assert before - dt.timedelta(seconds=1) <= written <= after


def test_part_files_of_a_table_list_the_oldest_first_across_experiments(store):
    (first,) = store.write("metrics", metric_rows("zeta", [0]))
    time.sleep(0.002)
    (second,) = store.write("metrics", metric_rows("alpha", [0]))
    assert store.part_files("metrics") == [first, second]


def test_a_part_file_holds_every_declared_column_in_its_declared_type(store):
    (part,) = store.log_trial("a", "t0", "running")
    schema = pq.read_schema(part)
    for name, kind in {"reason": pa.string(), "last_step": pa.int64(), "seed": pa.int64(),
                       "wall_time_s": pa.float64(), "trial_dir": pa.string()}.items():
        assert schema.field(name).type == kind
