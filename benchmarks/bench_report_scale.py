"""Time and peak memory of ``gensweep report`` on synthetic experiments of 1,000 to 10,000 trials.

Each experiment is written through the results store's own API (``ResultsStore.write``) into a
results root under ``--workdir``: N trials x ``--evals`` evaluations of an Optuna-style search
(loss and regularizer categorical, a log-uniform lr, an int width), an ASHA-like schedule that
stops half the trials after a third of the steps, cpu_hours per trial and the spec saved in the
experiments row.  The rows go in batches of ``--batch`` trials, so the part count stays small (as
a compacted store's would): this measures the report, not the store's part handling.

Every report is rendered in a fresh subprocess, which prints its wall time and peak resident
memory (``ru_maxrss``), so one size's memory does not hide in another's.

    PYTHONPATH=$PWD python benchmarks/bench_report_scale.py --trials 1000 10000
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

SPEC = """name: scale
family: gan
seed: 0
trainable: {{steps: {steps}, eval_every: {every}}}
space:
  loss: [ns, hinge, lsgan, rpgan]
  reg: [none, r1, spectral-norm, lecam, bcr]
  lr: {{type: loguniform, low: 1.0e-5, high: 1.0e-2}}
  width: {{type: int, low: 16, high: 64, step: 16}}
search: {{algorithm: optuna-tpe, num_trials: {n}, metric: fid, mode: min}}
scheduler: {{kind: asha, grace_period: 2, reduction_factor: 2}}
"""
LOSS = {"ns": 0.0, "hinge": -4.0, "lsgan": 6.0, "rpgan": -2.0}
REG = {"none": 5.0, "r1": -3.0, "spectral-norm": 0.0, "lecam": 1.0}  # bcr never sampled


def experiment_name(n: int) -> str:
    return f"scale-{n:05d}-20260101-000000"


def write_experiment(root: str, n: int, evals: int, batch: int, seed: int = 0) -> str:
    from gensweep.platform.results import ResultsStore

    exp = experiment_name(n)
    marker = os.path.join(root, f".{exp}.done")
    if os.path.exists(marker):
        return exp
    store = ResultsStore.open(root)
    every = 45
    steps = every * evals
    store.log_experiment(exp, spec=SPEC.format(steps=steps, every=every, n=n), status="completed", seed=seed)
    rng = np.random.default_rng(seed)
    losses = rng.choice(list(LOSS), n)
    regs = rng.choice(list(REG), n)
    lrs = np.exp(rng.uniform(np.log(1e-5), np.log(1e-2), n))
    widths = rng.choice([16, 32, 48, 64], n)
    stopped = rng.random(n) < 0.5
    for start in range(0, n, batch):
        metrics, trials = [], []
        for i in range(start, min(n, start + batch)):
            tid = f"t{i:05d}"
            base = 30.0 + LOSS[losses[i]] + REG[regs[i]] + 4.0 * abs(np.log10(lrs[i]) + 3.5) + rng.normal(0, 1.5)
            config = {"config/loss": str(losses[i]), "config/reg": str(regs[i]), "config/lr": float(lrs[i]),
                      "config/width": int(widths[i])}
            last = evals // 3 if stopped[i] else evals
            for k in range(last):
                step = every * (k + 1)
                fid = base + 200.0 * np.exp(-0.5 * k) + rng.normal(0, 0.5)
                metrics.append({"experiment": exp, "trial_id": tid, "step": step, "fid": float(fid),
                                "kid": float(fid) / 1000.0, "backbone": "mnist-lenet", "eval_n": 1000,
                                "fid_floor": 1.7, "time_total_s": 20.0 * (k + 1), **config})
            trials.append({"experiment": exp, "trial_id": tid, "seed": i,
                           "status": "stopped" if stopped[i] else "completed", "reason": None,
                           "wall_time_s": 20.0 * last, "cpu_hours": 20.0 * last / 3600.0, **config})
        store.write("metrics", metrics)
        store.write("trials", trials)
    open(marker, "w").close()
    return exp


def render(root: str, exp: str, out: str) -> dict:
    t0 = time.perf_counter()
    from gensweep.platform.report.build import write_report

    t1 = time.perf_counter()
    write_report(root, exp, out)
    t2 = time.perf_counter()
    return {"import_s": round(t1 - t0, 2), "report_s": round(t2 - t1, 2),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
            "html_kib": round(os.path.getsize(out) / 1024.0, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--evals", type=int, default=10)
    parser.add_argument("--batch", type=int, default=1000, help="trials per store write")
    parser.add_argument("--workdir", default="/tmp/gensweep-bench-report")
    parser.add_argument("--render", nargs=3, metavar=("ROOT", "EXPERIMENT", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.render:
        print(json.dumps(render(*args.render)))
        return 0
    for n in args.trials:
        root = os.path.join(args.workdir, f"root-{n}x{args.evals}")
        t0 = time.perf_counter()
        exp = write_experiment(root, n, args.evals, args.batch)
        written = time.perf_counter() - t0
        out = os.path.join(args.workdir, f"report-{n}.html")
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--render", root, exp, out],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            return proc.returncode
        result = {"trials": n, "evals": args.evals, "write_s": round(written, 1),
                  **json.loads(proc.stdout.strip().splitlines()[-1])}
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
