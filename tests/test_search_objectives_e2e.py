"""On real Ray: a multi-objective diffusion sweep whose space holds sampling-time parameters."""
from __future__ import annotations

import math

import optuna
import pytest

from gensweep.platform.results import ResultsStore
from gensweep.platform.results.query import sampling_rows, training_rows
from gensweep.platform.spec import parse_spec
from gensweep.platform.storage.layout import RootLayout
from gensweep.platform.sweep.runner import run_sweep
from tests.ray_support import ray_local  # noqa: F401

pytestmark = pytest.mark.slow


def test_one_training_per_config_scores_every_sampling_setting_and_the_study_has_a_front(tmp_path, ray_local):  # noqa: F811
    spec = parse_spec({
        "name": "mo", "family": "diffusion",
        "trainable": {"steps": 8, "eval_every": 4, "width": 8, "channel_mult": [1], "attn_res": 0,
                      "batch_size": 16, "num_classes": 0},
        "space": {"lr": {"type": "loguniform", "low": 1e-4, "high": 1e-3},
                  "sampler": ["ddim", "euler"], "sample_steps": [2, 3]},
        "search": {"algorithm": "optuna-nsga2", "num_trials": 2, "max_concurrent": 1,
                   "metrics": [{"name": "fid", "mode": "min"}, {"name": "nfe", "mode": "min"}]},
        "scheduler": {"kind": "none"},
        "eval": {"num_samples": 50, "ref_samples": 200, "batch_size": 50},
        "results": {"root": str(tmp_path)},
    })
    outcome = run_sweep(spec, experiment="mo-run")
    assert outcome.num_errors == 0
    store = ResultsStore.open(str(tmp_path))
    metrics = store.read("metrics", "mo-run")
    trials = store.read("trials", "mo-run")
    assert len(trials) == 2 and set(trials["status"]) == {"completed"}  # two trainings, not 2 x 4
    reports, settings = training_rows(metrics), sampling_rows(metrics)
    assert sorted(reports["step"]) == [4, 4, 8, 8]  # one report (and checkpoint) per eval of each training
    tags = {"sampler=ddim,sample_steps=2", "sampler=ddim,sample_steps=3", "sampler=euler,sample_steps=2",
            "sampler=euler,sample_steps=3"}
    for (trial_id, step), rows in settings.groupby(["trial_id", "step"]):
        assert set(rows["sampling"]) == tags and len(rows) == 4  # every setting scored on the same checkpoint
        assert rows["fid"].map(math.isfinite).all() and sorted(rows["nfe"]) == [2, 2, 3, 3]
        report = reports[(reports["trial_id"] == trial_id) & (reports["step"] == step)].iloc[0]
        best = rows.loc[rows["fid"].idxmin()]
        assert (report["sampling"], report["fid"], report["nfe"]) == (best["sampling"], best["fid"], best["nfe"])
        assert report["cpu_hours"] > 0 and report["gpu_hours"] == 0
    assert not any(c.startswith("fid/") for c in reports.columns)
    checkpoints = store.read("artifacts", "mo-run")
    assert (checkpoints["kind"] == "checkpoint").sum() == 4  # 2 trainings x 2 evals

    study = optuna.load_study(study_name="mo-run", storage=RootLayout(str(tmp_path)).optuna_url)
    assert study.metric_names == ["fid", "nfe"] and len(study.directions) == 2
    assert len([t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]) == 2
    board = outcome.leaderboard
    assert board["pareto_front"].any() and {"final_fid", "final_nfe"} <= set(board.columns)
    front = {tuple(t.values) for t in study.best_trials}
    assert {(r.final_fid, r.final_nfe) for r in board[board["pareto_front"]].itertuples()} == front
