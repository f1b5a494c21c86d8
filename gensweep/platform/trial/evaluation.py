"""Evaluation glue between the platform and the metrics package.

Driver side: :func:`prepare_reference` computes the real-data reference statistics once
per (dataset fingerprint, split, resolution, backbone protocol, N, resize) before any trial
starts. Worker side: :class:`WorkerEvaluator` loads them and scores generators, splitting
generation across the Ray Train workers of a trial, with the fake-sample N of each step taken
from the evaluation ladder (``eval.ladder``).
"""
from __future__ import annotations

from typing import Any, Optional

import torch

from gensweep.platform.data import (
    StorageOptions,
    load_manifest,
    read_arrays,
    short_fingerprint,
)
from gensweep.platform.metrics.backbones import Backbone, get_backbone
from gensweep.platform.metrics.evaluator import evaluate, torch_distributed_all_gather
from gensweep.platform.metrics.features import reference_features
from gensweep.platform.metrics.ladder import SampleLadder
from gensweep.platform.metrics.protocol import EvalProtocol
from gensweep.platform.metrics.refstats import RefStats, RefStatsKey, RefStatsRegistry
from gensweep.platform.storage.layout import RootLayout
from gensweep.platform.trial.handoff import EvalRuntime

SPLIT = "train"


def make_protocol(*, backbone: str, num_samples: int, batch_size: int, latent_seed: int, metrics) -> EvalProtocol:
    """The protocol for ``num_samples`` fake samples (batches and KID subsets no larger than N)."""
    return EvalProtocol(
        backbone=backbone,
        num_samples=num_samples,
        batch_size=min(batch_size, num_samples),
        latent_seed=latent_seed,
        metrics=tuple(metrics),
        kid_subset_size=min(1000, num_samples),
    )


def eval_protocol(spec, num_samples: Optional[int] = None) -> EvalProtocol:
    e = spec.eval
    return make_protocol(backbone=e.backbone, num_samples=num_samples or e.num_samples, batch_size=e.batch_size,
                         latent_seed=e.latent_seed, metrics=e.metrics)


def reference_key(dataset_uri: str, storage: StorageOptions, backbone: Backbone, ref_samples: Optional[int]) -> RefStatsKey:
    """The registry key of the first ``ref_samples`` images (None: all) of a prepared dataset under ``backbone``."""
    manifest = load_manifest(dataset_uri, storage)
    return RefStatsKey(
        dataset=short_fingerprint(manifest.fingerprint),
        split=SPLIT,
        resolution=manifest.resolution,
        protocol=backbone.protocol,
        n=min(ref_samples or manifest.count, manifest.count),
        resize=manifest.resize,
    )


def reference_stats(key: RefStatsKey, dataset_uri: str, storage: StorageOptions, backbone: Backbone, *,
                    batch_size: int, results_root: str) -> RefStats:
    """The statistics of ``key``: loaded from the registry, or computed once and stored."""

    def compute():
        images, _ = read_arrays(dataset_uri, storage, limit=key.n)
        return reference_features(images, backbone, batch_size=batch_size)

    return RefStatsRegistry(RootLayout(results_root).refstats).get_or_compute(key, compute)


def prepare_reference(spec, dataset_uri: str, results_root: str, device: str = "cpu") -> EvalRuntime:
    """Compute (or find) the reference statistics; return what the workers need to score trials.

    The reference set is fixed by ``eval.ref_samples``; the evaluation ladder changes only how
    many fake samples each evaluation draws (``eval.ladder``)."""
    storage = StorageOptions(**(spec.data.storage.model_dump() if spec.data.storage else {}))
    backbone = get_backbone(spec.eval.backbone).to(device)
    key = reference_key(dataset_uri, storage, backbone, spec.eval.ref_samples)
    stats = reference_stats(key, dataset_uri, storage, backbone, batch_size=spec.eval.batch_size,
                            results_root=results_root)
    protocol = eval_protocol(spec)
    return EvalRuntime(
        refstats_root=RootLayout(results_root).refstats,
        key=stats.key,
        protocol=protocol,
        ladder=SampleLadder(protocol.num_samples, tuple((r.until_step, r.num_samples) for r in spec.eval.ladder)),
        settings=spec.eval.model_dump(mode="json"),
        computed=stats.computed,
    )


class WorkerEvaluator:
    """Scores a generator on a Ray Train worker against the prepared reference statistics.

    ``protocol`` is the full-N protocol; ``ladder`` picks the fake-sample N of each step."""

    def __init__(self, protocol: EvalProtocol, ref: RefStats, device: torch.device, ladder: Optional[SampleLadder] = None):
        self.protocol = protocol
        self.ref = ref
        self.ladder = ladder or SampleLadder(protocol.num_samples)
        self.backbone = get_backbone(protocol.backbone).to(device)

    @classmethod
    def from_config(cls, runtime: EvalRuntime, device: torch.device) -> "WorkerEvaluator":
        ref = RefStatsRegistry(runtime.refstats_root).load(runtime.key)
        return cls(runtime.protocol, ref, device, runtime.ladder)

    def protocol_at(self, step: int) -> EvalProtocol:
        return self.protocol.with_samples(self.ladder.num_samples(step))

    def evaluate(self, sample_fn, step: int, *, rank: int = 0, world_size: int = 1) -> dict[str, Any]:
        gather = torch_distributed_all_gather if world_size > 1 else None
        return evaluate(sample_fn, self.backbone, self.ref, self.protocol_at(step), rank=rank, world_size=world_size,
                        all_gather=gather)
