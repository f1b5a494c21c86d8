"""Hyperband and Population Based Training, registered beside ASHA in :data:`.search.SCHEDULERS`.

PBT (:class:`LineagePBT`) clones a trial's whole state: Tune restarts the exploiting trial from
the donor's latest checkpoint, which is gensweep's trial checkpoint (networks, both optimizers,
EMA, augmentation and regularizer state, step, position in the epoch, RNG), under the perturbed
config; the families then write that config's optimizer settings into the restored optimizers
(:func:`gensweep.trainables.optim.set_hyperparameters`). Time is the training ``step``, so an
exploiting trial continues from the donor's step. Each exploit is a ``lineage`` row of the
results store: trial, donor, the donor's step and what explore changed.
"""
from __future__ import annotations

import datetime as _dt
import logging
from typing import Any

from ray import tune
from ray.tune.schedulers import HyperBandScheduler, PopulationBasedTraining, TrialScheduler

from gensweep.platform.results import ResultsStore
from gensweep.platform.results.schema import to_json
from gensweep.platform.spec import ExperimentSpec
from gensweep.platform.spec.scheduler import pbt_mutations
from gensweep.platform.spec.space import Categorical, Integer, Uniform
from gensweep.platform.storage.layout import RootLayout
from gensweep.platform.spec.space import with_replicates
from gensweep.platform.sweep.search import SCHEDULERS, SEARCHERS, SearchPlan
from gensweep.platform.trial.launch import GRID_KEY
from gensweep.trainables.families import FAMILIES

logger = logging.getLogger(__name__)

EXPLORE_TRIES = 10  # perturbations drawn before an infeasible explore keeps the donor's values
POPULATION_KINDS = ("hyperband", "pbt")  # schedulers that need their bracket / population live at once


def tune_max_concurrent(spec: ExperimentSpec):
    """Tune's ``max_concurrent_trials``: ``search.max_concurrent``, except for Hyperband and PBT.

    A cap on live trials makes Tune add a trial only when another has ended, so a Hyperband
    bracket never holds two trials at once (every trial runs its full budget in the first
    bracket) and a PBT population runs one member after another (none to exploit). For those,
    Tune adds trials as it starts them and queues what does not fit the cluster (PENDING);
    paused trials give their resources to queued ones."""
    return None if spec.scheduler.kind in POPULATION_KINDS else spec.search.max_concurrent


def eval_every(spec: ExperimentSpec) -> int:
    """Steps between two evaluations of the spec's trials (the unit of its schedules)."""
    return int(getattr(FAMILIES.get(spec.family).config.model_validate(spec.trial_defaults()), "eval_every"))


@SCHEDULERS.register("hyperband", ref="Li et al. 2018, Hyperband: A Novel Bandit-Based Approach to Hyperparameter"
                     " Optimization")
def _hyperband(spec: ExperimentSpec) -> TrialScheduler:
    return HyperBandScheduler(time_attr="training_iteration", max_t=spec.max_evals(),
                              reduction_factor=spec.scheduler.reduction_factor)


def _mutation(p: Any) -> Any:
    """Tune's explore domain of one space parameter: a continuous range is scaled by 0.8 or 1.2
    (clamped back into it afterwards); int and categorical levels move to a neighbour."""
    if isinstance(p, Uniform):
        return tune.loguniform(p.low, p.high) if p.type == "loguniform" else tune.uniform(p.low, p.high)
    if isinstance(p, (Integer, Categorical)):
        return p.grid()
    raise TypeError(f"no pbt mutation for {type(p).__name__}")


def pbt_population(spec: ExperimentSpec, storage: Any = None, study_name: str = "") -> SearchPlan:
    """PBT's first generation: ``search.num_trials`` feasible configs drawn at random (Optuna's
    seeded sampler over the define-by-run space), each once per seed, handed to Tune as cells.
    Tune refuses a search algorithm beside PBT, which breeds the later generations itself."""
    import optuna

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=spec.seed))
    space, configs = spec.space.define_by_run(), []
    for _ in range(EXPLORE_TRIES * spec.search.num_trials):  # bounded: refused draws are retried
        trial = study.ask()
        params = space(trial) or dict(trial.params)
        study.tell(trial, 0.0)
        if not spec.violations(params):
            configs.append(params)
        if len(configs) == spec.search.num_trials:
            break
    else:
        raise ValueError(f"space: fewer than {spec.search.num_trials} feasible configs in"
                         f" {EXPLORE_TRIES * spec.search.num_trials} random draws")
    return SearchPlan(None, {GRID_KEY: tune.grid_search(with_replicates(configs, spec.replicate_seeds()))}, 1)


def search_plan(spec: ExperimentSpec, storage: Any, study_name: str) -> SearchPlan:
    """The sweep's search: PBT's random first generation, or ``search.algorithm``'s plan."""
    build = pbt_population if spec.scheduler.kind == "pbt" else SEARCHERS.get(spec.search.algorithm)
    return build(spec, storage, study_name)


class LineagePBT(PopulationBasedTraining):
    """Tune's PBT with explore kept inside the space and the family's rules, and lineage rows.

    Trials hold their parameters as one cell (``config[GRID_KEY]``), so the mutations nest there."""

    def __init__(self, spec: ExperimentSpec, **kwargs: Any):
        self.spec = spec
        self.names = pbt_mutations(spec)
        mutations = {GRID_KEY: {n: _mutation(spec.space.params[n]) for n in self.names}}
        super().__init__(hyperparam_mutations=mutations, **kwargs)
        self._operations: dict[str, str] = {}

    def _clamped(self, config: dict) -> dict:
        cell = dict(config[GRID_KEY])
        for name in self.names:
            p = self.spec.space.params[name]
            if isinstance(p, Uniform):
                cell[name] = min(max(float(cell[name]), p.low), p.high)
        return {**config, GRID_KEY: cell}

    def _get_new_config(self, trial, trial_to_clone):
        for _ in range(EXPLORE_TRIES):
            config, operations = super()._get_new_config(trial, trial_to_clone)
            config = self._clamped(config)
            if not self.spec.violations(config[GRID_KEY]):
                break
        else:  # every draw broke a combination rule: clone without exploring
            config, operations = dict(trial_to_clone.config), {}
        self._operations = dict(operations.get(GRID_KEY, {}))
        return config, operations

    def _exploit(self, tune_controller, trial, trial_to_clone):
        # the result being decided on (Tune updates trial.last_result only after the scheduler answers)
        replaced_step = (self._trial_state[trial].last_result or {}).get("step")
        donor = self._trial_state[trial_to_clone].last_result or {}
        donor_cell = dict(trial_to_clone.config[GRID_KEY])
        super()._exploit(tune_controller, trial, trial_to_clone)
        cell = trial.config[GRID_KEY]
        perturbation = {n: {"from": donor_cell.get(n), "to": cell.get(n), "op": self._operations.get(n, "")}
                        for n in self.names}
        row = {"experiment": trial.experiment_dir_name, "trial_id": trial.trial_id, "step": donor.get("step"),
               "donor_trial_id": trial_to_clone.trial_id, "replaced_step": replaced_step,
               "perturbation": to_json(perturbation), "exploited_at": _dt.datetime.now(_dt.timezone.utc)}
        try:
            ResultsStore.open(RootLayout.of(self.spec.results.root).root).write("lineage", [row])
        except Exception:  # noqa: BLE001 - the sweep goes on; Tune's pbt_global.txt keeps the record
            logger.warning("could not record the lineage of trial %s", trial.trial_id, exc_info=True)


@SCHEDULERS.register("pbt", ref="Jaderberg et al. 2017, Population Based Training of Neural Networks")
def _pbt(spec: ExperimentSpec) -> TrialScheduler:
    sch = spec.scheduler
    return LineagePBT(
        spec,
        time_attr="step",
        perturbation_interval=sch.perturbation_interval * eval_every(spec),
        quantile_fraction=sch.quantile_fraction,
        resample_probability=sch.resample_probability,
        synch=False,
    )


def seed_explore(spec: ExperimentSpec) -> None:
    """Tune's PBT draws its perturbations (and which top trial to clone) from Python's global
    ``random``: seed it from the spec, as every searcher is."""
    import random

    random.seed(spec.seed * 7919 + 17)


def scheduler_for(spec: ExperimentSpec) -> TrialScheduler:
    """The spec's scheduler (every kind registered, these two included)."""
    if spec.scheduler.kind == "pbt":
        seed_explore(spec)
    return SCHEDULERS.get(spec.scheduler.kind)(spec)

