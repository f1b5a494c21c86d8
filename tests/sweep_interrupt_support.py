"""A tiny sweep to stop mid-way and finish later, and what its rows must show afterwards.

Shared by tests/test_interrupt_sweep.py (a driver subprocess signalled directly) and
tests/test_slurm.py (the same through a real SLURM's sbatch script and requeue)."""
from __future__ import annotations

import glob
import os
from pathlib import Path

STEPS, EVAL_EVERY = 120, 40


def tiny_spec(root: Path, name: str = "stopme") -> dict:
    return {
        "name": name,
        "trainable": {"steps": STEPS, "eval_every": EVAL_EVERY, "width": 8, "z_dim": 16, "batch_size": 32,
                      "num_classes": 0, "grid_size": 16},
        "space": {"loss": ["ns", "hinge"]},
        "search": {"algorithm": "grid"},
        "scheduler": {"kind": "none"},
        "resources": {"workers": 1, "cpus_per_worker": 0.9, "launcher": "inline"},
        "eval": {"num_samples": 200, "ref_samples": 1000, "metrics": ["fid"]},
        "results": {"root": str(root)},
    }


def has_checkpoint(root: Path, experiment: str) -> bool:
    return bool(glob.glob(str(root / "ray" / experiment / "*" / "checkpoint_*")))


def check_finished_after_stop(root: Path, experiment: str, n_trials: int = 2) -> dict[str, int]:
    """Every trial completed at its last step; each trial that was stopped checkpointed at the step it
    was at (off the evaluation schedule) and continued from exactly there: no step trained twice, no
    row lost. Returns trial id -> the step of its stop checkpoint."""
    from gensweep.platform.results import ResultsStore

    store = ResultsStore.open(str(root))
    trials = store.read("trials", experiment)
    assert trials["trial_id"].is_unique and len(trials) == n_trials, trials
    assert (trials["status"] == "completed").all(), trials[["trial_id", "status", "reason"]]
    metrics = store.read("metrics", experiment)
    raw = store.read("metrics", experiment, dedupe_rows=False)
    stopped_at: dict[str, int] = {}
    for tid in trials["trial_id"]:
        rows = metrics[metrics["trial_id"] == tid].sort_values("step")
        steps = [int(s) for s in rows["step"]]
        scheduled = list(range(EVAL_EVERY, STEPS + 1, EVAL_EVERY))
        assert set(scheduled) <= set(steps) and steps[-1] == STEPS, (tid, steps)  # no row lost
        extra = [s for s in steps if s % EVAL_EVERY]
        assert len(extra) <= 1, (tid, steps)  # one stop checkpoint at most (one stop)
        for step, same in raw[raw["trial_id"] == tid].groupby("step"):  # never computed twice
            assert same["fid"].nunique() == 1 and same["worker_pid"].nunique() == 1, (tid, step)
        resumed = rows["resumed_from_step"].dropna().unique()
        if extra:
            stopped_at[tid] = extra[0]
            # continued from its last checkpoint: the stop's, or a scheduled one the trial reached
            # before the driver ended it (training goes on after the stop checkpoint); no step twice
            # (checked above from the raw rows)
            assert len(resumed) == 1 and resumed[0] >= extra[0] and int(resumed[0]) in steps, (
                tid, rows[["step", "resumed_from_step"]])
            assert (rows.loc[rows["step"] > resumed[0], "resumed_from_step"] == resumed[0]).all()
            assert rows.loc[rows["step"] <= resumed[0], "resumed_from_step"].isna().all()
    return stopped_at


def clean_env(tmp: Path, ray_tmp: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "AWS_", "GENSWEEP_"))}
    env.update(RAY_TMPDIR=ray_tmp, GENSWEEP_CACHE=str(tmp / "cache"), PYTHONUNBUFFERED="1",
               RAY_USAGE_STATS_ENABLED="0")
    return env
