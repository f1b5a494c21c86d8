"""``scheduler.kind`` hyperband and pbt: what the spec accepts, what PBT's explore may produce,
and the lineage section of the report. No Ray starts (the e2e runs: test_schedulers_e2e.py)."""
from __future__ import annotations

import json
import random

import pandas as pd
import pytest

from gensweep.platform.report.lineage import lineage, perturbation_text
from gensweep.platform.spec import SpecError, parse_spec
from gensweep.platform.sweep.schedulers import LineagePBT, pbt_population, scheduler_for, tune_max_concurrent
from gensweep.platform.trial.launch import GRID_KEY

BASE = {"name": "s", "trainable": {"steps": 30, "eval_every": 5},
        "space": {"lr": {"type": "loguniform", "low": 1e-4, "high": 1e-3}, "loss": ["ns", "wgan"],
                  "reg": ["none", "gp"], "ttur": {"type": "uniform", "low": 1.0, "high": 4.0}},
        "search": {"algorithm": "random", "num_trials": 4}}


def spec(scheduler, **overrides):
    return parse_spec({**BASE, "scheduler": scheduler, **overrides})


@pytest.mark.parametrize("doc, message", [
    ({"scheduler": {"kind": "pbt"}, "resources": {"workers": 2}}, "scheduler.kind: pbt clones checkpoints"),
    ({"scheduler": {"kind": "pbt", "mutations": ["beta9"]}}, "scheduler.mutations: 'beta9' is not a space parameter"),
    ({"scheduler": {"kind": "asha", "mutations": ["lr"]}}, "scheduler.mutations: only pbt perturbs"),
    ({"scheduler": {"kind": "pbt"}, "search": {"algorithm": "random", "num_trials": 1}}, "population of at least 2"),
    ({"scheduler": {"kind": "hyperband"}, "search": {"algorithm": "random", "num_trials": 4, "max_concurrent": 2}},
     "search.max_concurrent: hyperband needs its trials live together"),
    ({"scheduler": {"kind": "pbt", "perturbation_interval": 0}}, "scheduler.perturbation_interval"),
    ({"scheduler": {"kind": "pbt"}, "search": {"algorithm": "optuna-tpe"}}, "search.algorithm: pbt breeds"),
    ({"scheduler": {"kind": "bohb"}}, "scheduler.kind"),
])
def test_bad_scheduler_fields_name_the_field(doc, message):
    with pytest.raises(SpecError, match=message):
        parse_spec({**BASE, **doc})


def test_pbt_is_built_in_steps_and_runs_without_a_cap_on_live_trials():
    s = spec({"kind": "pbt", "perturbation_interval": 3})
    pbt = scheduler_for(s)
    assert isinstance(pbt, LineagePBT) and pbt.names == ["lr", "ttur"]  # unconditional numeric parameters
    assert pbt._time_attr == "step" and pbt._perturbation_interval == 15  # 3 evaluations of 5 steps
    assert tune_max_concurrent(s) is None and tune_max_concurrent(spec({"kind": "asha"})) is None
    assert tune_max_concurrent(spec({"kind": "asha"}, search={**BASE["search"], "max_concurrent": 2})) == 2


def test_pbt_first_generation_is_seeded_feasible_and_replicated():
    s = spec({"kind": "pbt"}, search={**BASE["search"], "seeds": [0, 1]})
    cells = pbt_population(s).param_space[GRID_KEY]["grid_search"]
    assert len(cells) == 8 and [c["seed"] for c in cells] == [0, 1] * 4
    assert all(not s.violations(c) for c in cells)  # no wgan without gp
    assert cells == pbt_population(s).param_space[GRID_KEY]["grid_search"]  # the spec's seed fixes it


class Trial:
    def __init__(self, config):
        self.config = config


def test_explore_stays_inside_the_space_and_the_family_rules():
    s = spec({"kind": "pbt", "mutations": ["lr", "loss"], "resample_probability": 0.0})
    pbt = scheduler_for(s)
    random.seed(0)
    donor = Trial({GRID_KEY: {"lr": 1e-3, "loss": "ns", "reg": "none", "ttur": 1.0, "seed": 0}})
    for _ in range(30):
        config, _ = pbt._get_new_config(Trial({}), donor)
        config = config[GRID_KEY]
        assert 1e-4 <= config["lr"] <= 1e-3  # x 1.2 of the upper bound is clamped back
        assert not s.violations({k: v for k, v in config.items()})  # never wgan without gp
        assert config["reg"] == "none" and config["ttur"] == 1.0  # not in mutations: the donor's
    assert pbt._operations["lr"] in ("* 0.8", "* 1.2")


def test_lineage_section_lists_each_exploit():
    rows = pd.DataFrame([{"trial_id": "b", "donor_trial_id": "a", "step": 10, "replaced_step": 15,
                          "perturbation": json.dumps({"lr": {"from": 0.001, "to": 0.0008, "op": "* 0.8"}}),
                          "exploited_at": pd.Timestamp("2026-01-01", tz="UTC")}])
    html = lineage(rows)
    assert "lr 0.001 -&gt; 0.0008 (* 0.8)" in html and ">a<" in html and ">10<" in html and ">15<" in html
    assert perturbation_text("not json") == "not json"
