"""Model-based search never hands Tune a config that breaks a combination rule."""
from __future__ import annotations

import optuna
import pytest

from gensweep.platform.sweep.feasible import NoFeasibleSuggestion
from gensweep.platform.sweep.search import SEARCHERS
from gensweep.platform.spec import parse_spec

# wgan needs a Lipschitz constraint: (wgan, none) breaks a rule, the other three cells run
SPACE = {"loss": ["ns", "wgan"], "reg": ["none", "gp"]}


def plan(tmp_path, algorithm="random", space=SPACE):
    spec = parse_spec({"name": "t", "space": space, "search": {"algorithm": algorithm}})
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/optuna.db")
    # the sweep's searcher: seeds as replicates (one seed here) over the feasibility check (.inner)
    return SEARCHERS.get(algorithm)(spec, storage, "study").search_alg, storage


def states(storage) -> dict[str, int]:
    trials = optuna.load_study(study_name="study", storage=storage).trials
    return {s.name: sum(t.state == s for t in trials) for s in optuna.trial.TrialState}


@pytest.mark.parametrize("algorithm", ["random", "optuna-tpe"])
def test_infeasible_suggestions_are_refused_and_never_reach_a_trial(tmp_path, algorithm):
    searcher, storage = plan(tmp_path, algorithm)
    seen = set()
    for i in range(24):
        config = searcher.suggest(f"t{i}")
        assert (config["loss"], config["reg"]) != ("wgan", "none")
        seen.add((config["loss"], config["reg"]))
        searcher.on_trial_result(f"t{i}", {"fid": 10.0 + i, "training_iteration": 1})
        searcher.on_trial_complete(f"t{i}", {"fid": 10.0 + i, "training_iteration": 1})
    assert seen == {("ns", "none"), ("ns", "gp"), ("wgan", "gp")}
    assert searcher.inner.refused and all("wgan" in m and "fields: loss, reg" in m for m in searcher.inner.refused)
    # every refused point ends PRUNED, without a score (TPE ranks it last); every trial COMPLETE
    counts = states(storage)
    assert counts["COMPLETE"] == 24 and counts["PRUNED"] == len(searcher.inner.refused) and counts["FAIL"] == 0


def test_a_pending_trial_survives_save_and_restore(tmp_path):
    searcher, storage = plan(tmp_path)
    i = 0
    while not searcher.inner.refused:  # leave the first trial that needed a second suggestion pending
        searcher.suggest(f"t{i}")
        pending = f"t{i}"
        if not searcher.inner.refused:
            searcher.on_trial_complete(pending, {"fid": 1.0, "training_iteration": 1})
        i += 1
    searcher.save(str(tmp_path / "searcher.pkl"))

    restored, _ = plan(tmp_path)
    restored.restore(str(tmp_path / "searcher.pkl"))
    assert restored.inner.refused == searcher.inner.refused
    before = states(storage)["COMPLETE"]
    restored.on_trial_complete(pending, {"fid": 1.0, "training_iteration": 1})
    assert states(storage)["COMPLETE"] == before + 1


def test_a_space_with_no_feasible_point_fails_clearly(tmp_path):
    searcher, _ = plan(tmp_path, space={"loss": ["wgan"], "reg": ["none", "r1"]})
    with pytest.raises(NoFeasibleSuggestion, match="break the family's rules"):
        searcher.suggest("t0")
