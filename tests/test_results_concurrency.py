"""Many writer processes, readers racing writers, writers killed mid-flush (local disk and S3)."""
from __future__ import annotations

import io
import multiprocessing as mp
import os
import signal

import pyarrow.parquet as pq

from gensweep.platform.results import ResultsStore
from tests.results_support import (  # noqa: F401 - store_uri is a fixture
    big_batch,
    kill_when_ready,
    rewrite_big_batch_forever,
    store_uri,
    wait_for_file,
    write_batches,
    write_then_hang_before_rename,
)

SPAWN = mp.get_context("spawn")
JOIN_TIMEOUT_S = 120


def _join_all(procs):
    for proc in procs:
        proc.join(JOIN_TIMEOUT_S)
    alive = [p for p in procs if p.is_alive()]
    for proc in alive:
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
    assert not alive, f"{len(alive)} writer processes hung"
    assert [p.exitcode for p in procs] == [0] * len(procs)


def test_concurrent_writer_processes(store_uri):
    n_workers, n_batches, rows = 4, 10, 20
    procs = [
        SPAWN.Process(target=write_batches, args=(store_uri, "shared", w, n_batches, rows))
        for w in range(n_workers)
    ]
    for proc in procs:
        proc.start()
    _join_all(procs)

    store = ResultsStore.open(store_uri)
    assert len(store.part_files("metrics", "shared")) == n_workers * n_batches
    raw = store.read("metrics", "shared", dedupe_rows=False)
    assert len(raw) == n_workers * n_batches * rows  # nothing clobbered, nothing duplicated
    df = store.read("metrics", "shared")
    assert len(df) == n_workers * n_batches * rows
    assert df["row_key"].is_unique
    for w in range(n_workers):
        steps = sorted(df.loc[df["trial_id"] == f"w{w}", "step"])
        assert steps == list(range(n_batches * rows))


def test_reading_while_writing(store_uri):
    n_batches, rows = 25, 20
    writer = SPAWN.Process(target=write_batches, args=(store_uri, "live", 0, n_batches, rows, 0.05))
    writer.start()
    store = ResultsStore.open(store_uri)
    counts = []
    try:
        for _ in range(600):  # wait (bounded) for the spawned writer's first batch
            if store.part_files("metrics", "live") or writer.exitcode is not None:
                break
            writer.join(0.05)
        for _ in range(400):  # bounded reader loop
            df = store.read("metrics", "live")
            counts.append(len(df))
            if df.shape[0]:
                assert df["row_key"].is_unique
                assert df["fid"].notna().all()
            if writer.exitcode is not None:
                break
    finally:
        _join_all([writer])
    counts.append(len(store.read("metrics", "live")))
    assert counts == sorted(counts), "row counts went down while a writer appended"
    assert counts[-1] == n_batches * rows
    assert all(c % rows == 0 for c in counts), "a read saw part of a write"
    assert len(set(counts)) > 2, "the reader never overlapped the writer"


def _assert_no_torn_parts(store, experiment):
    for path in store.part_files("metrics", experiment):
        pq.read_table(io.BytesIO(store.backend.read_bytes(path)))  # raises on a torn file


def test_writer_killed_mid_flush_then_reflushed(store_uri, tmp_path):
    n_rows = 40_000
    ready = str(tmp_path / "ready")
    proc = SPAWN.Process(target=rewrite_big_batch_forever, args=(store_uri, "crash", n_rows, ready))
    proc.start()
    store = ResultsStore.open(store_uri)
    try:
        wait_for_file(ready, 60, proc)
        # let it complete at least one flush, then kill it in the middle of a later one
        for _ in range(600):
            if store.part_files("metrics", "crash") or proc.exitcode is not None:
                break
            proc.join(0.1)
        assert store.part_files("metrics", "crash"), "the writer never completed a flush"
        proc.join(0.25)
    finally:
        if proc.exitcode is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.join(30)
    assert proc.exitcode == -signal.SIGKILL

    _assert_no_torn_parts(store, "crash")
    assert len(store.read("metrics", "crash")) == n_rows
    # restart: the same batch is flushed again
    ResultsStore.open(store_uri).write("metrics", big_batch("crash", n_rows))
    _assert_no_torn_parts(store, "crash")
    df = store.read("metrics", "crash")
    assert len(df) == n_rows and df["row_key"].is_unique
    assert sorted(df["step"]) == list(range(n_rows))


def test_local_writer_killed_before_rename_leaves_only_hidden_temp(tmp_path):
    uri = str(tmp_path / "results")
    ready = str(tmp_path / "ready")
    proc = SPAWN.Process(target=write_then_hang_before_rename, args=(uri, "crash", 5_000, ready))
    proc.start()
    kill_when_ready(proc, ready)
    with open(ready) as handle:
        temp = handle.read()
    assert os.path.basename(temp).startswith(".") and os.path.getsize(temp) > 0
    store = ResultsStore.open(uri)
    assert store.part_files("metrics", "crash") == []
    assert store.read("metrics", "crash").empty
    assert store.clean_temp(older_than_s=3600) == 0  # recent: might still be in flight
    store.write("metrics", big_batch("crash", 5_000))
    store.write("metrics", big_batch("crash", 5_000))
    assert len(store.read("metrics", "crash")) == 5_000
    assert store.clean_temp(older_than_s=0) == 1
    assert not os.path.exists(temp)
