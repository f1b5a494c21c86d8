"""Shared fixtures and subprocess workers of the results-store tests (tests/test_results_*.py).

Workers are module-level functions so that ``multiprocessing`` *spawn* children
can import them.
"""
from __future__ import annotations

import os
import signal
import time

import pytest

from gensweep.platform.results import ResultsStore


@pytest.fixture(params=["local", "s3"])
def store_uri(request, tmp_path):
    """A fresh, empty store URI on local disk or on the loopback S3 server."""
    if request.param == "local":
        return str(tmp_path / "results")
    bucket = request.getfixturevalue("s3_bucket")
    return f"s3://{bucket}/results"


def metric_rows(experiment: str, trial_id: str, steps, **extra):
    return [
        {"experiment": experiment, "trial_id": trial_id, "step": s, "fid": 100.0 - s, **extra}
        for s in steps
    ]


def write_batches(uri: str, experiment: str, worker: int, n_batches: int, rows_per_batch: int,
                  pause_s: float = 0.0) -> None:
    """Append ``n_batches`` batches of distinct metrics rows (trial ``w<worker>``)."""
    store = ResultsStore.open(uri, deadline_s=60)
    for b in range(n_batches):
        steps = range(b * rows_per_batch, (b + 1) * rows_per_batch)
        store.write("metrics", metric_rows(experiment, f"w{worker}", steps, batch=b, worker=worker))
        if pause_s:
            time.sleep(pause_s)


def big_batch(experiment: str, n_rows: int):
    """A deterministic, large batch (same row keys every time it is built)."""
    import random

    rng = random.Random(1234)
    return [
        {
            "experiment": experiment,
            "trial_id": f"t{i % 7}",
            "step": i,
            "fid": rng.random(),
            "kid": rng.random(),
            "d_loss": rng.random(),
            "g_loss": rng.random(),
            "note": f"row-{i}-{rng.random()}",
        }
        for i in range(n_rows)
    ]


def rewrite_big_batch_forever(uri: str, experiment: str, n_rows: int, ready_file: str) -> None:
    """Re-flush the same big batch in a loop until killed (a crash-prone writer)."""
    store = ResultsStore.open(uri, deadline_s=60)
    rows = big_batch(experiment, n_rows)
    with open(ready_file, "w") as handle:
        handle.write(str(os.getpid()))
    while True:
        store.write("metrics", rows)


def write_then_hang_before_rename(uri: str, experiment: str, n_rows: int, ready_file: str) -> None:
    """Local writer that stalls after writing its temp file, before the atomic rename."""
    import gensweep.platform.results.backends.local as backend_mod

    real_replace = os.replace

    def stalled_replace(src, dst):
        with open(ready_file, "w") as handle:
            handle.write(src)
        time.sleep(120)
        real_replace(src, dst)

    backend_mod.os.replace = stalled_replace
    store = ResultsStore.open(uri, deadline_s=60)
    store.write("metrics", big_batch(experiment, n_rows))


def wait_for_file(path: str, timeout_s: float, proc=None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return
        if proc is not None and proc.exitcode is not None:
            raise AssertionError(f"worker exited early with {proc.exitcode}")
        time.sleep(0.05)
    raise AssertionError(f"{path} did not appear within {timeout_s}s")


def compact_then_hang(uri: str, experiment: str, stall: str, ready_file: str) -> None:
    """Compact ``experiment``'s metrics, stalling (until killed) at ``stall``: ``"write"`` while
    the merged part is being written (before it is visible), ``"delete"`` after the first merged
    part was deleted."""
    store = ResultsStore.open(uri, deadline_s=60)
    backend = store.backend
    name = "write_bytes" if stall == "write" else "delete"
    real = getattr(backend, name)

    def stalled(path, *args):
        if stall == "delete":
            real(path, *args)
        with open(ready_file, "w") as handle:
            handle.write(path)
        time.sleep(120)

    setattr(backend, name, stalled)
    store.compact("metrics", experiment)


def kill_when_ready(proc, ready_file: str, timeout_s: float = 60) -> None:
    """Wait (bounded) until the worker ``proc`` wrote ``ready_file``, then SIGKILL it."""
    try:
        wait_for_file(ready_file, timeout_s, proc)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(30)
