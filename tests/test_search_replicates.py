"""``search.seeds`` is a replicate axis for every search algorithm: each sampled config runs once
per seed, its replicates share one ``config_id``, and every trial (row) carries its seed.

The planning functions are used directly (the search plan's searcher or grid); no Ray starts.
"""
from __future__ import annotations

from types import SimpleNamespace

import optuna
import pytest

from gensweep.platform.results.rows import config_columns as row_columns
from gensweep.platform.results.rows import trial_row
from gensweep.platform.results.status import TrialStatus
from gensweep.platform.spec import parse_spec
from gensweep.platform.sweep.search import SEARCHERS
from gensweep.platform.sweep.setup import flatten_trial_config
from gensweep.platform.trial.launch import GRID_KEY, sampled_params

SPACE = {"loss": ["ns", "hinge"], "lr": {"type": "loguniform", "low": 1e-4, "high": 1e-3}}


def spec_of(algorithm="random", seeds=(0, 1), num_trials=3, **extra):
    search = {"algorithm": algorithm, "num_trials": num_trials, **({"seeds": list(seeds)} if seeds else {})}
    space = {"loss": ["ns", "hinge"]} if algorithm == "grid" else SPACE
    doc = {"name": "t", "space": space, "search": search, **extra}
    if algorithm == "grid":
        doc["scheduler"] = {"kind": "none"}
    return parse_spec(doc)


def planned_configs(spec, storage=None, values=None):
    """Tune's configs of a whole sweep, in the order Tune would start them (each trial completed
    with ``values[i]`` before the next is suggested, like one trial at a time)."""
    plan = SEARCHERS.get(spec.search.algorithm)(spec, storage, "study")
    if plan.search_alg is None:  # a grid: one Tune trial per replicate cell
        return plan, [{GRID_KEY: cell} for cell in plan.param_space[GRID_KEY]["grid_search"]]
    configs = []
    for i in range(plan.num_samples):
        configs.append(plan.search_alg.suggest(f"t{i}"))
        fid = values[i] if values else 10.0 + i
        plan.search_alg.on_trial_complete(f"t{i}", {"fid": fid, "training_iteration": 1})
    return plan, configs


def columns_of(config):
    """The trial's columns as the results callback makes them (the sweep's flattener)."""
    return row_columns(config, flatten_trial_config)


@pytest.mark.parametrize("algorithm", ["random", "optuna-tpe"])
def test_every_sampled_config_runs_once_per_seed_under_one_config_id(algorithm):
    spec = spec_of(algorithm, seeds=(0, 1), num_trials=3)
    plan, configs = planned_configs(spec)
    assert plan.num_samples == 6 and len(configs) == 6  # num_trials counts configs
    for first, second in zip(configs[::2], configs[1::2]):
        p1, p2 = sampled_params(first), sampled_params(second)
        assert (p1["seed"], p2["seed"]) == (0, 1)
        assert {k: v for k, v in p1.items() if k != "seed"} == {k: v for k, v in p2.items() if k != "seed"}
        assert columns_of(first)["config_id"] == columns_of(second)["config_id"]
    ids = [columns_of(c)["config_id"] for c in configs[::2]]
    assert len(set(ids)) == 3  # three sampled configs (continuous lr: never the same twice)


@pytest.mark.parametrize("algorithm", ["random", "optuna-tpe", "grid"])
def test_the_trainable_and_the_trial_row_get_the_replicates_seed(algorithm):
    spec = spec_of(algorithm, seeds=(3, 5), num_trials=2)
    _, configs = planned_configs(spec)
    seen = []
    for config in configs:
        seed = sampled_params(config)["seed"]
        assert spec.resolve_trial(sampled_params(config))["seed"] == seed  # what the trainable is built with
        trial = SimpleNamespace(trial_id="t", config=config, placement_group_factory=None, path=None)
        row = trial_row("e", trial, TrialStatus.RUNNING, None, started=None, last={}, columns=columns_of(config))
        assert row["seed"] == seed and row["config_id"] == columns_of(config)["config_id"]
        assert "config/config_id" not in row
        seen.append(seed)
    assert sorted(set(seen)) == [3, 5] and seen.count(3) == seen.count(5)


@pytest.mark.parametrize("algorithm", ["random", "optuna-tpe", "grid"])
def test_without_search_seeds_every_trial_runs_at_the_specs_seed(algorithm):
    spec = spec_of(algorithm, seeds=None, num_trials=2, seed=7)
    plan, configs = planned_configs(spec)
    assert {sampled_params(c)["seed"] for c in configs} == {7}
    assert len(configs) == 2  # grid: 2 cells x 1 seed; optuna: 2 configs x 1 seed


def test_the_study_gets_one_trial_per_config_valued_by_the_mean_over_its_seeds(tmp_path):
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/optuna.db")
    spec = spec_of("random", seeds=(0, 1, 2), num_trials=2)
    _, configs = planned_configs(spec, storage, values=[1.0, 2.0, 6.0, 10.0, 20.0, 30.0])
    study = optuna.load_study(study_name="study", storage=storage)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert [t.value for t in study.trials] == [3.0, 20.0]
    for trial, config in zip(study.trials, configs[::3]):
        assert trial.params == {k: v for k, v in sampled_params(config).items() if k != "seed"}


def test_a_config_with_a_failed_replicate_fails_in_the_study(tmp_path):
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/optuna.db")
    searcher = SEARCHERS.get("random")(spec_of("random", seeds=(0, 1)), storage, "study").search_alg
    searcher.suggest("a"), searcher.suggest("b")
    searcher.on_trial_complete("b", error=True)
    study = optuna.load_study(study_name="study", storage=storage)
    assert study.trials[0].state == optuna.trial.TrialState.RUNNING  # waits for its other seed
    searcher.on_trial_complete("a", {"fid": 5.0, "training_iteration": 1})
    study = optuna.load_study(study_name="study", storage=storage)
    assert study.trials[0].state == optuna.trial.TrialState.FAIL and study.trials[0].value is None


def test_pending_replicates_survive_save_and_restore(tmp_path):
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/optuna.db")
    spec = spec_of("random", seeds=(0, 1))
    searcher = SEARCHERS.get("random")(spec, storage, "study").search_alg
    first = searcher.suggest("a")
    searcher.on_trial_complete("a", {"fid": 4.0, "training_iteration": 1})
    searcher.save(str(tmp_path / "searcher.pkl"))

    restored = SEARCHERS.get("random")(spec, storage, "study").search_alg
    restored.restore(str(tmp_path / "searcher.pkl"))
    second = restored.suggest("b")  # the config's second seed, not a new config
    assert sampled_params(second)["seed"] == 1 and columns_of(second)["config_id"] == columns_of(first)["config_id"]
    restored.on_trial_complete("b", {"fid": 6.0, "training_iteration": 1})
    study = optuna.load_study(study_name="study", storage=storage)
    assert [t.value for t in study.trials] == [5.0]


def test_config_id_names_the_parameters_without_the_seed():
    from gensweep.platform.spec.space import config_id

    assert config_id({"loss": "ns", "lr": 1e-4, "seed": 0}) == config_id({"lr": 1e-4, "loss": "ns", "seed": 1})
    assert config_id({"loss": "ns", "lr": 1e-4}) != config_id({"loss": "ns", "lr": 2e-4})
    assert config_id({"loss": "ns", "lr": 1e-4}) != config_id({"loss": "hinge", "lr": 1e-4})
