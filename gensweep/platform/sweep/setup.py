"""What every trial of a sweep shares, prepared once before the first starts.

Before anything starts, :func:`~gensweep.platform.sweep.preflight.preflight` checks the spec against
the world (storage reachable, data present, resources that fit) and loads the spec's secrets
file into the environment. Then the dataset is prepared (or found), the reference statistics
computed (or found), Ray started, the dataset shared, and the spec saved next to Tune's
experiment state (:meth:`RootLayout.resume_spec`) so ``gensweep resume`` can restore it.
"""
from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from typing import Any, Optional

from gensweep.platform.spec import ExperimentSpec, SpecError
from gensweep.platform.storage.layout import RootLayout
from gensweep.platform.storage.names import experiment_name_problem

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


def experiment_id(spec: ExperimentSpec, now: Optional[_dt.datetime] = None) -> str:
    now = now or _dt.datetime.now(_dt.timezone.utc)
    return f"{spec.name}-{now.strftime('%Y%m%d-%H%M%S')}"


def checked_experiment(name: str) -> str:
    """``name`` when it is a safe experiment id (one path segment: it names Tune's run and folders
    under the results root), else a SpecError before anything starts."""
    problem = experiment_name_problem(name)
    if problem:
        raise SpecError(problem)
    return name


def start_ray(address: Optional[str] = None, num_cpus: Optional[int] = None) -> None:
    import ray

    from gensweep.platform.storage.secrets import keep_credentials_out_of_ray

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
                num_cpus: Optional[int] = None, checked: Optional[list[str]] = None) -> SweepSetup:
    """Check the spec against the world, prepare the dataset and reference statistics once,
    start Ray, share the dataset. ``checked``: the warnings of a preflight the caller already ran
    (before writing anything under the results root); None runs it here."""
    from gensweep.platform.sweep.preflight import preflight
    from gensweep.platform.trial.evaluation import prepare_reference
    from gensweep.platform.trial.launch import TrialPlan

    warnings = preflight(spec, address=address, num_cpus=num_cpus) if checked is None else checked
    for warning in warnings:
        print(f"[gensweep] warning: {warning}", flush=True)
    root = RootLayout.of(spec.results.root).root
    print(f"[gensweep] experiment {experiment}; results under {root}", flush=True)
    dataset_uri = prepared_dataset(spec, root)
    eval_runtime = prepare_reference(spec, dataset_uri, root)
    print(f"[gensweep] dataset {dataset_uri}; reference statistics {eval_runtime.refstats_key}"
          f" ({'computed' if eval_runtime.computed else 'reused'})", flush=True)
    start_ray(address, num_cpus)
    require_state_api()
    plan = TrialPlan(
        spec=spec,
        experiment=experiment,
        dataset_uri=dataset_uri,
        eval_runtime=eval_runtime,
        results_root=root,
        max_failures=spec.resources.max_failures,
        secrets_file=spec.data.storage.secrets_file if spec.data.storage else None,
    )
    return SweepSetup(experiment, root, plan, shared_dataset(spec, dataset_uri))


def prepared_dataset(spec: ExperimentSpec, root: str) -> str:
    """The spec's dataset, prepared (or found) and checked against the model's classes; a source that
    cannot be read or labels the model cannot use raise :class:`PreflightError` (nothing started yet)."""
    from gensweep.platform.data import DatasetExistsError, SourceError, load_manifest
    from gensweep.platform.data.ensure import ensure_dataset, storage_of
    from gensweep.platform.sweep.labels import label_problems
    from gensweep.platform.sweep.preflight import PreflightError

    try:
        uri = ensure_dataset(spec.data, root)
    except (SourceError, DatasetExistsError) as e:
        raise PreflightError(f"cannot run this spec:\n  data.source: {e}") from None
    manifest = load_manifest(uri, storage_of(spec.data))
    problems = label_problems(spec, manifest.labels, manifest.source)
    if problems:
        raise PreflightError("cannot run this spec:\n  " + "\n  ".join(problems))
    return uri


def optuna_storage_for(spec: ExperimentSpec, root: str) -> Any:
    from gensweep.platform.sweep.search import optuna_storage

    return optuna_storage(optuna_storage_url(spec, root))


def optuna_storage_url(spec: ExperimentSpec, root: str) -> Optional[str]:
    return spec.search.optuna_storage or RootLayout(root).optuna_url


def sweep_trainable(spec: ExperimentSpec, setup: SweepSetup):
    """The Tune trainable of a sweep (built the same way again by ``gensweep resume``)."""
    from ray import tune

    from gensweep.platform.trial.launch import run_trial
    from gensweep.platform.trial.resources import driver_resources

    return tune.with_resources(
        tune.with_parameters(run_trial, plan=setup.plan, dataset=setup.dataset), driver_resources(spec)
    )


def results_callback(spec: ExperimentSpec, setup: SweepSetup):
    from gensweep.platform.results import ResultsCallback
    from gensweep.platform.trial.resources import held_resources

    from gensweep.platform.spec.sampling import possible_settings
    from gensweep.trainables.sampling import setting_tag

    grid = possible_settings(spec.space, spec.family)
    return ResultsCallback(setup.root, setup.experiment, flatten_config=flatten_trial_config,
                           spec=spec.to_yaml(), seed=spec.seed, budget_iterations=spec.max_evals(),
                           trial_resources=held_resources(spec), journal=RootLayout(setup.root).journal,
                           sampling_settings={setting_tag(s): s for s in grid})


def shared_dataset(spec: ExperimentSpec, dataset_uri: str):
    """The prepared dataset read once and kept in the object store, when it is small enough.

    Sharing it means no trial re-reads or re-decodes the Parquet shards, and no Ray Data read
    task has to wait for a CPU while every CPU is held by training workers. The driver reads and
    decodes it itself (:mod:`gensweep.platform.data.in_memory`). Datasets whose decoded size exceeds
    ``data.max_shared_bytes`` return None: each trial then streams its own copy (leave CPUs free for
    the read tasks).
    """
    import ray.data

    from gensweep.platform.data import load_manifest
    from gensweep.platform.data.ensure import storage_of
    from gensweep.platform.data.in_memory import materialized_dataset

    storage = storage_of(spec.data)
    manifest = load_manifest(dataset_uri, storage)
    h, w, c = manifest.image_shape
    if manifest.count * h * w * c * 4 > spec.data.max_shared_bytes:
        return None
    ray.data.DataContext.get_current().enable_progress_bars = False
    return materialized_dataset(dataset_uri, storage, bad_records=spec.data.bad_records)


def flatten_trial_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config/<param>`` columns of a trial: the sampled parameters (a grid cell unpacked)."""
    from gensweep.platform.trial.launch import config_columns

    return config_columns(config)


def save_resume_spec(spec: ExperimentSpec, setup: SweepSetup) -> str:
    """Save what ``gensweep resume`` needs: the full spec (the secrets file as a path only)."""
    import yaml

    from gensweep.platform.storage.artifacts import put_bytes

    doc = spec.model_dump(mode="json")
    doc["results"]["root"] = setup.root
    if spec.data.storage and spec.data.storage.secrets_file:
        doc["data"]["storage"]["secrets_file"] = spec.data.storage.secrets_file
    return put_bytes(RootLayout(setup.root).resume_spec(setup.experiment), yaml.safe_dump(doc, sort_keys=False).encode())
