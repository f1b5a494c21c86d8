"""Model-based search that never starts a trial the family's combination rules forbid.

A sampled config that breaks a rule (e.g. ``loss: wgan`` with a regularizer that does not
constrain D) would fail its trial before training. :class:`FeasibleSearcher` checks every
suggestion first; a refused one is reported to the inner searcher as a point that ended without
a score, and the searcher is asked again, so no trial of the budget is spent on it. For Optuna
that point is PRUNED: TPE ranks it behind every scored trial, so it learns to leave the region
(a FAILed point would teach it nothing, and TPE would suggest the same point again and again).
"""
from __future__ import annotations

import os
import pickle
import tempfile
from typing import Any, Callable, Optional

from ray.tune.search import Searcher

from gensweep.platform.spec import SpecError


class NoFeasibleSuggestion(SpecError):
    """The searcher kept suggesting configs the family's rules forbid."""


class FeasibleSearcher(Searcher):
    def __init__(self, inner: Searcher, violations: Callable[[dict[str, Any]], list[str]], max_tries: int = 100):
        super().__init__(metric=inner.metric, mode=inner.mode)
        self.inner = inner
        self.violations = violations
        self.max_tries = max_tries
        self.refused: list[str] = []
        self._inner_ids: dict[str, str] = {}  # Tune trial id -> the inner searcher's id of its point

    def set_search_properties(self, metric: Optional[str], mode: Optional[str], config: dict, **spec) -> bool:
        return self.inner.set_search_properties(metric, mode, config, **spec)

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        return self.inner.set_max_concurrency(max_concurrent)

    def suggest(self, trial_id: str) -> Optional[dict]:
        for attempt in range(self.max_tries):
            inner_id = trial_id if attempt == 0 else f"{trial_id}-refused{attempt}"
            config = self.inner.suggest(inner_id)
            if not isinstance(config, dict):  # None (wait) or Searcher.FINISHED
                return config
            problems = self.violations(config)
            if not problems:
                self._inner_ids[trial_id] = inner_id
                return config
            message = f"{config}: {'; '.join(problems)}"
            self.refused.append(message)
            print(f"[gensweep] sampled config refused before training: {message}", flush=True)
            self.inner.on_trial_complete(inner_id, result=None, error=False)
        raise NoFeasibleSuggestion(
            f"the searcher suggested {self.max_tries} configs in a row that break the family's rules"
            f" (last: {self.refused[-1]}); narrow the space with `when:` conditions"
        )

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.inner.on_trial_result(self._inner_ids.get(trial_id, trial_id), result)

    def on_trial_complete(self, trial_id: str, result: Optional[dict] = None, error: bool = False) -> None:
        self.inner.on_trial_complete(self._inner_ids.pop(trial_id, trial_id), result=result, error=error)

    def save(self, checkpoint_path: str) -> None:
        save_wrapper(checkpoint_path, self.inner, {"inner_ids": self._inner_ids, "refused": self.refused})

    def restore(self, checkpoint_path: str) -> None:
        state = restore_wrapper(checkpoint_path, self.inner)
        self._inner_ids, self.refused = state["inner_ids"], state["refused"]


def save_wrapper(checkpoint_path: str, inner: Searcher, state: dict[str, Any]) -> None:
    """Save a searcher that wraps ``inner``: the inner searcher's own saved state and the wrapper's ``state``."""
    with tempfile.TemporaryDirectory() as tmp:
        inner_path = os.path.join(tmp, "inner.pkl")
        inner.save(inner_path)
        with open(inner_path, "rb") as f:
            saved = f.read()
    with open(checkpoint_path, "wb") as f:
        pickle.dump({**state, "inner": saved}, f)


def restore_wrapper(checkpoint_path: str, inner: Searcher) -> dict[str, Any]:
    """Restore ``inner`` from what :func:`save_wrapper` saved; returns the wrapper's state."""
    with open(checkpoint_path, "rb") as f:
        state = pickle.load(f)
    with tempfile.TemporaryDirectory() as tmp:
        inner_path = os.path.join(tmp, "inner.pkl")
        with open(inner_path, "wb") as f:
            f.write(state.pop("inner"))
        inner.restore(inner_path)
    return state
