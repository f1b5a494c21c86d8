"""Run a sweep: prepare data and reference statistics once, then Tune x Train.

Before anything starts, :func:`~gensweep.platform.preflight.preflight` checks the spec against
the world (storage reachable, data present, resources that fit) and loads the spec's secrets
file into the environment. At sweep start the spec is saved next to Tune's experiment state
(``<ray storage>/<experiment>/gensweep_spec.yaml``) so ``gensweep resume`` can restore it.
"""
from __future__ import annotations

import datetime as _dt
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from gensweep.platform.spec import ExperimentSpec, SpecError

# Ray Train V2 polls worker health every 2 s by default, and `ray.train.report` waits for
# that poll; a short interval keeps per-report latency low (see README, "Per-trial cost").
_RAY_ENV_DEFAULTS = {
    "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.1",
    "RAY_DEDUP_LOGS": "0",
}
# Only for the single-node instance gensweep starts itself: no autoscaler or cloud drains its
# node, so Ray Train's per-run preemption watcher (one more actor process per trial, polling
# for node drains) has nothing to watch. Clusters keep it.
_LOCAL_RAY_ENV_DEFAULTS = {
    "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0",
}


@dataclass
class SweepOutcome:
    experiment: str
    results_root: str
    wall_time_s: float
    leaderboard: Any  # pandas.DataFrame
    num_errors: int  # trials that failed (diverged trials are results, not errors)
    num_diverged: int = 0


def experiment_id(spec: ExperimentSpec, now: Optional[_dt.datetime] = None) -> str:
    now = now or _dt.datetime.now(_dt.timezone.utc)
    return f"{spec.name}-{now.strftime('%Y%m%d-%H%M%S')}"


def absolute_root(root: str) -> str:
    return root if "://" in root else str(Path(root).expanduser().resolve())


def start_ray(address: Optional[str] = None, num_cpus: Optional[int] = None) -> None:
    import ray

    from gensweep.platform.secrets import keep_credentials_out_of_ray

    for k, v in _RAY_ENV_DEFAULTS.items():
        os.environ.setdefault(k, v)
    keep_credentials_out_of_ray()  # Tune would copy AWS credentials into logged runtime envs
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        info = ray.init(address=address)
    else:
        # address="local": always an instance of our own, never a `ray start` cluster that Ray
        # would otherwise find through /tmp/ray/ray_current_cluster. Its dashboard binds to
        # loopback only.
        for k, v in _LOCAL_RAY_ENV_DEFAULTS.items():
            os.environ.setdefault(k, v)
        info = ray.init(address="local", num_cpus=num_cpus, include_dashboard=True, dashboard_host="127.0.0.1")
    url = getattr(info, "dashboard_url", None)
    if url:
        print(f"[gensweep] Ray dashboard: http://{url}", flush=True)


class ClusterNotReady(SpecError):
    """The Ray cluster cannot run a sweep safely; raised before any trial starts."""


def require_state_api() -> None:
    """Ray Train releases a finished trial's worker placement group through the Ray State API
    (served by the dashboard). Without it those groups leak, and once they fill the cluster
    every later trial waits for workers forever: refuse to start instead."""
    import ray
    from ray.util.state import list_nodes

    try:  # the connected instance's own address: other Ray instances on this machine are not ours
        list_nodes(address=ray.get_runtime_context().gcs_address, limit=1, timeout=30,
                   raise_on_missing_output=False)
    except Exception as e:  # noqa: BLE001 - any failure means the API is not usable
        raise ClusterNotReady(
            "the Ray State API is unreachable (the cluster runs without its dashboard); Ray Train"
            " needs it to release finished trials' placement groups. Start Ray with the dashboard"
            " (`ray start --include-dashboard=true`, or `ray.init(include_dashboard=True)`) and"
            f" install ray[default]. Cause: {type(e).__name__}: {str(e)[:200]}") from e


@dataclass
class SweepSetup:
    """What every trial of a sweep shares: prepared once, before the first trial starts."""

    experiment: str
    root: str
    plan: Any  # TrialPlan
    dataset: Any  # a materialized ray.data.Dataset, or None to stream per trial


def setup_sweep(spec: ExperimentSpec, experiment: str, address: Optional[str] = None,
                num_cpus: Optional[int] = None) -> SweepSetup:
    """Check the spec against the world, prepare the dataset and reference statistics once,
    start Ray, share the dataset."""
    from gensweep.platform.datasets import ensure_dataset
    from gensweep.platform.evaluation import prepare_reference
    from gensweep.platform.preflight import preflight
    from gensweep.platform.trial import TrialPlan

    for warning in preflight(spec, address=address, num_cpus=num_cpus):
        print(f"[gensweep] warning: {warning}", flush=True)
    root = absolute_root(spec.results.root)
    print(f"[gensweep] experiment {experiment}; results under {root}", flush=True)
    dataset_uri = ensure_dataset(spec.data, root)
    eval_runtime = prepare_reference(spec, dataset_uri, root)
    print(f"[gensweep] dataset {dataset_uri}; reference statistics {eval_runtime['refstats_key']}"
          f" ({'computed' if eval_runtime['computed'] else 'reused'})", flush=True)
    start_ray(address, num_cpus)
    require_state_api()
    plan = TrialPlan(
        spec_json=spec.model_dump_json(),
        experiment=experiment,
        dataset_uri=dataset_uri,
        eval_runtime=eval_runtime,
        artifacts_root=f"{root}/artifacts",
        train_storage_path=train_storage_path(root),
        results_root=root,
        max_failures=spec.resources.max_failures,
        secrets_file=spec.data.storage.secrets_file if spec.data.storage else None,
    )
    return SweepSetup(experiment, root, plan, shared_dataset(spec, dataset_uri))


def run_sweep(
    spec: ExperimentSpec,
    *,
    address: Optional[str] = None,
    experiment: Optional[str] = None,
    num_cpus: Optional[int] = None,
    verbose: int = 1,
) -> SweepOutcome:
    from ray import tune

    from gensweep.platform.ray_storage import storage_for

    from gensweep.platform.capacity import concurrency, node_resources
    from gensweep.platform.resume import save_resume_spec
    from gensweep.platform.search import SCHEDULERS, SEARCHERS
    from gensweep.platform.trial_logs import TrialLogsUpload

    t0 = time.perf_counter()
    setup = setup_sweep(spec, experiment or experiment_id(spec), address, num_cpus)
    save_resume_spec(spec, setup)
    at_once, why = concurrency(spec, node_resources())
    print(f"[gensweep] {why}", flush=True)
    spec = spec.model_copy(update={"search": spec.search.model_copy(update={"max_concurrent": at_once})})
    exp = setup.experiment
    search = SEARCHERS.get(spec.search.algorithm)(spec, optuna_storage_for(spec, setup.root), exp)
    storage_path, storage_filesystem = storage_for(setup.plan.train_storage_path)
    tuner = tune.Tuner(
        sweep_trainable(spec, setup),
        param_space=search.param_space,
        tune_config=tune.TuneConfig(
            search_alg=search.search_alg,
            scheduler=SCHEDULERS.get(spec.scheduler.kind)(spec),
            num_samples=search.num_samples,
            max_concurrent_trials=spec.search.max_concurrent,
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
            # the results store's callback; Tune's own per-trial logs kept whole across restarts
            callbacks=[results_callback(spec, setup), TrialLogsUpload()],
            # an inline trial's actor is its worker: Tune restarts it from its latest checkpoint
            failure_config=tune.FailureConfig(max_failures=spec.resources.trial_restarts),
            verbose=verbose,
        ),
    )
    return sweep_outcome(spec, setup, tuner.fit(), t0)


def optuna_storage_for(spec: ExperimentSpec, root: str) -> Any:
    from gensweep.platform.search import optuna_storage

    return optuna_storage(optuna_storage_url(spec, root))


def optuna_storage_url(spec: ExperimentSpec, root: str) -> Optional[str]:
    return spec.search.optuna_storage or (f"sqlite:///{root}/optuna.db" if "://" not in root else None)


def sweep_trainable(spec: ExperimentSpec, setup: SweepSetup):
    """The Tune trainable of a sweep (built the same way again by ``gensweep resume``)."""
    from ray import tune

    from gensweep.platform.capacity import driver_resources
    from gensweep.platform.trial import run_trial

    return tune.with_resources(
        tune.with_parameters(run_trial, plan=setup.plan, dataset=setup.dataset), driver_resources(spec)
    )


def journal_dir(root: str) -> str:
    """Local folder of the results callback's write-ahead journal (see ResultsCallback)."""
    import hashlib

    if "://" not in root:
        return str(Path(root) / ".journal")
    cache = Path(os.environ.get("GENSWEEP_CACHE", Path.home() / ".cache" / "gensweep"))
    return str(cache / "journal" / hashlib.sha256(root.encode()).hexdigest()[:16])


def results_callback(spec: ExperimentSpec, setup: SweepSetup):
    from gensweep.platform.capacity import held_resources
    from gensweep.platform.results import ResultsCallback

    return ResultsCallback(setup.root, setup.experiment, flatten_config=flatten_trial_config,
                           spec=spec.to_yaml(), seed=spec.seed, budget_iterations=spec.max_evals(),
                           trial_resources=held_resources(spec), journal=journal_dir(setup.root))


def is_divergence(error: Any) -> bool:
    from gensweep.trainables.errors import Diverged

    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, Diverged):
            return True
        error = getattr(error, "cause", None) or error.__cause__
    return False


def sweep_outcome(spec: ExperimentSpec, setup: SweepSetup, grid: Any, t0: float) -> SweepOutcome:
    from gensweep.platform.results import leaderboard

    diverged = sum(1 for r in grid if r.error is not None and is_divergence(r.error))
    errors = sum(1 for r in grid if r.error is not None) - diverged
    board = leaderboard(setup.root, setup.experiment, metric=spec.search.metric, mode=spec.search.mode)
    return SweepOutcome(setup.experiment, setup.root, time.perf_counter() - t0, board, errors, diverged)


# Datasets up to this decoded size are read once by the driver and shared by every trial.
MATERIALIZE_MAX_BYTES = 2 * 1024**3


def shared_dataset(spec: ExperimentSpec, dataset_uri: str):
    """The prepared dataset read once and kept in the object store, when it is small enough.

    Sharing it means no trial re-reads or re-decodes the Parquet shards, and no Ray Data read
    task has to wait for a CPU while every CPU is held by training workers. The driver reads and
    decodes it itself (:mod:`gensweep.platform.data.in_memory`). Larger datasets return None:
    each trial then streams its own copy (leave CPUs free for the read tasks).
    """
    import ray.data

    from gensweep.platform.data import load_manifest
    from gensweep.platform.data.in_memory import materialized_dataset
    from gensweep.platform.datasets import storage_of

    storage = storage_of(spec.data)
    manifest = load_manifest(dataset_uri, storage)
    h, w, c = manifest.image_shape
    if manifest.count * h * w * c * 4 > MATERIALIZE_MAX_BYTES:
        return None
    ray.data.DataContext.get_current().enable_progress_bars = False
    return materialized_dataset(dataset_uri, storage, bad_records=spec.data.bad_records)


def train_storage_path(root: str) -> str:
    return f"{root}/ray"


def flatten_trial_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config/<param>`` columns of a trial: the sampled parameters (a grid cell unpacked)."""
    from gensweep.platform.trial import config_columns

    return config_columns(config)
