"""Multi-objective search (``search.metrics``) and sampling-time parameters: spec, searcher, rows, front."""
from __future__ import annotations

import math

import numpy as np
import optuna
import pandas as pd
import pytest

from gensweep.platform.results.front import final_values, nondominated
from gensweep.platform.results.query import training_rows
from gensweep.platform.results.rows import headline_metrics, setting_rows
from gensweep.platform.spec import SpecError, parse_spec
from gensweep.platform.sweep.search import SEARCHERS
from gensweep.platform.trial.report_metrics import best_setting, compute_hours, with_setting
from gensweep.trainables.diffusion.config import DiffusionConfig
from gensweep.trainables.gan.config import GanConfig
from gensweep.trainables.gan.trainable import latents
from gensweep.trainables.sampling import sampling_fields, setting_configs

DIFF = {"name": "mo", "family": "diffusion",
        "trainable": {"steps": 4, "eval_every": 2, "width": 8, "channel_mult": [1], "attn_res": 0, "batch_size": 8,
                      "num_classes": 0},
        "space": {"lr": [1e-3, 2e-3], "sampler": ["ddim", "euler"], "sample_steps": [2, 3]}}


def spec(**over):
    return parse_spec({**DIFF, **over})


def test_families_declare_their_sampling_time_fields():
    assert sampling_fields(DiffusionConfig) == ("sampler", "sample_steps", "eta", "guidance")
    assert sampling_fields(GanConfig) == ("truncation",)


def test_sampling_parameters_leave_the_searched_space_for_every_trials_grid():
    s = spec()
    assert s.training_space().names() == ["lr"]
    cfg = s.resolve_trial({"lr": 1e-3})
    assert cfg["sampling_grid"] == [{"sampler": "ddim", "sample_steps": 2}, {"sampler": "ddim", "sample_steps": 3},
                                    {"sampler": "euler", "sample_steps": 2}, {"sampler": "euler", "sample_steps": 3}]
    tags = [tag for tag, c in setting_configs(DiffusionConfig.model_validate(cfg))]
    assert tags[0] == "sampler=ddim,sample_steps=2" and len(set(tags)) == 4
    # settings the family refuses are left out of the grid (eta affects ddim only)
    grid = spec(space={"sampler": ["ddim", "euler"], "eta": [0.0, 1.0]}).resolve_trial({})["sampling_grid"]
    assert {"sampler": "euler", "eta": 1.0} not in grid and len(grid) == 3


@pytest.mark.parametrize("over, field", [
    ({"space": {"eta": {"type": "uniform", "low": 0.0, "high": 1.0}}}, "space.eta"),
    ({"space": {"sampler": ["ddim"], "lr": {"type": "categorical", "choices": [1e-3], "when": {"sampler": ["ddim"]}}}},
     "space.lr.when"),
    ({"search": {"metrics": [{"name": "fid"}, {"name": "lpips"}]}}, "search.metrics.1.name"),
    ({"search": {"metric": "kid", "metrics": [{"name": "fid"}, {"name": "nfe"}]}}, "metrics is exclusive with metric"),
    ({"search": {"mode": "max", "metrics": [{"name": "fid"}, {"name": "nfe"}]}}, "metrics is exclusive with mode"),
    ({"search": {"metrics": [{"name": "fid"}, {"name": "fid"}]}}, "fid listed twice"),
])
def test_bad_objectives_and_sampling_spaces_name_the_field(over, field):
    with pytest.raises(SpecError, match=field):
        spec(**over)


def test_the_first_objective_is_the_primary_metric_and_a_saved_spec_reloads():
    import yaml

    s = spec(search={"algorithm": "optuna-nsga2", "metrics": [{"name": "nfe"}, {"name": "fid"}]})
    assert (s.search.metric, s.search.mode) == ("nfe", "min")  # ASHA and the leaderboard rank by it
    assert parse_spec(yaml.safe_load(s.to_yaml())).search.objectives() == [("nfe", "min"), ("fid", "min")]


@pytest.mark.parametrize("algorithm, sampler", [("optuna-nsga2", optuna.samplers.NSGAIISampler),
                                                ("optuna-tpe", optuna.samplers.TPESampler)])
def test_multi_objective_study_has_named_directions_and_a_front(algorithm, sampler):
    s = spec(search={"algorithm": algorithm, "num_trials": 4,
                     "metrics": [{"name": "fid", "mode": "min"}, {"name": "params", "mode": "max"}]})
    plan = SEARCHERS.get(algorithm)(s, None, "mo")
    study = plan.search_alg.inner.inner._ot_study
    assert isinstance(study.sampler, sampler)
    assert study.directions == [optuna.study.StudyDirection.MINIMIZE, optuna.study.StudyDirection.MAXIMIZE]
    assert study.metric_names == ["fid", "params"]
    told = {"t0": (10.0, 5.0), "t1": (20.0, 9.0), "t2": (30.0, 1.0)}  # t2 is dominated by t0
    for tid, (fid, params) in told.items():
        assert "lr" in plan.search_alg.suggest(tid)
        plan.search_alg.on_trial_complete(tid, {"fid": fid, "params": params})
    assert sorted(t.values for t in study.best_trials) == [[10.0, 5.0], [20.0, 9.0]]
    import pickle

    restored = pickle.loads(pickle.dumps(plan.search_alg))  # Tune pickles the searcher with the Tuner
    assert isinstance(restored.inner.inner._ot_study.sampler, sampler) and "lr" in restored.suggest("t3")


def test_nondominated_is_the_front_of_every_objective():
    v = np.array([[1.0, 5.0], [2.0, 4.0], [2.0, 6.0], [math.nan, 0.0], [1.0, 5.0]])
    assert nondominated(v, ["min", "min"]).tolist() == [True, True, False, False, True]
    assert nondominated(v, ["min", "max"]).tolist() == [True, False, True, False, True]


def test_final_values_read_the_last_training_report_not_setting_rows():
    m = pd.DataFrame({"trial_id": ["a", "a", "a"], "step": [1, 2, 2], "fid": [9.0, 7.0, 1.0],
                      "sampling_row": [None, None, True]})
    assert final_values(m, ["fid"]).loc["a", "fid"] == 7.0


def test_each_eval_reports_its_best_setting_and_every_setting_gets_a_tagged_row():
    tags = ["s=a", "s=b"]
    reported = {"fid": 5.0, "fid/s=a": 5.0, "fid/s=b": 3.0, "nfe/s=a": 10, "nfe/s=b": 20, "loss": 0.1}
    assert best_setting(reported, tags, "fid", "min") == "s=b" and best_setting(reported, tags, "fid", "max") == "s=a"
    assert best_setting({"fid/s=a": math.nan}, tags, "fid", "min") is None
    out = with_setting(reported, "s=b")
    assert (out["fid"], out["nfe"], out["sampling"]) == (3.0, 20, "s=b")
    settings = {"s=a": {"s": "a"}, "s=b": {"s": "b"}}
    rows = setting_rows("e", "t", 2, out, settings, reported_at=0.0, columns={"config/lr": 1e-3})
    assert [(r["sampling"], r["sampling/s"], r["fid"], r["nfe"]) for r in rows] == [("s=a", "a", 5.0, 10),
                                                                                     ("s=b", "b", 3.0, 20)]
    assert len({r["row_key"] for r in rows}) == 2 and all(r["config/lr"] == 1e-3 for r in rows)
    assert "fid/s=a" not in headline_metrics(out, settings) and headline_metrics(out, settings)["fid"] == 3.0
    frame = pd.DataFrame([{"trial_id": "t", "step": 2, "fid": 3.0}, *rows])
    assert training_rows(frame)["fid"].tolist() == [3.0]


def test_cost_hours_accumulate_over_a_resume():
    hours = compute_hours({"CPU": 2.0, "GPU": 1.0}, 1800.0, before={"gpu_hours": 0.25, "cpu_hours": 1.0})
    assert hours == {"gpu_hours": 0.75, "cpu_hours": 2.0}


def test_truncated_latents_stay_inside_the_bound():
    import torch

    z = latents(2000, 8, torch.Generator().manual_seed(0), truncation=0.5)
    assert z.abs().max() <= 0.5 and z.std() > 0.2
    assert torch.equal(latents(4, 8, torch.Generator().manual_seed(1)), torch.randn(4, 8, generator=torch.Generator().manual_seed(1)))


def test_report_front_reads_the_searched_objectives(tmp_path):
    from gensweep.platform.report import build_report
    from gensweep.platform.results import ResultsStore
    from tests.report_support import Page

    store = ResultsStore.open(str(tmp_path))
    spec = "name: mo\nfamily: diffusion\nsearch:\n  metrics:\n  - {name: fid, mode: min}\n  - {name: nfe, mode: min}\n"
    store.log_experiment("mo-1", spec=spec, status="completed", seed=0)
    # (final fid, nfe): t2 is dominated by t0; t1 and t0 and t3 are on the front. t0's best fid comes
    # early (step 1) but the front reads the last report, the value the study was told.
    finals = {"t0": (10.0, 10), "t1": (20.0, 5), "t2": (30.0, 12), "t3": (5.0, 50)}
    rows = []
    for tid, (fid, nfe) in finals.items():
        rows += [{"experiment": "mo-1", "trial_id": tid, "step": 1, "fid": fid - (8 if tid == "t0" else -1), "nfe": nfe},
                 {"experiment": "mo-1", "trial_id": tid, "step": 2, "fid": fid, "nfe": nfe},
                 {"experiment": "mo-1", "trial_id": tid, "step": 2, "fid": 0.1, "nfe": 1, "sampling_row": True,
                  "sampling": "other", "row_key": f"mo-1/{tid}/2/other"}]
        store.write("trials", [{"experiment": "mo-1", "trial_id": tid, "status": "completed", "cpu_hours": 1.0}])
    store.write("metrics", rows)
    page = Page(build_report(str(tmp_path), "mo-1"))
    table = page.tables["pareto-table"]
    assert sorted(r[0] for r in table[1:]) == ["t0", "t1", "t3"] and table[0] == ["trial", "fid", "nfe"]


def test_experiment_summary_counts_reports_not_setting_rows(tmp_path):
    from gensweep.platform.results import ResultsStore
    from gensweep.platform.results.summary import summarize

    store = ResultsStore.open(str(tmp_path))
    rows = [{"experiment": "e", "trial_id": "t", "step": 2, "fid": 3.0}]
    rows += setting_rows("e", "t", 2, {"fid/s=a": 5.0, "fid/s=b": 3.0}, {"s=a": {"s": "a"}, "s=b": {"s": "b"}},
                         reported_at=0.0)
    store.write("metrics", rows)
    assert summarize(store, "e", ["fid"])["n_reports"] == 1
