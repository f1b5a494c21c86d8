"""Tune's Optuna searcher, made to agree with the results store.

Three differences from :class:`ray.tune.search.optuna.OptunaSearch`, which our leaderboard would
contradict otherwise:

* a trial a scheduler stopped before its last step (ASHA, Hyperband) is told to the study as
  ``PRUNED``, not ``COMPLETE`` with the value it had when stopped; a trial is known to have run
  its budget when its last result's ``step`` reached the trial config's ``steps``;
* intermediate values are reported at the training ``step``, not at Tune's iteration count;
* the study's objective is named after the search metric (``study.metric_names``).
"""
from __future__ import annotations

import warnings
from typing import Any, Optional

import optuna
from ray.air.constants import TRAINING_ITERATION
from ray.tune.search.optuna import OptunaSearch

from gensweep.platform.spec import ExperimentSpec


class StudySearch(OptunaSearch):
    def __init__(self, *args: Any, spec: ExperimentSpec, **kwargs: Any):
        self.spec = spec  # before super(): it sets the study up, which names the objective
        super().__init__(*args, **kwargs)

    def _setup_study(self, mode: Any) -> None:
        super()._setup_study(mode)
        metrics = self._metric if isinstance(self._metric, list) else [self._metric]
        with warnings.catch_warnings():  # set_metric_names is marked experimental in some Optuna releases
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self._ot_study.set_metric_names(list(metrics))

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if "step" in result:
            result = {**result, TRAINING_ITERATION: int(result["step"])}
        super().on_trial_result(trial_id, result)

    def final_step(self, trial_id: str) -> Optional[int]:
        """The ``steps`` of the trial's config (None when it cannot be known)."""
        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is None:
            return None
        try:
            return int(getattr(self.spec.trial_config(dict(ot_trial.params)), "steps"))
        except (ValueError, AttributeError, TypeError):
            return None

    def on_trial_complete(self, trial_id: str, result: Optional[dict] = None, error: bool = False) -> None:
        final = self.final_step(trial_id)
        if not error and result and "step" in result and final is not None and int(result["step"]) < final:
            result = None  # stopped by the scheduler: OptunaSearch tells a result-less, error-free trial PRUNED
        super().on_trial_complete(trial_id, result=result, error=error)
