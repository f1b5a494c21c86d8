"""Run a sweep: prepare data and reference statistics once (:mod:`.setup`), then Tune x Train."""
from __future__ import annotations

import time
from typing import Optional

from gensweep.platform.spec import ExperimentSpec
from gensweep.platform.sweep.interrupt import GracefulStop, raise_if_interrupted
from gensweep.platform.sweep.outcome import SweepOutcome, sweep_outcome
from gensweep.platform.sweep.setup import (
    checked_experiment,
    experiment_id,
    optuna_storage_for,
    results_callback,
    save_resume_spec,
    setup_sweep,
    sweep_trainable,
)


def run_sweep(
    spec: ExperimentSpec,
    *,
    address: Optional[str] = None,
    experiment: Optional[str] = None,
    num_cpus: Optional[int] = None,
    verbose: int = 1,
) -> SweepOutcome:
    """``verbose``: 0 quiet, 1 gensweep's progress view (Ray's messages to a log file), 2 Tune's own."""
    from gensweep.platform.sweep.console import sweep_console

    from gensweep.platform.sweep.preflight import preflight

    experiment = checked_experiment(experiment or experiment_id(spec))
    # before the console writes its log under the results root: a root that cannot be written is
    # the preflight's error (naming results.root), not the console's
    warnings = preflight(spec, address=address, num_cpus=num_cpus)
    with sweep_console(spec, experiment, verbose) as console:
        return _tune_sweep(spec, address, experiment, num_cpus, console, warnings)


def _tune_sweep(spec: ExperimentSpec, address: Optional[str], experiment: str, num_cpus: Optional[int],
                console, checked: list[str]) -> SweepOutcome:
    from ray import tune

    from gensweep.platform.data.ensure import storage_of
    from gensweep.platform.storage.tune_storage import storage_for
    from gensweep.platform.sweep.schedulers import scheduler_for, search_plan, tune_max_concurrent
    from gensweep.platform.sweep.tensorboard import sweep_tensorboard
    from gensweep.platform.sweep.trial_logs import TrialLogsUpload
    from gensweep.platform.trial.resources import concurrency, node_resources

    t0 = time.perf_counter()
    setup = setup_sweep(spec, experiment, address, num_cpus, checked)
    save_resume_spec(spec, setup)
    at_once, why = concurrency(spec, node_resources())
    print(f"[gensweep] {why}", flush=True)
    spec = spec.model_copy(update={"search": spec.search.model_copy(update={"max_concurrent": at_once})})
    exp = setup.experiment
    search = search_plan(spec, optuna_storage_for(spec, setup.root), exp)
    storage_path, storage_filesystem = storage_for(setup.plan.train_storage_path)
    tuner = tune.Tuner(
        sweep_trainable(spec, setup),
        param_space=search.param_space,
        tune_config=tune.TuneConfig(
            search_alg=search.search_alg,
            scheduler=scheduler_for(spec),
            num_samples=search.num_samples,
            max_concurrent_trials=tune_max_concurrent(spec),
            metric=spec.search.metric,
            mode=spec.search.mode,
            # a finished trial's actor (its process, with torch and the platform imported) runs the
            # next trial: every trial asks for the same resources (see README, "Per-trial cost")
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=exp,
            storage_path=storage_path,
            storage_filesystem=storage_filesystem,
            # the results store's callback; Tune's own per-trial logs kept whole across restarts;
            # the graceful stop on SIGUSR1/SIGTERM/Ctrl-C (checkpoint, flush, exit resumable);
            # TensorBoard at the training step, with the sample grids (instead of Tune's default)
            callbacks=[results_callback(spec, setup), TrialLogsUpload(), GracefulStop(exp),
                       sweep_tensorboard(storage_of(spec.data)), *console.callbacks],
            # an inline trial's actor is its worker: Tune restarts it from its latest checkpoint
            failure_config=tune.FailureConfig(max_failures=spec.resources.trial_restarts),
            verbose=console.tune_verbose,
        ),
    )
    grid = tuner.fit()
    raise_if_interrupted(exp)
    return sweep_outcome(spec, setup, grid, t0)
