"""Compaction beside concurrent writer processes, and a compaction killed midway (local disk and
S3): no row lost, none duplicated, and the part count bounded."""
from __future__ import annotations

import multiprocessing as mp
import os
import signal

import pytest

from gensweep.platform.results import ResultsStore
from tests.results_support import (  # noqa: F401 - store_uri is a fixture
    compact_then_hang,
    kill_when_ready,
    metric_rows,
    store_uri,
    wait_for_file,
    write_batches,
)

SPAWN = mp.get_context("spawn")


def test_compaction_beside_concurrent_writers(store_uri):
    n_workers, n_batches, rows = 3, 12, 5
    procs = [SPAWN.Process(target=write_batches, args=(store_uri, "busy", w, n_batches, rows, 0.05))
             for w in range(n_workers)]
    for proc in procs:
        proc.start()
    store = ResultsStore.open(store_uri)
    merged_while_writing = 0
    try:
        for _ in range(1200):  # bounded: wait for the spawned writers' first batch
            if store.part_files("metrics", "busy") or procs[0].exitcode is not None:
                break
            procs[0].join(0.05)
        for _ in range(1200):  # bounded: compact and read while the writers append
            merged_while_writing += store.compact("metrics", "busy", over=4)
            df = store.read("metrics", "busy")
            assert df["row_key"].is_unique
            if all(p.exitcode is not None for p in procs):
                break
            procs[0].join(0.02)
    finally:
        for proc in procs:
            proc.join(120)
            if proc.exitcode is None:
                os.kill(proc.pid, signal.SIGKILL)
    assert [p.exitcode for p in procs] == [0] * n_workers
    assert merged_while_writing > 0, "no compaction overlapped the writers"
    store.compact("metrics", "busy")
    assert len(store.part_files("metrics", "busy")) == 1
    raw = store.read("metrics", "busy", dedupe_rows=False)
    assert len(raw) == n_workers * n_batches * rows and raw["row_key"].is_unique
    for w in range(n_workers):
        assert sorted(raw.loc[raw["trial_id"] == f"w{w}", "step"]) == list(range(n_batches * rows))


@pytest.mark.parametrize("stall", ["write", "delete"])
def test_compaction_killed_midway_loses_and_duplicates_nothing(store_uri, tmp_path, stall):
    store = ResultsStore.open(store_uri)
    for b in range(4):
        store.write("metrics", metric_rows("crash", "t", range(b * 10, b * 10 + 10), batch=b))
    store.write("metrics", metric_rows("crash", "t", range(10), batch=9))  # re-sent rows, newer
    before = store.read("metrics", "crash").sort_values("step").reset_index(drop=True)
    ready = str(tmp_path / "ready")
    proc = SPAWN.Process(target=compact_then_hang, args=(store_uri, "crash", stall, ready))
    proc.start()
    kill_when_ready(proc, ready)
    assert proc.exitcode == -signal.SIGKILL
    after = store.read("metrics", "crash").sort_values("step").reset_index(drop=True)
    assert after[["row_key", "step", "fid", "batch"]].equals(before[["row_key", "step", "fid", "batch"]])
    assert (after.loc[after["step"] < 10, "batch"] == 9).all()
    # the next compaction leaves one part holding each row once
    store.compact("metrics", "crash")
    raw = store.read("metrics", "crash", dedupe_rows=False).sort_values("step").reset_index(drop=True)
    assert len(store.part_files("metrics", "crash")) == 1
    assert raw[["row_key", "step", "fid", "batch"]].equals(before[["row_key", "step", "fid", "batch"]])


def test_results_compact_command_merges_a_store_written_before(tmp_path, capsys):
    from gensweep.cli import main as cli_main

    root = str(tmp_path / "old")
    store = ResultsStore.open(root)
    for name in ("run-a", "run-b"):
        for b in range(3):  # one part per write, as stores written before compaction have
            store.write("metrics", metric_rows(name, "t", range(b * 4, b * 4 + 4)))
        store.log_trial(name, "t", "running")
        store.log_trial(name, "t", "completed")
    assert cli_main(["results", "--root", root, "compact", "run-a"]) == 0
    assert "run-a: trials 2 -> 1, metrics 3 -> 1" in capsys.readouterr().out
    assert len(store.part_files("metrics", "run-b")) == 3  # only the experiment named
    assert cli_main(["results", "--root", root, "compact"]) == 0
    assert all(len(store.part_files(t, n)) == 1 for t in ("metrics", "trials") for n in ("run-a", "run-b"))
    assert store.read("trials", "run-b", dedupe_rows=False)["status"].tolist() == ["completed"]
    assert len(store.read("metrics", "run-b", dedupe_rows=False)) == 12
