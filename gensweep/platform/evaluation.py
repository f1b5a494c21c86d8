"""Evaluation glue between the platform and the metrics package.

Driver side: :func:`prepare_reference` computes the real-data reference statistics once
per (dataset fingerprint, split, resolution, backbone protocol, N, resize) before any trial
starts. Worker side: :class:`WorkerEvaluator` loads them and scores generators, splitting
generation across the Ray Train workers of a trial.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Optional

import torch

from gensweep.platform.data import StorageOptions, load_manifest, read_arrays, short_fingerprint
from gensweep.platform.metrics.backbones import get_backbone
from gensweep.platform.metrics.evaluator import EvalProtocol, evaluate, torch_distributed_all_gather
from gensweep.platform.metrics.features import reference_features
from gensweep.platform.metrics.refstats import RefStats, RefStatsKey, RefStatsRegistry

SPLIT = "train"


def refstats_root(results_root: str) -> str:
    """Reference statistics live next to the results (a local cache when results go to S3)."""
    if "://" in results_root:
        return str(Path(os.environ.get("GENSWEEP_CACHE", Path.home() / ".cache" / "gensweep")) / "refstats")
    return str(Path(results_root) / "refstats")


def eval_protocol(spec, num_samples: Optional[int] = None) -> EvalProtocol:
    e = spec.eval
    n = num_samples or e.num_samples
    return EvalProtocol(
        backbone=e.backbone,
        num_samples=n,
        batch_size=min(e.batch_size, n),
        latent_seed=e.latent_seed,
        metrics=tuple(e.metrics),
        kid_subset_size=min(1000, n),
    )


def prepare_reference(spec, dataset_uri: str, results_root: str, device: str = "cpu") -> dict[str, Any]:
    """Compute (or find) the reference statistics; return the picklable runtime config for workers."""
    storage = StorageOptions(**(spec.data.storage.model_dump() if spec.data.storage else {}))
    manifest = load_manifest(dataset_uri, storage)
    backbone = get_backbone(spec.eval.backbone).to(device)
    n = min(spec.eval.ref_samples or manifest.count, manifest.count)
    key = RefStatsKey(
        dataset=short_fingerprint(manifest.fingerprint),
        split=SPLIT,
        resolution=manifest.resolution,
        protocol=backbone.protocol,
        n=n,
        resize=manifest.resize,
    )
    registry = RefStatsRegistry(refstats_root(results_root))

    def compute():
        images, _ = read_arrays(dataset_uri, storage, limit=n)
        return reference_features(images, backbone, batch_size=spec.eval.batch_size)

    stats = registry.get_or_compute(key, compute)
    protocol = eval_protocol(spec)
    return {
        "refstats_root": str(registry.root),
        "refstats_key": key.slug,
        "key": key.to_dict(),
        "protocol": dataclasses.asdict(protocol),
        "computed": stats.computed,
    }


class WorkerEvaluator:
    """Scores a generator on a Ray Train worker against the prepared reference statistics."""

    def __init__(self, protocol: EvalProtocol, ref: RefStats, device: torch.device):
        self.protocol = protocol
        self.ref = ref
        self.backbone = get_backbone(protocol.backbone).to(device)

    @classmethod
    def from_config(cls, runtime: dict[str, Any], device: torch.device) -> "WorkerEvaluator":
        key = RefStatsKey(**runtime["key"])
        ref = RefStatsRegistry(runtime["refstats_root"]).load(key)
        return cls(EvalProtocol(**runtime["protocol"]), ref, device)

    def evaluate(self, sample_fn, step: int, *, rank: int = 0, world_size: int = 1) -> dict[str, Any]:
        gather = torch_distributed_all_gather if world_size > 1 else None
        return evaluate(sample_fn, self.backbone, self.ref, self.protocol, rank=rank, world_size=world_size, all_gather=gather)
