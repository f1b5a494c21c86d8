"""Seeds as a replicate axis for model-based search: each config runs once per seed.

:class:`ReplicateSearcher` wraps a Tune searcher (Optuna's, behind the feasibility check). It asks
the inner searcher for a config once, then hands Tune that config once per seed in
``search.seeds`` (the seed among its parameters, so the trainable is built with it), before it
asks for the next config. The inner searcher sees one point per config: when every replicate has
ended, it is told the mean of the replicates' final ``metric`` values (for Optuna: one study trial
per config, valued by that mean). A config with a failed replicate is told it failed (Optuna:
``FAIL``), as a single failed trial would be; one whose replicates ended without the metric is
told it ended without a score (``PRUNED``). With several seeds, intermediate results are not
passed on (one seed's learning curve is not the config's); with one, they are, as before.

Ray Tune's own ``Repeater`` groups trials the same way, but hands the trainable a repeat index
rather than a seed, and averages the replicates that scored (``nanmean``): a config that
diverges on one seed would score as if it had not, and one that fails on every seed is told NaN.
"""
from __future__ import annotations

from typing import Optional

from ray.tune.search import Searcher

from gensweep.platform.spec.space import with_replicates
from gensweep.platform.sweep.feasible import restore_wrapper, save_wrapper


class ReplicateSearcher(Searcher):
    def __init__(self, inner: Searcher, seeds: list[int]):
        super().__init__(metric=inner.metric, mode=inner.mode)
        self.inner = inner
        self.seeds = list(seeds)
        self._queue: list[tuple[str, dict]] = []  # (group, config with its seed) not yet handed to a trial
        self._group: dict[str, str] = {}  # Tune trial id -> its group: the trial id the config was suggested for
        self._ended: dict[str, list[Optional[dict]]] = {}  # group -> final results of its ended replicates (None: failed)
        self._last: dict[str, dict] = {}  # Tune trial id -> its latest result (a trial stopped while paused gets none)

    def set_search_properties(self, metric: Optional[str], mode: Optional[str], config: dict, **spec) -> bool:
        return self.inner.set_search_properties(metric, mode, config, **spec)

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        return self.inner.set_max_concurrency(max_concurrent)

    def suggest(self, trial_id: str) -> Optional[dict]:
        if not self._queue:
            config = self.inner.suggest(trial_id)
            if not isinstance(config, dict):  # None (wait) or Searcher.FINISHED
                return config
            self._queue = [(trial_id, replicate) for replicate in with_replicates([config], self.seeds)]
            self._ended[trial_id] = []
        group, config = self._queue.pop(0)
        self._group[trial_id] = group
        return config

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self._last[trial_id] = dict(result)
        if len(self.seeds) == 1:
            self.inner.on_trial_result(self._group.get(trial_id, trial_id), result)

    def on_trial_complete(self, trial_id: str, result: Optional[dict] = None, error: bool = False) -> None:
        last = self._last.pop(trial_id, None)
        if result is None and not error:  # stopped while paused (Hyperband, PBT): it ended at its latest result
            result = last
        group = self._group.pop(trial_id, None)
        if group is None:  # not suggested here
            self.inner.on_trial_complete(trial_id, result=result, error=error)
            return
        ended = self._ended[group]
        ended.append(None if error else dict(result or {}))
        if len(ended) < len(self.seeds):
            return
        del self._ended[group]
        if any(r is None for r in ended):
            self.inner.on_trial_complete(group, result=None, error=True)
        elif all(m in r for r in ended for m in self._objectives()):
            means = {m: sum(float(r[m]) for r in ended) / len(ended) for m in self._objectives()}
            reached = [r["step"] for r in ended if "step" in r]  # a config ran as far as its shortest replicate
            least = {"step": min(reached)} if reached else {}
            self.inner.on_trial_complete(group, result={**ended[-1], **means, **least})
        else:
            self.inner.on_trial_complete(group, result=None, error=False)

    def _objectives(self) -> list[str]:
        """The metric names told to the inner searcher (several for a multi-objective search)."""
        return list(self.metric) if isinstance(self.metric, (list, tuple)) else [self.metric]

    def save(self, checkpoint_path: str) -> None:
        save_wrapper(checkpoint_path, self.inner, {"queue": self._queue, "group": self._group, "ended": self._ended,
                                                    "last": self._last})

    def restore(self, checkpoint_path: str) -> None:
        state = restore_wrapper(checkpoint_path, self.inner)
        self._queue, self._group, self._ended = state["queue"], state["group"], state["ended"]
        self._last = state.get("last", {})  # absent from states saved by earlier versions
