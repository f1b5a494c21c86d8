"""P2 fixed cost per trial and P3 sweep utilisation, per trial launcher side by side.

Runs the same tiny GAN sweep once per launcher on one local Ray instance (started before the
timed sweeps, so no launcher pays for it): `resources.launcher: train` (every trial a Ray Train
TorchTrainer), `inline` (the loop in the Tune trial actor) and `auto` (the default: inline for
these single-worker trials). For each trial:
  fixed cost = trial wall time (results store, trials.wall_time_s)
             - time inside the training loop (last report's loop_time_s)
and for the sweep: utilisation = sum(loop time) / (sweep wall time x concurrent slots).

Where the rest of the sweep's slot-time goes (they add up to sweep wall x slots - sum(loop)):
  setup   - from `run_sweep` to the first trial start (preflight, shared dataset, Tuner start), x slots
  fixed   - inside trials, outside their loops (sum of the fixed costs)
  between - slots idle between a trial's end and the next start (trial actor start, imports)
  tail    - from the last trial end to `run_sweep`'s return (final flush, leaderboard), x slots
Also shown: the mean time a trial's loop waited for its data (`loader_wait_s`, inside the loop:
its first pass over the shared dataset).

    python benchmarks/bench_sweep_overhead.py --trials 12 --concurrent 2 --steps 150

With ``--fresh-ray`` each sweep instead runs in a new process whose ``run_sweep`` starts Ray
itself, as ``gensweep run`` does, so the sweep wall time (and "setup") holds the Ray start too:

    python benchmarks/bench_sweep_overhead.py --fresh-ray --launchers auto
"""
from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time

from benchmarks.sweep_support import local_ray, machine
from gensweep.platform.results import ResultsStore
from gensweep.platform.sweep.runner import run_sweep
from gensweep.platform.spec import parse_spec


def sweep_spec(root: str, launcher: str, trials: int, concurrent: int, steps: int, width: int = 16):
    return parse_spec({
        "name": f"bench-{launcher}",
        "trainable": {"steps": steps, "eval_every": steps // 3, "width": width, "batch_size": 64, "num_classes": 0},
        "space": {"lr": {"type": "loguniform", "low": 1e-4, "high": 1e-3}, "loss": ["ns", "hinge"]},
        "search": {"algorithm": "random", "num_trials": trials, "max_concurrent": concurrent},
        "scheduler": {"kind": "none"},
        "resources": {"launcher": launcher},
        "eval": {"num_samples": 500, "metrics": ["fid"]},
        "results": {"root": root},
    })


def measure(root: str, launcher: str, trials: int, concurrent: int, steps: int, width: int = 16,
            num_cpus: int | None = None, label: str = "") -> dict:
    spec = sweep_spec(root, launcher, trials, concurrent, steps, width)
    start = time.time()
    outcome = run_sweep(spec, experiment=f"bench-{launcher}{label}", num_cpus=num_cpus, verbose=0)
    end = time.time()
    sweep_wall = end - start
    store = ResultsStore.open(root)
    trial_rows = store.read("trials", outcome.experiment).set_index("trial_id")
    metrics = store.read("metrics", outcome.experiment)
    loop = metrics.groupby("trial_id")["loop_time_s"].max()
    wall = trial_rows["wall_time_s"]
    fixed = (wall - loop).dropna()
    first_start = trial_rows["started_at"].min().timestamp()
    last_end = trial_rows["ended_at"].max().timestamp()
    slots = concurrent
    return {
        "launcher": launcher + label,
        "resolves_to": spec.resources.trial_launcher,
        "trials": len(loop),
        "fixed_cost_mean_s": fixed.mean(),
        "fixed_cost_max_s": fixed.max(),
        "loop_time_mean_s": loop.mean(),
        "loader_wait_mean_s": metrics.groupby("trial_id")["loader_wait_s"].max().mean(),
        "sweep_wall_s": sweep_wall,
        "utilisation": loop.sum() / (sweep_wall * slots),
        "setup_slot_s": (first_start - start) * slots,
        "fixed_slot_s": fixed.sum(),
        "between_slot_s": (last_end - first_start) * slots - wall.sum(),
        "tail_slot_s": (end - last_end) * slots,
        "errors": outcome.num_errors,
    }


def _fresh_sweep(args: tuple) -> dict:
    """One sweep in this (new) process, Ray started by ``run_sweep``."""
    import ray

    try:
        return measure(*args, label=" fresh Ray")
    finally:
        ray.shutdown()


def prepare_once(root: str, steps: int) -> None:
    """The dataset and reference statistics, prepared outside the timed sweeps (which reuse them)."""
    from gensweep.platform.data.ensure import ensure_dataset
    from gensweep.platform.trial.evaluation import prepare_reference

    warm = sweep_spec(root, "train", 1, 1, steps)
    prepare_reference(warm, ensure_dataset(warm.data, root), root)


def fresh_ray_rows(root: str, args) -> list[dict]:
    prepare_once(root, args.steps)
    rows = []
    ctx = multiprocessing.get_context("spawn")
    for launcher in args.launchers.split(","):
        with ctx.Pool(1) as pool:
            rows.append(pool.apply(_fresh_sweep, ((root, launcher, args.trials, args.concurrent, args.steps,
                                                   args.width, args.cpus),)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--concurrent", type=int, default=2)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--width", type=int, default=16, help="DCGAN width (the default sweep's is 32)")
    ap.add_argument("--launchers", default="train,inline,auto")
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--fresh-ray", action="store_true", help="a new process and Ray instance per sweep")
    args = ap.parse_args()
    rows = []
    if args.fresh_ray:
        with tempfile.TemporaryDirectory() as root:
            rows = fresh_ray_rows(root, args)
        report(rows)
        return
    with tempfile.TemporaryDirectory() as root, local_ray(args.cpus):
        prepare_once(root, args.steps)
        for launcher in args.launchers.split(","):
            rows.append(measure(root, launcher, args.trials, args.concurrent, args.steps, args.width))
    report(rows)


def report(rows: list[dict]) -> None:
    print(f"\n{machine()}")
    print("launcher (runs as)  trials  fixed cost mean/max (s)  loop mean (s)  sweep wall (s)  utilisation  errors")
    for r in rows:
        print(f"{r['launcher'] + ' (' + r['resolves_to'] + ')':<18}  {r['trials']:>6}"
              f"  {r['fixed_cost_mean_s']:>10.1f} / {r['fixed_cost_max_s']:<10.1f}"
              f"  {r['loop_time_mean_s']:>13.1f}  {r['sweep_wall_s']:>14.1f}  {r['utilisation']:>11.2f}  {r['errors']:>6}")
    print("\nslot-seconds lost (sweep wall x slots - sum of loop time):")
    print("launcher  setup  fixed  between  tail  | loader wait in loop, mean per trial (s)")
    for r in rows:
        print(f"{r['launcher']:<18}  {r['setup_slot_s']:>5.1f}  {r['fixed_slot_s']:>5.1f}  {r['between_slot_s']:>7.1f}"
              f"  {r['tail_slot_s']:>4.1f}  | {r['loader_wait_mean_s']:.1f}")


if __name__ == "__main__":
    main()
