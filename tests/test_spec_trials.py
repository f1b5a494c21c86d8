"""What a spec hands each trial and the sweep: replicate seeds, objectives, the sampling-time grid,
evaluation counts, the launcher's restarts, and the saved YAML (no Ray)."""
from __future__ import annotations

import pytest
import yaml

from gensweep.platform.spec import InfeasibleConfig, parse_spec

DIFFUSION_SPACE = {"sampler": ["ddim", "ddpm"], "lr": [1e-4, 2e-4]}  # sampler: sampling-time


def test_replicate_seeds_are_the_seed_list_else_the_one_seed_a_trial_gets():
    assert parse_spec({"name": "t", "seed": 7, "search": {"seeds": [3, 5]}}).replicate_seeds() == [3, 5]
    assert parse_spec({"name": "t", "seed": 7}).replicate_seeds() == [7]
    assert parse_spec({"name": "t", "seed": 7, "trainable": {"seed": 9}}).replicate_seeds() == [9]


def test_objectives_are_the_metric_or_the_metric_list_primary_first():
    assert parse_spec({"name": "t"}).search.objectives() == [("fid", "min")]
    assert parse_spec({"name": "t", "search": {"metric": "gpu_hours", "mode": "max"}}).search.objectives() == [("gpu_hours", "max")]
    spec = parse_spec({"name": "t", "search": {"metrics": [{"name": "params"}, {"name": "gpu_hours", "mode": "max"}]}})
    assert spec.search.objectives() == [("params", "min"), ("gpu_hours", "max")]


def test_sampling_time_parameters_become_each_trials_grid_not_searched():
    spec = parse_spec({"name": "t", "family": "diffusion", "seed": 4, "data": {"resolution": 16},
                       "space": DIFFUSION_SPACE})
    assert spec.training_space().names() == ["lr"]
    values = spec.trial_values({"lr": 1e-4, "sampler": "ddpm"})  # a sampled sampler is replaced by the grid
    assert values == {"resolution": 16, "channels": 1, "seed": 4, "lr": 1e-4,
                      "sampling_grid": [{"sampler": "ddim"}, {"sampler": "ddpm"}]}
    cfg = spec.resolve_trial({"lr": 2e-4})
    assert cfg["lr"] == 2e-4 and cfg["sampler"] is None and cfg["resolution"] == 16
    assert cfg["sampling_grid"] == [{"sampler": "ddim"}, {"sampler": "ddpm"}]
    plain = parse_spec({"name": "t", "family": "diffusion", "space": {"lr": [1e-4]}})
    assert "sampling_grid" not in plain.trial_values({"lr": 1e-4})  # no sampling-time parameter: no grid


def test_a_trial_without_a_valid_sampling_setting_is_infeasible_with_the_reason():
    # eta acts only with ddim: with the sampler fixed to ddpm no level of the grid is a valid setting
    # (parse_spec refuses such a spec; a copy of a valid one reaches the trial-time check)
    spec = parse_spec({"name": "t", "family": "diffusion", "search": {"algorithm": "random"},
                       "space": {"sampler": ["ddim", "ddpm"], "eta": [0.5]}})
    assert spec.violations({}) == []  # ddim with eta 0.5 is a valid setting
    with_ddpm = spec.model_copy(update={"trainable": {"sampler": "ddpm"}, "space": spec.space.model_copy(
        update={"params": {"eta": spec.space.params["eta"]}})})
    expected = "space: no combination of eta is a valid setting with this trial's values"
    assert with_ddpm.violations({}) == [expected]
    with pytest.raises(InfeasibleConfig) as info:
        with_ddpm.trial_config({})
    assert str(info.value) == f"infeasible trial config {{}}: {expected}"


def test_every_broken_rule_is_named_once_joined_by_semicolons():
    spec = parse_spec({"name": "t", "search": {"algorithm": "random"}, "space": {"loss": ["ns", "hinge"]}})
    cell = {"loss": "ns", "lr": -1.0, "precision": "fp16"}  # two field errors
    problems = spec.violations(cell)
    assert len(problems) == 2 and any(p.startswith("lr: ") for p in problems)
    keep, dropped = spec.feasible_cells([cell, {"loss": "hinge"}])
    assert keep == [{"loss": "hinge"}] and dropped == [f"{cell}: {problems[0]}; {problems[1]}"]
    with pytest.raises(InfeasibleConfig) as info:
        spec.trial_config(cell)
    assert str(info.value) == f"infeasible trial config {cell}: {problems[0]}; {problems[1]}"


@pytest.mark.parametrize("trainable, evals", [({}, 5), ({"steps": 900, "eval_every": 300}, 3),
                                              ({"steps": 901, "eval_every": 300}, 4), ({"steps": 1, "eval_every": 7}, 1)])
def test_max_evals_counts_the_evaluations_up_to_the_last_step(trainable, evals):
    # gan defaults: 1000 steps, an evaluation every 200 and at the end: ceil(steps / eval_every)
    assert parse_spec({"name": "t", "trainable": trainable}).max_evals() == evals


@pytest.mark.parametrize("resources, restarts", [({"max_failures": 2}, 2), ({"max_failures": 2, "workers": 2}, 0),
                                                 ({"max_failures": 2, "launcher": "train"}, 0),
                                                 ({"max_failures": 0}, 0)])
def test_only_an_inline_trial_is_restarted_by_tune(resources, restarts):
    assert parse_spec({"name": "t", "resources": resources}).resources.trial_restarts == restarts


def test_saved_yaml_keeps_the_field_order_and_plain_types():
    spec = parse_spec({"name": "t", "seed": 3, "data": {"resize": "resize"},
                       "eval": {"ladder": [{"until_step": 5, "num_samples": 10}]}})
    text = spec.to_yaml()
    assert [line.split(":")[0] for line in text.splitlines() if not line.startswith(" ")][:4] == \
        ["name", "family", "seed", "trainable"]
    doc = yaml.safe_load(text)
    assert doc["data"]["resize"] == "stretch"  # the older name is saved under the current one
    assert doc["eval"]["ladder"] == [{"until_step": 5, "num_samples": 10}]
