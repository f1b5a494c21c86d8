"""P2 fixed cost per trial and P3 sweep utilisation, both trial launchers side by side.

Runs the same tiny GAN sweep twice on one local Ray instance: once with every trial a Ray
Train TorchTrainer (`resources.launcher: train`, the default) and once inline in the Tune
trial actor (`launcher: inline`). For each trial:
  fixed cost = trial wall time (results store, trials.wall_time_s)
             - time inside the training loop (last report's loop_time_s)
and for the sweep: utilisation = sum(loop time) / (sweep wall time x concurrent slots).

    python benchmarks/bench_sweep_overhead.py --trials 12 --concurrent 2 --steps 150
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

from gensweep.platform.results import ResultsStore
from gensweep.platform.runner import run_sweep
from gensweep.platform.spec import parse_spec


def sweep_spec(root: str, launcher: str, trials: int, concurrent: int, steps: int):
    return parse_spec({
        "name": f"bench-{launcher}",
        "trainable": {"steps": steps, "eval_every": steps // 3, "width": 16, "batch_size": 64, "num_classes": 0},
        "space": {"lr": {"type": "loguniform", "low": 1e-4, "high": 1e-3}, "loss": ["ns", "hinge"]},
        "search": {"algorithm": "random", "num_trials": trials, "max_concurrent": concurrent},
        "scheduler": {"kind": "none"},
        "resources": {"launcher": launcher},
        "eval": {"num_samples": 500, "metrics": ["fid"]},
        "results": {"root": root},
    })


def measure(root: str, launcher: str, trials: int, concurrent: int, steps: int) -> dict:
    spec = sweep_spec(root, launcher, trials, concurrent, steps)
    t0 = time.perf_counter()
    outcome = run_sweep(spec, experiment=f"bench-{launcher}", verbose=0)
    sweep_wall = time.perf_counter() - t0
    store = ResultsStore.open(root)
    trial_rows = store.read("trials", outcome.experiment).set_index("trial_id")
    metrics = store.read("metrics", outcome.experiment)
    loop = metrics.groupby("trial_id")["loop_time_s"].max()
    fixed = (trial_rows["wall_time_s"] - loop).dropna()
    # the Tuner's own wall: from the first trial start to the last trial end
    starts = metrics.groupby("trial_id")["time_total_s"].max()
    return {
        "launcher": launcher,
        "trials": len(loop),
        "fixed_cost_mean_s": fixed.mean(),
        "fixed_cost_max_s": fixed.max(),
        "loop_time_mean_s": loop.mean(),
        "sweep_wall_s": sweep_wall,
        "utilisation": loop.sum() / (sweep_wall * concurrent),
        "errors": outcome.num_errors,
        "mean_tune_time_total_s": starts.mean(),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--concurrent", type=int, default=2)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--launchers", default="train,inline")
    args = ap.parse_args()
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    rows = []
    with tempfile.TemporaryDirectory() as root:
        # prepare data and reference statistics once, outside the timed sweeps
        from gensweep.platform.datasets import ensure_dataset
        from gensweep.platform.evaluation import prepare_reference

        warm = sweep_spec(root, "train", 1, 1, args.steps)
        prepare_reference(warm, ensure_dataset(warm.data, root), root)
        for launcher in args.launchers.split(","):
            rows.append(measure(root, launcher, args.trials, args.concurrent, args.steps))
    print("\nlauncher  trials  fixed cost mean/max (s)  loop mean (s)  sweep wall (s)  utilisation  errors")
    for r in rows:
        print(f"{r['launcher']:<8}  {r['trials']:>6}  {r['fixed_cost_mean_s']:>10.1f} / {r['fixed_cost_max_s']:<10.1f}"
              f"  {r['loop_time_mean_s']:>13.1f}  {r['sweep_wall_s']:>14.1f}  {r['utilisation']:>11.2f}  {r['errors']:>6}")


if __name__ == "__main__":
    main()
