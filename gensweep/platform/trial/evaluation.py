"""Evaluation glue between the platform and the metrics package.

Driver side: :func:`prepare_reference` computes the real-data reference statistics once
per (dataset fingerprint, split, resolution, backbone protocol, N, resize, subset seed) before
any trial starts, into ``<results root>/refstats/`` (local or object storage), or finds the
published statistics imported as ``eval.reference``. The reference set is a seeded random
subset of ``eval.ref_samples`` records, stratified by label (:func:`reference_indices`).
Worker side: :class:`WorkerEvaluator` reads them from the results root through the storage
filesystem (never a driver-local path) and scores generators, splitting generation across the
Ray Train workers of a trial, with the fake-sample N of each step taken from the evaluation
ladder (``eval.ladder``).
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch

from gensweep.platform.data import (
    StorageOptions,
    load_manifest,
    read_arrays,
    short_fingerprint,
)
from gensweep.platform.data.subset import stratified_indices
from gensweep.platform.metrics.backbones import BACKBONES, Backbone, get_backbone
from gensweep.platform.metrics.evaluator import evaluate, torch_distributed_all_gather
from gensweep.platform.metrics.features import reference_features
from gensweep.platform.metrics.ladder import SampleLadder
from gensweep.platform.metrics.protocol import EvalProtocol
from gensweep.platform.metrics.refstats import ProtocolMismatch, RefStats, RefStatsKey, RefStatsRegistry
from gensweep.platform.spec import SpecError
from gensweep.platform.storage.layout import RootLayout
from gensweep.platform.trial.handoff import EvalRuntime

SPLIT = "train"
# Metrics that need no reference features (FID: mu and sigma; IS: no reference at all). Any
# other metric is taken to need them, so a new one is refused with moments-only statistics.
WITHOUT_REF_FEATURES = frozenset({"fid", "is"})


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


def reference_key(dataset_uri: str, storage: StorageOptions, backbone: Backbone, ref_samples: Optional[int],
                  seed: Optional[int]) -> RefStatsKey:
    """The registry key of a seeded subset of ``ref_samples`` records (None, or the dataset's
    size: all of them, and the key has no seed) of a prepared dataset under ``backbone``.

    A key with a seed names the stratified subset :func:`reference_indices` draws; a key with
    fewer records and no seed (made before subsets were drawn) names the first n records."""
    manifest = load_manifest(dataset_uri, storage)
    n = min(ref_samples or manifest.count, manifest.count)
    return RefStatsKey(
        dataset=short_fingerprint(manifest.fingerprint),
        split=SPLIT,
        resolution=manifest.resolution,
        protocol=backbone.protocol,
        n=n,
        resize=manifest.resize,
        seed=seed if n < manifest.count else None,
    )


def reference_indices(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Sorted indices of ``n`` records drawn with ``seed``, stratified by label (every class
    in proportion to its size, within one record; unlabelled records form one stratum)."""
    return stratified_indices(labels, n / len(labels), seed)


def reference_images(key: RefStatsKey, dataset_uri: str, storage: StorageOptions) -> np.ndarray:
    """The real images of ``key``: its seeded subset, or the first ``key.n`` without a seed."""
    if key.seed is None:
        return read_arrays(dataset_uri, storage, limit=key.n)[0]
    images, labels = read_arrays(dataset_uri, storage)
    return images[reference_indices(labels, key.n, key.seed)]


def reference_stats(key: RefStatsKey, dataset_uri: str, storage: StorageOptions, backbone: Backbone, *,
                    batch_size: int, results_root: str) -> RefStats:
    """The statistics of ``key``: loaded from ``<results_root>/refstats``, or computed once and stored."""

    def compute():
        return reference_features(reference_images(key, dataset_uri, storage), backbone, batch_size=batch_size)

    return RefStatsRegistry(RootLayout(results_root).refstats, storage=storage).get_or_compute(key, compute)


def class_references(stats: RefStats, dataset_uri: str, storage: StorageOptions, results_root: str) -> list[RefStats]:
    """Per-class statistics of the reference set ``stats`` (for intra-class FID): the rows of its
    features whose records have label k, one registry entry per class (``...__class<k>__<hash>``).

    Classes are the labels the subset holds, which must be 0..K-1 with at least two records each."""
    if stats.features is None:
        raise SpecError("eval.metrics: intra_fid needs the reference features and labels; imported statistics"
                        " (eval.reference) have no labels")
    labels = reference_labels(stats.key, dataset_uri, storage)
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2 or classes.tolist() != list(range(len(classes))) or counts.min() < 2:
        raise SpecError(f"eval.metrics: intra_fid needs a labelled dataset with classes 0..K-1 and >= 2 reference"
                        f" records of each; the reference set holds labels {classes.tolist()[:20]} with counts"
                        f" {counts.tolist()[:20]} (raise eval.ref_samples, or drop intra_fid)")
    registry = RefStatsRegistry(RootLayout(results_root).refstats, storage=storage)
    return [registry.get_or_compute(stats.key.of_class(k, int(n)), lambda k=k: stats.features[labels == k])
            for k, n in zip(classes.tolist(), counts.tolist())]


def reference_labels(key: RefStatsKey, dataset_uri: str, storage: StorageOptions) -> np.ndarray:
    """The labels of ``key``'s records, in the order of its features."""
    _, labels = read_arrays(dataset_uri, storage, limit=None if key.seed is not None else key.n)
    return labels if key.seed is None else labels[reference_indices(labels, key.n, key.seed)]


def imported_reference(spec, dataset_uri: str, storage: StorageOptions, results_root: str) -> RefStats:
    """The statistics imported as ``eval.reference``, checked against the spec's evaluation.

    Raises :class:`SpecError` (before Ray starts) for an unknown name, another backbone
    protocol or resolution, or metrics that need features the import does not have."""
    registry = RefStatsRegistry(RootLayout(results_root).refstats, storage=storage)
    try:
        key = registry.named(spec.eval.reference)
    except KeyError as e:
        raise SpecError(f"eval.reference: {e.args[0]}") from None
    stats = registry.load(key)
    try:
        stats.check_compatible(protocol=BACKBONES[spec.eval.backbone].protocol,
                               resolution=load_manifest(dataset_uri, storage).resolution)
    except ProtocolMismatch as e:
        raise SpecError(f"eval.reference: {spec.eval.reference!r} was made under another protocol than"
                        f" eval.backbone {spec.eval.backbone!r} at data.resolution: {e}") from None
    needs_features = [m for m in spec.eval.metrics if m not in WITHOUT_REF_FEATURES]
    if stats.features is None and needs_features:
        raise SpecError(f"eval.metrics: {', '.join(needs_features)} need the reference features; the statistics"
                        f" imported as {spec.eval.reference!r} hold only mu and sigma (use metrics: [fid])")
    return stats


def prepare_reference(spec, dataset_uri: str, results_root: str, device: str = "cpu") -> EvalRuntime:
    """Compute (or find) the reference statistics; return what the workers need to score trials.

    The reference set is fixed by ``eval.ref_samples`` and ``eval.ref_seed`` (or is the one
    imported as ``eval.reference``); the evaluation ladder changes only how many fake samples
    each evaluation draws (``eval.ladder``)."""
    storage = StorageOptions(**(spec.data.storage.model_dump() if spec.data.storage else {}))
    if spec.eval.reference:
        stats = imported_reference(spec, dataset_uri, storage, results_root)
    else:
        backbone = get_backbone(spec.eval.backbone).to(device)
        key = reference_key(dataset_uri, storage, backbone, spec.eval.ref_samples, spec.eval.ref_seed)
        stats = reference_stats(key, dataset_uri, storage, backbone, batch_size=spec.eval.batch_size,
                                results_root=results_root)
    protocol = eval_protocol(spec)
    per_class = class_references(stats, dataset_uri, storage, results_root) if protocol.class_metrics() else []
    return EvalRuntime(
        refstats_root=RootLayout(results_root).refstats,
        key=stats.key,
        protocol=protocol,
        ladder=SampleLadder(protocol.num_samples, tuple((r.until_step, r.num_samples) for r in spec.eval.ladder)),
        settings=spec.eval.model_dump(mode="json"),
        computed=stats.computed,
        storage=storage.model_dump(),
        fid_floor=stats.fid_floor,
        class_keys=tuple(c.key for c in per_class),
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
        registry = RefStatsRegistry(runtime.refstats_root, storage=StorageOptions(**runtime.storage))
        ref = registry.load(runtime.key)
        ref.classes = {int(key.label): registry.load(key) for key in runtime.class_keys}
        return cls(runtime.protocol, ref, device, runtime.ladder)

    def protocol_at(self, step: int) -> EvalProtocol:
        return self.protocol.with_samples(self.ladder.num_samples(step))

    def evaluate(self, sample_fn, step: int, *, rank: int = 0, world_size: int = 1) -> dict[str, Any]:
        gather = torch_distributed_all_gather if world_size > 1 else None
        return evaluate(sample_fn, self.backbone, self.ref, self.protocol_at(step), rank=rank, world_size=world_size,
                        all_gather=gather)
