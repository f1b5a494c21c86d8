"""Where a `launcher: train` trial's fixed cost goes: its timeline, phase by phase.

Runs tiny GAN sweeps of `--trials` trials one at a time (a `TorchTrainer` per trial) with 1 and
then 2 Ray Train workers on a local Ray instance, after one unmeasured warm-up trial. Each trial's
timeline is put together from Ray's own task events (State API: when each actor creation or actor
call was submitted, got its worker process, started and finished), the trial's start and end as
the results store recorded them (the fixed cost's clock), and the loop's start and length as the
worker reported them (`loop_started_at`, `loop_time_s`). Boundaries, in order:

  trial start (Tune's on_trial_start)
  -> Train controller actor submitted   (run_trial: config, TorchTrainer, fit())
  -> controller process running         (a new Ray worker process)
  -> controller constructed             (imports, unpickling its arguments, callbacks)
  -> worker actors submitted            (placement group ready, synchronization actor)
  -> worker processes running           (new Ray worker processes)
  -> worker actors ready                (RayTrainWorker init, metadata)
  -> train context initialized          (per-worker Train context, callbacks' arguments)
  -> train function launched            (backend set-up: the torch process group, etc.)
  -> loop started                       (imports of the training code, context, data shard)
  [loop: not fixed cost]
  -> trial end                          (last report, worker-group shutdown, fit() returns)

The phases add up to the fixed cost (trial wall time minus loop time) that
`bench_sweep_overhead.py` reports.

    PYTHONPATH=. python benchmarks/bench_train_startup.py --trials 3
"""
from __future__ import annotations

import argparse
import tempfile
import time
from typing import Any

import numpy as np

from gensweep.platform.results import ResultsStore
from gensweep.platform.sweep.runner import run_sweep
from gensweep.platform.spec import parse_spec
from benchmarks.sweep_support import local_ray, machine, markdown

PHASES = [
    "run_trial set-up, TorchTrainer, fit()",
    "controller process start",
    "controller construction",
    "placement group, synchronization actor",
    "worker process start",
    "worker actor construction",
    "train context init",
    "backend set-up (torch process group, callbacks)",
    "train function start -> loop start",
    "loop end -> trial end (shutdown, fit() returns)",
]
GLOO = "  of which torch process group (gloo)"
CLEANER = "  of which placement-group cleaner stop"
ACTOR = "(before the trial clock) trial actor start"


def spec(root: str, name: str, trials: int, workers: int, steps: int):
    return parse_spec({
        "name": name,
        "trainable": {"steps": steps, "eval_every": steps // 2, "width": 16, "batch_size": 64, "num_classes": 0},
        "space": {"lr": {"type": "loguniform", "low": 1e-4, "high": 1e-3}},
        "search": {"algorithm": "random", "num_trials": trials, "max_concurrent": 1},
        "scheduler": {"kind": "none"},
        "resources": {"launcher": "train", "workers": workers},
        "eval": {"num_samples": 500, "metrics": ["fid"]},
        "results": {"root": root},
    })


TASKS = ("ImplicitFunc.__init__", "TrainController.__init__", "RayTrainWorker.__init__", "RayTrainWorker.get_metadata",
         "RayTrainWorker.init_train_context", "RayTrainWorker.run_train_fn", "execute._setup_torch_process_group",
         "PlacementGroupCleaner.stop")


def task_events() -> list[dict[str, Any]]:
    """The tasks in TASKS Ray recorded: name and the epoch second of each state each went through."""
    from ray.util.state import list_tasks

    time.sleep(3)  # workers send task events to the GCS about once a second
    out = []
    for name in TASKS:
        for t in list_tasks(filters=[("name", "=", name)], detail=True, limit=10_000, raise_on_missing_output=False):
            states = {e["state"]: e["created_ms"] / 1000 for e in (t.get("events") or [])}
            if states:
                out.append({"name": t["name"], "first": min(states.values()), **states})
    return out


def _pick(tasks, name, lo, hi):
    return [t for t in tasks if t["name"] == name and lo <= t["first"] <= hi]


def trial_phases(tasks, start: float, end: float, loop_start: float, loop_s: float) -> dict[str, float]:
    def at(name, state, agg):
        return agg(t[state] for t in _pick(tasks, name, start - 0.5, end + 0.5) if state in t)

    def span(name, a, b):
        return max((t[b] - t[a] for t in _pick(tasks, name, start - 0.5, end + 0.5) if a in t and b in t),
                   default=float("nan"))

    bounds = [
        start,
        at("TrainController.__init__", "PENDING_ARGS_AVAIL", min),
        at("TrainController.__init__", "RUNNING", min),
        at("TrainController.__init__", "FINISHED", min),
        at("RayTrainWorker.__init__", "PENDING_ARGS_AVAIL", min),
        at("RayTrainWorker.__init__", "RUNNING", max),
        at("RayTrainWorker.get_metadata", "FINISHED", max),
        at("RayTrainWorker.init_train_context", "FINISHED", max),
        at("RayTrainWorker.run_train_fn", "RUNNING", max),
        loop_start,
    ]
    phases = {p: b - a for p, a, b in zip(PHASES, bounds, bounds[1:])}
    phases[PHASES[-1]] = end - (loop_start + loop_s)
    phases[GLOO] = span("execute._setup_torch_process_group", "RUNNING", "FINISHED")
    phases[CLEANER] = span("PlacementGroupCleaner.stop", "RUNNING", "FINISHED")
    # Tune starts the trial clock once the trial actor is up; a reused actor has no start here
    actor = [t for t in tasks if t["name"] == "ImplicitFunc.__init__" and start - 1 <= t.get("FINISHED", 0) <= start]
    phases[ACTOR] = actor[0]["FINISHED"] - actor[0]["first"] if actor else float("nan")
    phases["fixed cost (sum of phases)"] = (end - start) - loop_s
    phases["loop (not fixed cost)"] = loop_s
    return phases


def measure(root: str, workers: int, trials: int, steps: int) -> dict[str, list[float]]:
    name = f"startup-w{workers}"
    out = run_sweep(spec(root, name, trials, workers, steps), experiment=name, verbose=0)
    assert out.num_errors == 0, f"{out.num_errors} trial(s) failed"
    tasks = task_events()
    store = ResultsStore.open(root)
    rows = store.read("trials", name).set_index("trial_id")
    metrics = store.read("metrics", name).sort_values("step")
    per_phase: dict[str, list[float]] = {}
    for tid, m in metrics.groupby("trial_id"):
        last = m.iloc[-1]
        start = rows.loc[tid, "started_at"].timestamp()
        end = rows.loc[tid, "ended_at"].timestamp()
        phases = trial_phases(tasks, start, end, float(last["loop_started_at"]), float(last["loop_time_s"]))
        for k, v in phases.items():
            per_phase.setdefault(k, []).append(v)
    return per_phase


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=3, help="measured trials per worker count")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--workers", default="1,2")
    args = ap.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    with tempfile.TemporaryDirectory() as root, local_ray(num_cpus=2):
        run_sweep(spec(root, "warm-up", 1, 1, args.steps), experiment="warm-up", verbose=0)
        results = {w: measure(root, w, args.trials, args.steps) for w in counts}
        where = machine()
    keys = list(next(iter(results.values())))
    rows = [[k] + [f"{np.nanmean(results[w][k]):.2f}" for w in counts] for k in keys]
    print(f"\n{where}; {args.trials} trial(s) per column, mean seconds")
    print(markdown(["phase"] + [f"{w} worker(s)" for w in counts], rows))


if __name__ == "__main__":
    main()
