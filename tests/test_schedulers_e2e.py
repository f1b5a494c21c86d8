"""Hyperband and PBT end to end on real Ray with tiny GAN trials (8px-wide nets, a few steps)."""
from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from gensweep.platform.report import build_report
from gensweep.platform.results import ResultsStore
from gensweep.platform.spec import parse_spec
from gensweep.platform.sweep.runner import run_sweep
from gensweep.platform.sweep.schedulers import pbt_population
from gensweep.platform.trial.checkpoints import STATE_FILE, load_state_file, read_report
from gensweep.platform.trial.launch import GRID_KEY
from tests.ray_support import ray_local  # noqa: F401, F811
from tests.test_tensorboard import read_events

pytestmark = pytest.mark.slow

EVERY = 5
TINY = {
    "trainable": {"steps": 30, "eval_every": EVERY, "width": 8, "z_dim": 16, "batch_size": 16, "num_classes": 0},
    "search": {"algorithm": "random", "num_trials": 4},
    "eval": {"num_samples": 64, "ref_samples": 500, "batch_size": 64},
}


def tiny_spec(root: Path, name: str, **overrides):
    return parse_spec({"name": name, **TINY, **overrides, "results": {"root": str(root)}})


def test_hyperband_stops_trials_and_the_study_and_tensorboard_agree(tmp_path, ray_local):
    # max_t = 2 evaluations, eta 2: Tune's first bracket runs 2 trials to the end, the second starts
    # 2 at one evaluation and stops the worse there
    spec = tiny_spec(tmp_path, "hb", trainable={**TINY["trainable"], "steps": 2 * EVERY},
                     space={"lr": {"type": "loguniform", "low": 1e-4, "high": 1e-3}},
                     scheduler={"kind": "hyperband", "reduction_factor": 2})
    outcome = run_sweep(spec, experiment="hb-run")
    assert outcome.num_errors == 0
    trials = ResultsStore.open(str(tmp_path)).read("trials", "hb-run").set_index("trial_id")
    assert sorted(trials["last_step"]) == [EVERY, 2 * EVERY, 2 * EVERY, 2 * EVERY]
    assert sorted(trials["status"]) == ["completed", "completed", "completed", "stopped"]
    study = optuna.load_study(study_name="hb-run", storage=f"sqlite:///{tmp_path}/optuna.db")
    states = sorted(t.state.name for t in study.trials)
    assert states == ["COMPLETE", "COMPLETE", "COMPLETE", "PRUNED"] and study.metric_names == ["fid"]
    # at the training step, not Tune's iteration (a result Hyperband answers with a stop reaches the
    # searcher as the trial's final result only, not as an intermediate value)
    assert all(set(t.intermediate_values) <= {EVERY, 2 * EVERY} for t in study.trials)
    assert any(EVERY in t.intermediate_values for t in study.trials)
    events = [e for d in (tmp_path / "ray" / "hb-run").iterdir() if d.is_dir() for e in read_events(d)]
    fid_steps = {e.step for e in events for v in e.summary.value if v.tag == "ray/tune/fid"}
    assert fid_steps == {EVERY, 2 * EVERY}
    assert {e.step for e in events for v in e.summary.value if v.tag == "samples"} == fid_steps


def _checkpoint_reports(root: Path, experiment: str, trial_id: str):
    """(report metrics, state) of every checkpoint Tune kept for ``trial_id``."""
    out = []
    for state_path in (root / "ray" / experiment).glob(f"*{trial_id}*/checkpoint_*/{STATE_FILE}"):
        report = read_report(str(state_path.parent / "report.json"))
        out.append((report["metrics"], load_state_file(str(state_path))))
    return out


def test_pbt_exploits_clone_the_donor_state_and_take_the_perturbed_lr(tmp_path, ray_local):
    # Deterministic by construction. Async PBT exploits only when the reporting trial ranks in the
    # lower quantile AND its donor recorded a checkpoint as a top trial at its own previous
    # perturbation point (the first trial there has nobody to rank against and records none). Two
    # trials side by side race: one that reaches its last step before the other has ranked is
    # never cloned, and nothing is exploited. So a trial holds both CPUs: one runs at a time, PBT
    # pauses it at each perturbation point and runs the one behind (reports A10 B10 A20 B20 ...).
    # Under seed 7 trial 0 (lr 1.5e-5) ranks above trial 1 (lr 8.5e-4, D at 1.7e-3: unstable) at
    # every one: B10 ranks bottom (no checkpoint of A to clone yet), A20 top, B20 bottom and clones A.
    spec = tiny_spec(tmp_path, "pbt", seed=7, trainable={**TINY["trainable"], "ttur": 2.0},
                     space={"lr": {"type": "loguniform", "low": 1e-5, "high": 3e-3}},
                     search={**TINY["search"], "num_trials": 2}, resources={"cpus_per_worker": 2},
                     scheduler={"kind": "pbt", "perturbation_interval": 2, "quantile_fraction": 0.5,
                                "resample_probability": 0.0})
    first = [cell["lr"] for cell in pbt_population(spec).param_space[GRID_KEY]["grid_search"]]
    assert first == [pytest.approx(1.5453e-5, rel=1e-4), pytest.approx(8.5498e-4, rel=1e-4)]  # the premise
    outcome = run_sweep(spec, experiment="pbt-run")
    assert outcome.num_errors == 0
    lineage = ResultsStore.open(str(tmp_path)).read("lineage", "pbt-run")
    assert not lineage.empty
    exploits = set()
    for row in lineage.itertuples():
        assert row.donor_trial_id != row.trial_id and row.step % (2 * EVERY) == 0
        assert row.replaced_step % (2 * EVERY) == 0  # a trial is exploited at its own perturbation point
        change = json.loads(row.perturbation)["lr"]
        assert change["op"] in ("* 0.8", "* 1.2") and change["to"] == pytest.approx(
            min(max(change["from"] * float(change["op"][2:]), 1e-5), 3e-3))
        exploits.add((row.trial_id, row.step, round(change["to"], 12)))
    # a report after an exploit comes from the donor's checkpoint (resumed_from_step: the donor's step)
    # under a perturbed lr of that exploit, and every checkpoint's optimizers run at its config's lr
    # (D at lr x ttur). (Tune names a trial's checkpoints by iteration, so a later exploit's reports
    # replace an earlier one's at the same steps: not every exploit keeps its checkpoints.)
    continued = 0
    for trial_id in set(lineage["trial_id"]):
        for metrics, state in _checkpoint_reports(tmp_path, "pbt-run", trial_id):
            lr = state["config"]["lr"]
            assert state["opt_G"]["param_groups"][0]["lr"] == pytest.approx(lr)
            assert state["opt_D"]["param_groups"][0]["lr"] == pytest.approx(2.0 * lr)
            start = metrics.get("resumed_from_step")
            taken = {to for t, step, to in exploits if (t, step) == (trial_id, start)}
            if taken and metrics["step"] == start + EVERY:  # not a restart from its own checkpoint
                assert round(lr, 12) in taken
                continued += 1
    assert continued >= 1
    page = build_report(str(tmp_path), "pbt-run", n_boot=50)
    assert 'id="lineage"' in page and str(lineage["donor_trial_id"].iloc[0]) in page
