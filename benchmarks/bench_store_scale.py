"""Results store and its readers at scale: synthetic experiments written through the results
callback's own hooks (no Ray), then the CLI timed against the same command on an empty root.

For each size (finished trials x evaluations):
- writes one experiment through ``ResultsCallback`` hooks (``setup``, ``on_trial_start``,
  ``on_trial_result`` per evaluation, ``on_trial_complete``, ``on_experiment_end``), as a sweep's
  driver would; the driver time per trial's rows is the hooks' total time / trials;
- counts part files per table of the experiment: the most seen while writing (sampled every
  ``--sample-every`` trials) and after the end;
- runs ``gensweep results ls``, ``results show``, ``results export`` and ``report`` in a
  subprocess each, recording wall time and peak RSS, and the floor (same command, empty root).

``--s3`` writes to a loopback S3 server (moto, started here on 127.0.0.1, stopped by PID).
Works on older checkouts too (only the callback's and store's long-standing API is used), so
the same script measures before and after.

Usage: python benchmarks/bench_store_scale.py --trials 100 1000 10000 [--evals 10] [--s3] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from types import SimpleNamespace

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from gensweep.platform.results import ResultsStore  # noqa: E402
from gensweep.platform.results.callback import ResultsCallback  # noqa: E402

TABLES = ("experiments", "trials", "metrics", "artifacts")
LEVELS = {"lr": [1e-4, 2e-4, 5e-4, 1e-3], "loss": ["ns", "hinge", "wgan"], "reg": ["none", "r1"]}

# Runs a command and prints its peak RSS (KiB): each command gets a fresh parent, so
# RUSAGE_CHILDREN is that command's alone.
_RSS = ("import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
        "print('MAXRSS', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(rc)")


def append_jsonl(path: str | None, rows: list[dict]) -> None:
    """Append ``rows`` to the JSON-lines file ``path`` (nothing when None)."""
    if path:
        with open(path, "a") as handle:
            handle.writelines(json.dumps(row) + "\n" for row in rows)


def fake_trials(n: int) -> list[SimpleNamespace]:
    out = []
    for i in range(n):
        config = {"lr": LEVELS["lr"][i % 4], "loss": LEVELS["loss"][(i // 4) % 3],
                  "reg": LEVELS["reg"][(i // 12) % 2], "seed": i % 3}
        out.append(SimpleNamespace(trial_id=f"{i:05d}", config=config, path=None, status="RUNNING",
                                   placement_group_factory=None))
    return out


def write_experiment(uri: str, experiment: str, n_trials: int, evals: int, sample_every: int) -> dict:
    """One experiment through the callback's hooks; driver seconds per trial and part counts."""
    cb = ResultsCallback(uri, experiment, spec={"model": "dcgan", "resources": {"workers": 1}},
                         git_commit_sha="bench", versions={"bench": "1"}, seed=0)
    store = ResultsStore.open(uri)
    trials = fake_trials(n_trials)
    most = dict.fromkeys(TABLES, 0)
    driver_s = 0.0
    cpu0 = time.process_time()  # the driver's CPU time: what a loaded, shared machine does not inflate
    t0 = time.perf_counter()
    cb.setup()
    driver_s += time.perf_counter() - t0
    for i, trial in enumerate(trials):
        t0 = time.perf_counter()
        cb.on_trial_start(i, trials, trial)
        base = 40.0 + 10.0 * LEVELS["lr"].index(trial.config["lr"]) + (i % 7)
        for k in range(evals):
            step = 100 * (k + 1)
            cb.on_trial_result(i, trials, trial, {
                "training_iteration": k + 1, "step": step, "fid": base * (1.0 - 0.05 * k), "kid": 0.01 * base,
                "d_loss": 0.5 + 0.01 * k, "g_loss": 1.5 - 0.01 * k, "time_total_s": 30.0 * (k + 1),
                "backbone": "inception", "eval_n": 1000, "timestamp": time.time()})
        trial.status = "TERMINATED"
        cb.on_trial_complete(i, trials, trial)
        driver_s += time.perf_counter() - t0
        if sample_every and (i + 1) % sample_every == 0:
            cpu_sampling = time.process_time()
            for table in TABLES:
                most[table] = max(most[table], len(store.part_files(table, experiment)))
            cpu0 += time.process_time() - cpu_sampling
    t0 = time.perf_counter()
    cb.on_experiment_end(trials)
    driver_s += time.perf_counter() - t0
    cpu_s = time.process_time() - cpu0
    after = {table: len(store.part_files(table, experiment)) for table in TABLES}
    for table in TABLES:
        most[table] = max(most[table], after[table])
    return {"driver_ms_per_trial": round(1000.0 * driver_s / n_trials, 2), "driver_s": round(driver_s, 2),
            "driver_cpu_ms_per_trial": round(1000.0 * cpu_s / n_trials, 2),
            "parts_after": after, "parts_most_sampled": most}


def timed(cmd: list[str], env: dict, repeat: int = 1) -> dict:
    """The fastest of ``repeat`` runs (a shared machine's load only ever adds time) and its peak RSS."""
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", _RSS, *cmd], env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        rss = next((int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("MAXRSS")), 0)
        run = {"s": round(wall, 2), "rss_mib": round(rss / 1024, 1), "rc": proc.returncode}
        best = run if best is None or run["s"] < best["s"] else best
    return best


def commands(root: str, experiment: str, out: str) -> dict[str, list[str]]:
    cli = [sys.executable, "-m", "gensweep.cli"]
    return {
        "ls": [*cli, "results", "--root", root, "ls"],
        "show": [*cli, "results", "--root", root, "show", experiment],
        "export": [*cli, "results", "--root", root, "export", experiment, "-o", os.path.join(out, "export")],
        "report": [*cli, "report", experiment, "--root", root, "-o", os.path.join(out, "report.html")],
    }


def measure(root: str, empty: str, n_trials: int, evals: int, sample_every: int, env: dict, tmp: str,
            repeat: int = 1) -> dict:
    experiment = f"scale-{n_trials}"
    row = {"trials": n_trials, "evals": evals, "root": root.split("://")[0] if "://" in root else "local"}
    row.update(write_experiment(root, experiment, n_trials, evals, sample_every))
    for name, cmd in commands(root, experiment, tmp).items():
        run = timed(cmd, env, repeat if name != "report" else 1)
        floor = timed(commands(empty, experiment, tmp)[name], env, repeat)
        row[name] = {**run, "floor_s": floor["s"], "over_floor_s": round(run["s"] - floor["s"], 2)}
        print(f"  {name}: {run} floor {floor['s']} s", flush=True)
    return row


def start_s3(tmp: str):
    from tests.s3_server import S3Server, free_port

    server = S3Server(port=free_port()).start()
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    server.make_bucket(bucket)
    return server, bucket


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--trials", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--evals", type=int, default=10)
    ap.add_argument("--s3", action="store_true", help="write to a loopback S3 server instead of local disk")
    ap.add_argument("--sample-every", type=int, default=50, help="count part files every N trials while writing")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each command (and floor); the fastest counts")
    ap.add_argument("--json", help="append the results (JSON lines) to this file")
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": REPO}
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        server = None
        try:
            if args.s3:
                server, bucket = start_s3(tmp)
                os.environ.update(server.env())
                env.update(server.env())
                base, empty = f"s3://{bucket}", f"s3://{bucket}/empty"
            else:
                base, empty = tmp, os.path.join(tmp, "empty")
            for n in args.trials:
                root = f"{base}/store-{n}" if args.s3 else os.path.join(base, f"store-{n}")
                print(f"{n} trials x {args.evals} evaluations -> {root}", flush=True)
                row = measure(root, empty, n, args.evals, args.sample_every, env, tmp, args.repeat)
                print(json.dumps(row), flush=True)
                rows.append(row)
        finally:
            if server is not None:
                server.stop()
    append_jsonl(args.json, rows)


if __name__ == "__main__":
    main()
