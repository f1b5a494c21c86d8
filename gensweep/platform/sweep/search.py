"""Search algorithm and scheduler from the spec (registries of small builders)."""
from __future__ import annotations

from typing import Any, Callable, Optional

import optuna
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher

from gensweep.platform.spec import ExperimentSpec
from gensweep.platform.spec.space import with_replicates
from gensweep.platform.sweep.feasible import FeasibleSearcher
from gensweep.platform.sweep.replicates import ReplicateSearcher
from gensweep.platform.sweep.study import StudySearch
from gensweep.platform.trial.launch import GRID_KEY
from gensweep.trainables.registry import Registry


class SearchPlan:
    """What Tune needs: a search algorithm (or None), the param space and the number of samples."""

    def __init__(self, search_alg: Optional[Searcher], param_space: dict[str, Any], num_samples: int):
        self.search_alg = search_alg
        self.param_space = param_space
        self.num_samples = num_samples


SEARCHERS: Registry[Callable[[ExperimentSpec, Any], SearchPlan]] = Registry("search algorithm")
SCHEDULERS: Registry[Callable[[ExperimentSpec], TrialScheduler]] = Registry("scheduler")


def _optuna(spec: ExperimentSpec, sampler: optuna.samplers.BaseSampler, storage: Any, study_name: str) -> SearchPlan:
    searcher = StudySearch(
        spec=spec,
        space=spec.space.define_by_run(),
        metric=spec.search.metric,
        mode=spec.search.mode,
        sampler=sampler,
        storage=storage,
        study_name=study_name if storage is not None else None,
    )
    seeds = spec.replicate_seeds()
    replicated = ReplicateSearcher(FeasibleSearcher(searcher, spec.violations), seeds)
    return SearchPlan(replicated, {}, spec.search.num_trials * len(seeds))


@SEARCHERS.register("optuna-tpe", ref="Bergstra et al. 2011, Algorithms for Hyper-Parameter Optimization (TPE), via Optuna")
def _tpe(spec: ExperimentSpec, storage: Any, study_name: str = "") -> SearchPlan:
    return _optuna(spec, optuna.samplers.TPESampler(seed=spec.seed, n_startup_trials=max(2, spec.search.max_concurrent or 2)), storage, study_name)


@SEARCHERS.register("random", ref="Bergstra & Bengio 2012, Random Search for Hyper-Parameter Optimization")
def _random(spec: ExperimentSpec, storage: Any, study_name: str = "") -> SearchPlan:
    return _optuna(spec, optuna.samplers.RandomSampler(seed=spec.seed), storage, study_name)


@SEARCHERS.register("grid", ref="Lucic et al. 2018, Are GANs Created Equal? (factorial ablation, seeds as replicates)")
def _grid(spec: ExperimentSpec, storage: Any, study_name: str = "") -> SearchPlan:
    cells, dropped = spec.feasible_cells(spec.space.grid())
    for message in dropped:
        print(f"[gensweep] grid cell skipped: {message}", flush=True)
    cells = with_replicates(cells, spec.replicate_seeds())
    return SearchPlan(None, {GRID_KEY: tune.grid_search(cells)}, 1)


@SCHEDULERS.register("asha", ref="Li et al. 2020, A System for Massively Parallel Hyperparameter Tuning (ASHA)")
def _asha(spec: ExperimentSpec) -> TrialScheduler:
    max_t = spec.max_evals()
    return ASHAScheduler(
        time_attr="training_iteration",
        max_t=max_t,
        grace_period=min(spec.scheduler.grace_period, max_t),
        reduction_factor=spec.scheduler.reduction_factor,
    )


@SCHEDULERS.register("none", ref="every trial runs its full budget (FIFO)")
def _fifo(spec: ExperimentSpec) -> TrialScheduler:
    return FIFOScheduler()


def optuna_storage(url: Optional[str]) -> Any:
    return None if url is None else optuna.storages.RDBStorage(url)
