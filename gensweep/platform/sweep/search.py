"""Search algorithm and scheduler from the spec (registries of small builders)."""
from __future__ import annotations

from typing import Any, Callable, Optional

import optuna
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher

from gensweep.platform.spec import ExperimentSpec
from gensweep.platform.spec.space import with_replicates
from gensweep.platform.storage.secrets import with_password, without_password
from gensweep.platform.sweep.feasible import FeasibleSearcher
from gensweep.platform.sweep.nsga2 import PicklableNSGAII
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
    names, modes = zip(*spec.search.objectives())
    multi = len(names) > 1
    searcher = StudySearch(  # names the study's objectives (set_metric_names), one or several
        spec=spec,
        space=spec.training_space().define_by_run(),
        metric=list(names) if multi else names[0],
        mode=list(modes) if multi else modes[0],
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


@SEARCHERS.register("optuna-nsga2", ref="Deb et al. 2002, A Fast and Elitist Multiobjective Genetic Algorithm: NSGA-II, via Optuna")
def _nsga2(spec: ExperimentSpec, storage: Any, study_name: str = "") -> SearchPlan:
    population = max(2, min(50, spec.search.num_trials // 2))  # >= 2 generations per sweep
    return _optuna(spec, PicklableNSGAII(seed=spec.seed, population_size=population), storage, study_name)


@SEARCHERS.register("random", ref="Bergstra & Bengio 2012, Random Search for Hyper-Parameter Optimization")
def _random(spec: ExperimentSpec, storage: Any, study_name: str = "") -> SearchPlan:
    return _optuna(spec, optuna.samplers.RandomSampler(seed=spec.seed), storage, study_name)


@SEARCHERS.register("grid", ref="Lucic et al. 2018, Are GANs Created Equal? (factorial ablation, seeds as replicates)")
def _grid(spec: ExperimentSpec, storage: Any, study_name: str = "") -> SearchPlan:
    cells, dropped = spec.feasible_cells(spec.training_space().grid())
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


class CredentialFreeRDBStorage(optuna.storages.RDBStorage):
    """The study storage: it connects with the password from ``$GENSWEEP_OPTUNA_PASSWORD`` (set
    directly or by the spec's secrets file) and keeps and pickles its URL without it. Tune pickles
    the searcher, storage included, into the experiment state under the results root; a restored
    storage (``gensweep resume``) reads the password from the environment again."""

    def __init__(self, url: str) -> None:
        super().__init__(with_password(url))
        self.url = without_password(self.url)

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "url": without_password(self.url)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__({**state, "url": with_password(state["url"])})
        self.url = without_password(self.url)


def optuna_storage(url: Optional[str]) -> Any:
    return None if url is None else CredentialFreeRDBStorage(url)
