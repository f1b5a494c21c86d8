"""A sweep whose trial runs on two Ray Train workers (gloo on CPU, ``launcher: train``).

One trial, two workers, ``max_failures: 1``: as soon as its second checkpoint exists, the
worker that wrote it (rank 0, by the PID in its report) is SIGKILLed; Train restarts the worker
group from the latest checkpoint, and the trial finishes with an FID row for every evaluation,
exactly once, the rows after the kill coming from new workers.
"""
from __future__ import annotations

import math

import pytest

from gensweep.platform.results import ResultsStore
from gensweep.platform.spec import parse_spec
from tests.ray_support import ray_local  # noqa: F401 - fixture
from tests.test_faults_worker import WorkerKiller, run_sweep_with

pytestmark = pytest.mark.slow

EXP = "two-workers"
STEPS = [6, 12, 18, 24]


def test_two_worker_trial_scores_and_resumes_after_a_worker_kill(tmp_path, ray_local):  # noqa: F811
    spec = parse_spec({
        "name": "two-workers",
        "seed": 0,
        "trainable": {"steps": STEPS[-1], "eval_every": STEPS[0], "width": 8, "z_dim": 16, "batch_size": 16,
                      "num_classes": 0, "grid_size": 4},
        "search": {"num_trials": 1},
        "scheduler": {"kind": "none"},
        "resources": {"workers": 2, "cpus_per_worker": 0.9, "max_failures": 1, "launcher": "train"},
        "eval": {"num_samples": 60, "ref_samples": 500, "metrics": ["fid"]},
        "results": {"root": str(tmp_path)},
    })
    killer = WorkerKiller(str(tmp_path / "ray" / f"{EXP}-*/checkpoint_*"), b"RayTrainWorker")
    outcome = run_sweep_with(killer, spec, EXP)
    assert killer.error is None, killer.error
    assert outcome.num_errors == 0

    store = ResultsStore.open(str(tmp_path))
    trials = store.read("trials", EXP)
    assert list(trials["status"]) == ["completed"]
    rows = store.read("metrics", EXP).sort_values("step")
    assert list(rows["step"]) == STEPS  # every evaluation once, none lost to the kill
    assert all(math.isfinite(v) and v > 0 for v in rows["fid"])
    assert set(rows["eval_n"]) == {60}  # the two ranks' samples, gathered into one set

    resumed = rows["resumed_from_step"].dropna().unique()
    assert len(resumed) == 1 and resumed[0] >= killer.last_step_before_kill
    after = rows[rows["step"] > resumed[0]]
    assert len(after) >= 1 and (after["worker_pid"] != killer.killed_pid).all()
