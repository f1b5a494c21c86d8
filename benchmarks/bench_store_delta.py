"""Delta Lake (the ``deltalake`` package) against the results store's own Parquet layout, on the
operations the store's targets depend on: appending a sweep's flushes (driver time), concurrent
writer processes on the loopback S3 server (rows that arrive, commits that fail), reading one
experiment's columns, and compacting.

Both sides write the same rows: the metrics of ``--trials`` trials x ``--evals`` evaluations in
flushes of 200 rows, as the results callback batches them. Delta tables are partitioned by
``experiment`` and compacted with ``optimize.compact()`` + ``vacuum``.

Usage: python benchmarks/bench_store_delta.py [--trials 1000] [--evals 10] [--writers 4] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from bench_store_scale import append_jsonl  # noqa: E402
from gensweep.platform.results import ResultsStore  # noqa: E402
from gensweep.platform.results.parts import rows_to_table  # noqa: E402
from gensweep.platform.results.schema import normalize_rows  # noqa: E402

FLUSH_ROWS = 200


def batches(experiment: str, n_trials: int, evals: int, worker: int = 0) -> list[list[dict]]:
    rows = [{"experiment": experiment, "trial_id": f"w{worker}-{i:05d}", "step": 100 * (k + 1),
             "fid": 50.0 - k, "kid": 0.1, "d_loss": 0.5, "g_loss": 1.5, "config/lr": 1e-4 * (1 + i % 4)}
            for i in range(n_trials) for k in range(evals)]
    return [rows[i:i + FLUSH_ROWS] for i in range(0, len(rows), FLUSH_ROWS)]


def delta_options(uri: str) -> dict | None:
    """deltalake's S3 options for the loopback server: commits made safe by conditional PUTs
    (no DynamoDB lock), the endpoint and region from the environment the server set."""
    if not uri.startswith("s3://"):
        return None
    return {"AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"], "AWS_ALLOW_HTTP": "true",
            "AWS_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"), "conditional_put": "etag"}


def delta_append(uri: str, groups: list[list[dict]]) -> tuple[float, int]:
    """Seconds spent appending ``groups`` (one commit each) and commits that failed."""
    from deltalake import write_deltalake

    failed, t0 = 0, time.perf_counter()
    for group in groups:
        data = rows_to_table(normalize_rows("metrics", group), "metrics")
        try:
            write_deltalake(uri, data, mode="append", partition_by=["experiment"], schema_mode="merge",
                            storage_options=delta_options(uri))
        except Exception:  # noqa: BLE001 - a lost commit race is counted, not retried
            failed += 1
    return time.perf_counter() - t0, failed


def store_append(uri: str, groups: list[list[dict]]) -> tuple[float, int]:
    store, t0 = ResultsStore.open(uri), time.perf_counter()
    for i, group in enumerate(groups):
        store.write("metrics", group)
        if i % 5 == 4:  # as the callback does after its flushes
            store.compact("metrics", group[0]["experiment"], over=20)
    return time.perf_counter() - t0, 0


def _writer(kind: str, uri: str, worker: int, n_trials: int, evals: int, out) -> None:
    fn = delta_append if kind == "delta" else store_append
    out.put(fn(uri, batches("shared", n_trials, evals, worker)))


def concurrent(kind: str, uri: str, writers: int, n_trials: int, evals: int) -> dict:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(kind, uri, w, n_trials, evals, out)) for w in range(writers)]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(60)
    wall = time.perf_counter() - t0
    rows = read_rows(kind, uri, "shared", ["trial_id"])
    return {"wall_s": round(wall, 2), "failed_commits": sum(f for _, f in results), "rows": rows,
            "expected_rows": writers * n_trials * evals}


def read_rows(kind: str, uri: str, experiment: str, columns: list[str]) -> int:
    if kind == "delta":
        from deltalake import DeltaTable

        table = DeltaTable(uri, storage_options=delta_options(uri))
        return table.to_pyarrow_table(filters=[("experiment", "=", experiment)], columns=columns).num_rows
    return len(ResultsStore.open(uri).read("metrics", experiment, columns=columns))


def compact(kind: str, uri: str, experiment: str) -> None:
    if kind == "delta":
        from deltalake import DeltaTable

        table = DeltaTable(uri, storage_options=delta_options(uri))
        table.optimize.compact()
        table.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    else:
        ResultsStore.open(uri).compact("metrics", experiment)


def measure(kind: str, base: str, n_trials: int, evals: int, writers: int) -> dict:
    uri = f"{base}/{kind}-{uuid.uuid4().hex[:6]}" + ("/metrics" if kind == "delta" else "")
    groups = batches("sweep", n_trials, evals)
    append_s, failed = (delta_append if kind == "delta" else store_append)(uri, groups)
    t0 = time.perf_counter()
    n = read_rows(kind, uri, "sweep", ["trial_id", "step", "fid"])
    read_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    compact(kind, uri, "sweep")
    compact_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    read_rows(kind, uri, "sweep", ["trial_id", "step", "fid"])
    read_after_s = time.perf_counter() - t0
    row = {"kind": kind, "root": base.split("://")[0] if "://" in base else "local", "trials": n_trials,
           "commits": len(groups), "failed_commits": failed, "rows": n,
           "append_ms_per_flush": round(1000 * append_s / len(groups), 1),
           "append_ms_per_trial": round(1000 * append_s / n_trials, 2), "read_s": round(read_s, 2),
           "compact_s": round(compact_s, 2), "read_after_compact_s": round(read_after_s, 2)}
    base_uri = f"{base}/{kind}-conc-{uuid.uuid4().hex[:6]}" + ("/metrics" if kind == "delta" else "")
    row["concurrent"] = concurrent(kind, base_uri, writers, max(1, n_trials // writers), evals)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--evals", type=int, default=10)
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--json", help="append the results (JSON lines) to this file")
    args = ap.parse_args()
    from tests.s3_server import S3Server, free_port

    rows = []
    server = S3Server(port=free_port()).start()
    try:
        os.environ.update(server.env())
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        server.make_bucket(bucket)
        with tempfile.TemporaryDirectory(prefix="bench-delta-") as tmp:
            for base in (tmp, f"s3://{bucket}"):
                for kind in ("store", "delta"):
                    row = measure(kind, base, args.trials, args.evals, args.writers)
                    print(json.dumps(row), flush=True)
                    rows.append(row)
    finally:
        server.stop()
    append_jsonl(args.json, rows)


if __name__ == "__main__":
    main()
