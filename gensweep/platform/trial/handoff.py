"""What crosses a process boundary on its way to a trial's training loop, as typed data.

* :class:`EvalRuntime`: made once by the driver (:func:`~.evaluation.prepare_reference`),
  where the reference statistics are and how every evaluation of the sweep is made;
* :class:`WorkerConfig`: what every worker of a trial receives, made by the Tune trainable
  (:func:`~.launch.worker_config`). An inline loop gets the object itself; the workers of a Ray
  Train ``TorchTrainer`` get its plain form (:meth:`WorkerConfig.to_plain`), because Train's
  controller unpickles ``train_loop_config`` too and should not import gensweep for it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from gensweep.platform.data.loader import DEFAULT_MATERIALIZE_MAX_BYTES, DEFAULT_READAHEAD_BATCHES
from gensweep.platform.metrics.ladder import SampleLadder
from gensweep.platform.metrics.protocol import EvalProtocol
from gensweep.platform.metrics.refstats import RefStatsKey
from gensweep.platform.storage.uris import StorageOptions


@dataclass(frozen=True)
class EvalRuntime:
    """How the trials of a sweep are scored, prepared once before the first trial starts."""

    refstats_root: str  # the reference-statistics registry: ``<results root>/refstats``, local or a URI
    key: RefStatsKey  # the reference set: the same for every evaluation along the ladder
    protocol: EvalProtocol  # the full-N protocol
    ladder: SampleLadder  # the fake-sample N of each evaluation's step
    settings: dict[str, Any]  # the spec's ``eval`` section as JSON, saved with every checkpoint
    computed: bool  # the driver computed the statistics (False: found in the registry)
    storage: dict[str, Any] = dataclasses.field(default_factory=dict)  # StorageOptions fields to reach refstats_root
    fid_floor: Optional[float] = None  # real-vs-real FID of the reference set (None: not available)
    class_keys: tuple[RefStatsKey, ...] = ()  # per-class entries of the reference set (intra_fid), by label

    @property
    def refstats_key(self) -> str:
        return self.key.slug

    def to_plain(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_plain(cls, plain: Mapping[str, Any]) -> "EvalRuntime":
        ladder = plain["ladder"]
        return cls(
            refstats_root=plain["refstats_root"],
            key=RefStatsKey(**plain["key"]),
            protocol=EvalProtocol(**plain["protocol"]),
            ladder=SampleLadder(ladder["full"], tuple(tuple(rung) for rung in ladder["rungs"])),
            settings=dict(plain["settings"]),
            computed=plain["computed"],
            storage=dict(plain.get("storage") or {}),
            fid_floor=plain.get("fid_floor"),
            class_keys=tuple(RefStatsKey(**k) for k in plain.get("class_keys") or ()),
        )


@dataclass(frozen=True)
class ResultsTarget:
    """Where a resumed worker writes the metrics row of the report its driver never recorded."""

    root: str
    experiment: str
    trial_id: str
    columns: dict[str, Any]  # the trial's ``config/<param>`` columns


@dataclass(frozen=True)
class WorkerConfig:
    """What every worker of a trial receives (the same on every rank)."""

    family: str
    trial: dict[str, Any]  # the trainable config, validated once by the Tune trainable, as plain data
    data_seed: int  # ``data.seed``: with the trial's seed, the order of its batches
    hflip: bool
    eval_runtime: EvalRuntime
    artifacts_uri: str  # the trial's artifacts folder (sample grids, divergence record)
    checkpoint_info: dict[str, Any]  # ``trial.json`` of each checkpoint
    storage: StorageOptions
    use_gpu: bool
    secrets_file: Optional[str]  # a path; each process reads the credentials itself
    results: ResultsTarget
    shared_blocks: Optional[dict[str, Any]] = None  # SharedBlocks fields of a dataset the driver materialized
    held: dict[str, float] = dataclasses.field(default_factory=dict)  # CPU/GPU the trial holds (its cost per hour)
    objective: tuple[str, str] = ("fid", "min")  # picks the reported sampling-time setting of each eval
    readahead_batches: int = DEFAULT_READAHEAD_BATCHES  # ``data.readahead_batches``: a streamed shard's read-ahead
    expected_shard_bytes: Optional[int] = None  # a streamed dataset: one worker's share, decoded
    max_worker_bytes: int = DEFAULT_MATERIALIZE_MAX_BYTES  # ``data.max_worker_bytes``: the largest share a worker keeps in memory

    def to_plain(self) -> dict[str, Any]:
        """Builtins only (and the Ray object references of ``shared_blocks``): nothing to import
        gensweep for where it is unpickled."""
        plain = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        plain.update(eval_runtime=self.eval_runtime.to_plain(), storage=self.storage.model_dump(),
                     results=dataclasses.asdict(self.results))
        return plain

    @classmethod
    def from_plain(cls, plain: Mapping[str, Any]) -> "WorkerConfig":
        return cls(**{**plain, "eval_runtime": EvalRuntime.from_plain(plain["eval_runtime"]),
                      "storage": StorageOptions(**plain["storage"]), "results": ResultsTarget(**plain["results"])})
