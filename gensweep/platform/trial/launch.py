"""One Tune trial: its training loop inline in the Tune trial actor, or one Ray Train
``TorchTrainer`` run (the Train V2 pattern), as ``resources.launcher`` resolves.

The Tune function trainable resolves (validates once) and saves the trial's config and opens
the prepared dataset with Ray Data; the spec it reads was validated once, by the driver. Inline, it runs the loop itself and reports through ``ray.tune.report``;
a restarted trial resumes from its latest Tune checkpoint. Otherwise it launches the
TorchTrainer; Train reports reach Tune through ``TuneReportCallback``, and the Train run is
named after the trial, so a restarted trial finds its own checkpoints and resumes from the latest.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Optional

import yaml
from ray import tune
from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchConfig, TorchTrainer
from ray.tune.integration.ray_train import TuneReportCallback

from gensweep.platform.data import StorageOptions, open_dataset
from gensweep.platform.data.manifest import load_manifest
from gensweep.platform.data.stream import block_order_seed
from gensweep.platform.data.blocks import SharedBlocks
from gensweep.platform.results.rows import CONFIG_ID
from gensweep.platform.spec import ExperimentSpec
from gensweep.platform.spec.space import config_id
from gensweep.platform.storage.artifacts import get_bytes, put_bytes
from gensweep.platform.storage.layout import RootLayout
from gensweep.platform.storage.secrets import apply_secrets_file
from gensweep.platform.storage.tune_storage import storage_for
from gensweep.platform.storage.uris import join_uri
from gensweep.platform.trial.checkpoints import checkpoint_info
from gensweep.platform.trial.context import (
    DIVERGED_FILE,
    TuneInlineContext,
    run_family,
    train_loop_per_worker,
)
from gensweep.platform.trial.handoff import EvalRuntime, ResultsTarget, WorkerConfig
from gensweep.platform.trial.resources import held_resources, worker_resources
from gensweep.trainables.errors import Diverged

GRID_KEY = "cell"


@dataclass(frozen=True)
class TrialPlan:
    """Everything a trial needs besides its sampled parameters (picklable, no secrets)."""

    spec: ExperimentSpec  # validated once, by the driver; unpickling does not validate it again
    experiment: str
    dataset_uri: str
    eval_runtime: EvalRuntime
    results_root: str  # the results store; a resumed trial also backfills reports Tune never saw
    max_failures: int = 0
    secrets_file: Optional[str] = None  # a path; each process reads the credentials itself

    @property
    def layout(self) -> RootLayout:
        return RootLayout(self.results_root)

    @property
    def train_storage_path(self) -> str:
        """Tune/Train storage: a local path or a URI (see :mod:`gensweep.platform.storage.tune_storage`)."""
        return self.layout.ray

    def trial_artifacts(self, trial_id: str) -> str:
        return self.layout.trial_artifacts(self.experiment, trial_id)


def sampled_params(config: dict[str, Any]) -> dict[str, Any]:
    """Tune's config for this trial: a grid cell, or the parameters Optuna suggested; either way
    with the replicate's ``seed`` (:func:`~gensweep.platform.spec.space.with_replicates`)."""
    return dict(config[GRID_KEY]) if GRID_KEY in config else dict(config)


def run_trial(config: dict[str, Any], plan: TrialPlan, dataset: Any = None) -> None:
    """Tune function trainable. ``dataset``: a Ray Dataset materialized once by the driver, or
    None to open (and stream) the prepared dataset in this trial.

    ``spec.resources.inline`` picks where the loop runs: here, in the Tune trial actor (through
    :class:`TuneInlineContext`), or on the workers of a ``TorchTrainer`` this trial launches.

    A divergence ends the trial as an error raised here, in the Tune trainable (not in the Train
    workers, where ``FailureConfig`` would restart the group only to diverge again): Tune then
    tells the searcher the trial failed, and the results callback records status ``diverged``.
    A trial that Tune restarts after it diverged (an inline trial with ``resources.max_failures``)
    finds its divergence record and raises it again at once, without training.
    """
    apply_secrets_file(plan.secrets_file)
    spec = plan.spec
    trial_id = tune.get_context().get_trial_id()
    record = join_uri(plan.trial_artifacts(trial_id), DIVERGED_FILE)
    legacy = join_uri(plan.layout.legacy_trial_artifacts(plan.experiment, trial_id), DIVERGED_FILE)
    diverged = _read_diverged(record, _storage(spec)) or _read_diverged(legacy, _storage(spec))
    if diverged is None:
        trial_cfg = spec.resolve_trial(sampled_params(config))
        columns = config_columns(config)
        if spec.resources.inline:
            cfg = worker_config(spec, plan, trial_id, trial_cfg, columns)
            shard = dataset
            if shard is None:
                shard, cfg = _open(spec, plan, trial_cfg), streamed(cfg, spec, plan, workers=1)
            diverged = run_family(cfg, TuneInlineContext(cfg, shard))
        else:
            build_trainer(spec, plan, trial_id, trial_cfg, dataset, callbacks=[TuneReportCallback()],
                          config_columns=columns).fit()
            diverged = _read_diverged(record, _storage(spec))
    if diverged is not None:
        raise diverged


def _read_diverged(uri: str, storage: StorageOptions) -> Optional[Diverged]:
    """The divergence rank 0 recorded for this trial (Train's ``fit()`` result does not carry it)."""
    try:
        record = json.loads(get_bytes(uri, storage))
    except FileNotFoundError:
        return None
    return Diverged(int(record["step"]), str(record["reason"]))


def _storage(spec: ExperimentSpec) -> StorageOptions:
    return StorageOptions(**(spec.data.storage.model_dump() if spec.data.storage else {}))


def _open(spec: ExperimentSpec, plan: TrialPlan, trial_cfg: dict[str, Any]):
    """The prepared dataset streamed by this trial: shards in a new seeded order every epoch."""
    return open_dataset(plan.dataset_uri, _storage(spec), bad_records=spec.data.bad_records,
                        shuffle_seed=block_order_seed(spec.data.seed, int(trial_cfg.get("seed", 0))))


def streamed(cfg: WorkerConfig, spec: ExperimentSpec, plan: TrialPlan, workers: int) -> WorkerConfig:
    """``cfg`` of a trial that streams the prepared dataset: with the decoded size of one worker's
    share, so that its loader decides up front to keep the share in memory (up to the loader's
    limit) or to stream every epoch (read ahead from the first epoch on)."""
    manifest = load_manifest(plan.dataset_uri, _storage(spec))
    return dataclasses.replace(cfg, expected_shard_bytes=manifest.decoded_nbytes(workers))


def config_columns(config: dict[str, Any]) -> dict[str, Any]:
    """The ``config/<param>`` columns of a trial's rows: its sampled parameters (a grid cell unpacked,
    the seed among them), and ``config_id``, which the replicates of one config share."""
    from gensweep.platform.results.schema import normalize_value

    params = sampled_params(config)
    return {CONFIG_ID: config_id(params), **{f"config/{k}": normalize_value(v) for k, v in params.items()}}


def worker_config(spec: ExperimentSpec, plan: TrialPlan, trial_id: str, trial_cfg: dict[str, Any],
                  config_columns: Optional[dict[str, Any]] = None) -> WorkerConfig:
    """What every worker of the trial receives; the resolved config is saved with the trial.

    ``trial_cfg``: the trial's trainable config as :meth:`ExperimentSpec.resolve_trial` validated it."""
    storage = _storage(spec)
    artifacts = plan.trial_artifacts(trial_id)
    runtime = plan.eval_runtime
    resolved = {"experiment": plan.experiment, "trial_id": trial_id, "family": spec.family, "config": trial_cfg,
                "eval": {**dataclasses.asdict(runtime.protocol), "ladder": runtime.ladder.to_rungs()},
                "dataset": plan.dataset_uri,
                "resources": {**spec.resources.model_dump(), "trial_launcher": spec.resources.trial_launcher}}
    put_bytes(join_uri(artifacts, "resolved_config.yaml"), yaml.safe_dump(resolved, sort_keys=False).encode(), storage)
    return WorkerConfig(
        family=spec.family,
        trial=trial_cfg,
        data_seed=spec.data.seed,
        hflip=spec.data.hflip,
        readahead_batches=spec.data.readahead_batches,
        max_worker_bytes=spec.data.max_worker_bytes,
        eval_runtime=runtime,
        artifacts_uri=artifacts,
        checkpoint_info=checkpoint_info(
            experiment=plan.experiment, trial_id=trial_id, family=spec.family, dataset=plan.dataset_uri,
            results_root=plan.results_root, storage=storage.model_dump(), eval_runtime=runtime,
        ),
        storage=storage,
        use_gpu=spec.resources.gpus_per_worker > 0,
        secrets_file=plan.secrets_file,
        results=ResultsTarget(root=plan.results_root, experiment=plan.experiment, trial_id=trial_id,
                              columns=config_columns or {}),
        held=held_resources(spec),
        objective=spec.search.objectives()[0],
    )


def build_trainer(
    spec: ExperimentSpec,
    plan: TrialPlan,
    trial_id: str,
    trial_cfg: dict[str, Any],
    dataset: Any = None,
    callbacks: Optional[list] = None,
    config_columns: Optional[dict[str, Any]] = None,
) -> TorchTrainer:
    """The TorchTrainer of one trial; its run name is fixed by the trial, so a rerun resumes.

    The workers' config travels in its plain form (:meth:`WorkerConfig.to_plain`): the Train
    controller unpickles the config too, and should not import gensweep for it. A dataset the
    driver materialized reaches the workers as references to its blocks in that config
    (:class:`~gensweep.platform.data.blocks.SharedBlocks`, as plain fields): no Ray Data split
    actors to start per trial. Otherwise the trial opens the prepared dataset and Ray Train
    streams it.
    """
    cfg = worker_config(spec, plan, trial_id, trial_cfg, config_columns)
    if dataset is not None:
        cfg = dataclasses.replace(cfg, shared_blocks=SharedBlocks.of(dataset).fields())
        datasets = {}
    else:
        datasets = {"train": _open(spec, plan, trial_cfg)}
        cfg = streamed(cfg, spec, plan, spec.resources.workers)
    res = spec.resources
    use_gpu = res.gpus_per_worker > 0
    storage_path, storage_filesystem = storage_for(plan.train_storage_path)  # same AWS env as results.root
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config=cfg.to_plain(),
        scaling_config=ScalingConfig(num_workers=res.workers, use_gpu=use_gpu, resources_per_worker=worker_resources(spec)),
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        datasets=datasets,
        run_config=RunConfig(
            name=f"{plan.experiment}-{trial_id}",
            storage_path=storage_path,
            storage_filesystem=storage_filesystem,
            callbacks=callbacks or [],
            checkpoint_config=CheckpointConfig(num_to_keep=2),
            failure_config=FailureConfig(max_failures=plan.max_failures),
        ),
    )
