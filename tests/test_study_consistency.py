"""The Optuna study agrees with the results store: a trial a scheduler stopped early is PRUNED
(not COMPLETE with its last value), intermediate values sit at the training step (not Tune's
iteration), and the objective carries the search metric's name. The search plan's searcher is
driven directly, as Tune drives it; no Ray starts."""
from __future__ import annotations

import optuna

from gensweep.platform.spec import parse_spec
from gensweep.platform.sweep.search import SEARCHERS

STEPS, EVERY = 30, 10


def _study(tmp_path, seeds=None):
    search = {"algorithm": "random", "num_trials": 2, **({"seeds": seeds} if seeds else {})}
    spec = parse_spec({"name": "t", "trainable": {"steps": STEPS, "eval_every": EVERY},
                       "space": {"lr": {"type": "loguniform", "low": 1e-4, "high": 1e-3}}, "search": search})
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    searcher = SEARCHERS.get("random")(spec, optuna.storages.RDBStorage(url), "study").search_alg
    return searcher, lambda: optuna.load_study(study_name="study", storage=url)


def _report(searcher, trial_id, fids):
    for i, fid in enumerate(fids, start=1):
        result = {"fid": fid, "step": i * EVERY, "training_iteration": i}
        searcher.on_trial_result(trial_id, result)
    return result


def test_a_trial_stopped_early_is_pruned_and_a_finished_one_complete(tmp_path):
    searcher, study = _study(tmp_path)
    searcher.suggest("a"), searcher.suggest("b")
    searcher.on_trial_complete("a", _report(searcher, "a", [50.0, 40.0, 30.0]))  # all 30 steps
    searcher.on_trial_complete("b", _report(searcher, "b", [60.0]))  # stopped by ASHA at step 10
    by_value = {t.intermediate_values.get(STEPS, None): t for t in study().trials}
    finished, stopped = by_value[30.0], by_value[None]
    assert finished.state == optuna.trial.TrialState.COMPLETE and finished.value == 30.0
    # Optuna keeps a pruned trial's last intermediate value (at step 10) with it, as its own pruners do
    assert stopped.state == optuna.trial.TrialState.PRUNED and stopped.intermediate_values == {EVERY: 60.0}


def test_intermediate_values_are_indexed_by_training_step(tmp_path):
    searcher, study = _study(tmp_path)
    searcher.suggest("a")
    searcher.on_trial_complete("a", _report(searcher, "a", [50.0, 40.0, 30.0]))
    assert study().trials[0].intermediate_values == {10: 50.0, 20: 40.0, 30: 30.0}


def test_the_objective_is_named_after_the_search_metric(tmp_path):
    _, study = _study(tmp_path)
    assert study().metric_names == ["fid"]


def test_replicates_stopped_early_make_a_pruned_config(tmp_path):
    searcher, study = _study(tmp_path, seeds=[0, 1])
    searcher.suggest("a"), searcher.suggest("b")
    searcher.on_trial_complete("a", _report(searcher, "a", [50.0]))
    searcher.on_trial_complete("b", _report(searcher, "b", [55.0, 45.0, 35.0]))
    (trial,) = study().trials
    assert trial.state == optuna.trial.TrialState.PRUNED  # one replicate did not reach the budget


def test_a_paused_trial_stopped_at_its_last_step_is_complete(tmp_path):
    # Hyperband pauses a trial at a rung and may stop it there; Tune then completes it without a
    # result. At its final step it ran its budget (the store says completed), short of it: pruned.
    searcher, study = _study(tmp_path)
    searcher.suggest("a"), searcher.suggest("b")
    _report(searcher, "a", [50.0, 40.0, 30.0])
    searcher.on_trial_complete("a", None)
    _report(searcher, "b", [60.0])
    searcher.on_trial_complete("b", None)
    states = {t.intermediate_values.get(EVERY): (t.state.name, t.value) for t in study().trials}
    assert states == {50.0: ("COMPLETE", 30.0), 60.0: ("PRUNED", 60.0)}
