"""Sample -> features -> metrics, optionally split over the ranks of a distributed training job.

Generation is cut into fixed batches: batch ``i`` holds ``batch_size``
images (the last one the remainder) produced by
``sample_fn(count, seed=latent_seed + i)``, so every trial of a sweep is
scored on the same noise.  Rank ``r`` of ``world_size`` handles the batches
with ``i % world_size == r``; the per-rank features are gathered and put
back in batch order, so the metrics equal those of a single process on the
same latents.  This module must not import Ray: it runs inside training
workers, which pass a gather callable (see :func:`torch_distributed_all_gather`).

The metrics are the registered functions of :mod:`.protocol` (``METRICS``: FID, KID,
improved precision/recall, Inception Score), each with its paper.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from .backbones import Backbone
from .protocol import METRICS, EvalProtocol
from .refstats import ProtocolMismatch, RefStats

__all__ = [
    "METRICS",
    "EvalProtocol",
    "evaluate",
    "generate_features",
    "compute_metrics",
    "torch_distributed_all_gather",
]

SampleFn = Callable[[int, int], torch.Tensor]
AllGather = Callable[[torch.Tensor], Sequence[torch.Tensor]]


def _check_resolution(ref: RefStats, images: torch.Tensor) -> None:
    h, w = images.shape[-2:]
    ref.check_compatible(resolution=int(h) if h == w else f"{h}x{w}")


def _rank_batches(sample_fn: SampleFn, backbone: Backbone, protocol: EvalProtocol, ref: RefStats | None, rank: int,
                  world_size: int, want_logits: bool, num_classes: int) -> list[torch.Tensor]:
    """Rows (features, logits, label) of the batches ``i % world_size == rank``, in batch order, float32 on the CPU."""
    local: list[torch.Tensor] = []
    for i, count in protocol.batches():
        if i % world_size != rank:
            continue
        start = i * protocol.batch_size
        labels = torch.arange(start, start + count) % num_classes if num_classes else None
        if labels is None:
            images = sample_fn(count, protocol.latent_seed + i)
        else:
            images = sample_fn(count, protocol.latent_seed + i, labels=labels)
        if images.shape[0] != count:
            raise ValueError(f"sample_fn returned {images.shape[0]} images for batch {i}, expected {count}")
        if ref is not None:
            _check_resolution(ref, images)
        out = backbone(images)
        parts = [out["features"]] + ([out["logits"]] if want_logits else [])
        if labels is not None:
            parts.append(labels[:, None].to(out["features"].device, out["features"].dtype))
        local.append(torch.cat(parts, dim=1).to("cpu", torch.float32))
    return local


def _in_batch_order(gathered: Sequence[torch.Tensor], schedule: list[tuple[int, int]], world_size: int) -> torch.Tensor:
    """Every rank's rows (rank ``r`` holds batches ``i % world_size == r``) put back in batch order."""
    parts = [torch.as_tensor(t).to("cpu", torch.float32) for t in gathered]
    if len(parts) != world_size:
        raise RuntimeError(f"all_gather returned {len(parts)} parts for world_size {world_size}")
    per_rank = []
    for r, t in enumerate(parts):
        counts = [c for i, c in schedule if i % world_size == r]
        if t.shape[0] != sum(counts):
            raise RuntimeError(f"rank {r} sent {t.shape[0]} rows, expected {sum(counts)}")
        per_rank.append(iter(torch.split(t, counts)) if counts else iter(()))
    return torch.cat([next(per_rank[i % world_size]) for i, _ in schedule])


def generate_features(
    sample_fn: SampleFn,
    backbone: Backbone,
    protocol: EvalProtocol,
    *,
    ref: RefStats | None = None,
    rank: int = 0,
    world_size: int = 1,
    all_gather: AllGather | None = None,
    num_classes: int = 0,
) -> dict[str, np.ndarray]:
    """Generate this rank's batches, extract features (and logits), gather all ranks and return them in batch order.

    With ``num_classes`` K > 0 sample ``j`` (counting over all batches) is drawn for class ``j % K``
    (``sample_fn(count, seed, labels=...)``), so every class gets an equal share, and the result
    holds those ``labels``."""
    if world_size > 1 and all_gather is None:
        raise ValueError("world_size > 1 needs an all_gather callable")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside world_size {world_size}")
    logits_for = protocol.logits_metrics()
    want_logits = bool(logits_for)
    if want_logits and not backbone.has_logits:
        raise ValueError(f"metric {logits_for[0]!r} needs logits; backbone {backbone.name!r} has none")
    backbone.eval()
    n_logits = int(getattr(backbone, "num_classes", 10)) if want_logits else 0
    width = backbone.feature_dim + n_logits + (1 if num_classes else 0)

    with torch.no_grad():
        local = _rank_batches(sample_fn, backbone, protocol, ref, rank, world_size, want_logits, num_classes)
        mine = torch.cat(local) if local else torch.zeros(0, width)
        full = mine if world_size == 1 else _in_batch_order(all_gather(mine), protocol.batches(), world_size)

    feats = full[:, : backbone.feature_dim].numpy()
    result = {"features": feats}
    if want_logits:
        result["logits"] = full[:, backbone.feature_dim : backbone.feature_dim + n_logits].numpy()
    if num_classes:
        result["labels"] = full[:, -1].numpy().astype(np.int64)
    return result


def compute_metrics(fake: dict[str, np.ndarray], ref: RefStats, protocol: EvalProtocol) -> dict[str, float]:
    """Metrics of generated ``fake`` features (and logits) against reference statistics ``ref``:
    each of the protocol's metrics, through the registry (:data:`~.protocol.METRICS`)."""
    out: dict[str, float] = {}
    for metric in protocol.selected():
        out.update(metric(fake, ref, protocol))
    return out


def evaluate(
    sample_fn: SampleFn,
    backbone: Backbone,
    ref: RefStats,
    protocol: EvalProtocol,
    *,
    rank: int = 0,
    world_size: int = 1,
    all_gather: AllGather | None = None,
) -> dict:
    """Score a generator: features of ``protocol.num_samples`` samples vs ``ref``; same result on every rank.

    Besides the metrics, the result names how they were made: ``eval_n`` (fake samples),
    ``backbone``, ``eval_protocol`` (the backbone's protocol string) and ``refstats_key``."""
    if backbone.name != protocol.backbone:
        raise ProtocolMismatch(f"backbone: protocol={protocol.backbone!r} vs given={backbone.name!r}")
    ref.check_compatible(protocol=backbone.protocol)
    per_class = protocol.class_metrics()
    if per_class and not ref.classes:
        raise ValueError(f"metric {per_class[0]!r} needs per-class reference statistics; {ref.key.slug} has none")
    fake = generate_features(sample_fn, backbone, protocol, ref=ref, rank=rank, world_size=world_size,
                             all_gather=all_gather, num_classes=max(ref.classes) + 1 if per_class else 0)
    result: dict = compute_metrics(fake, ref, protocol)
    result.update(
        eval_n=int(len(fake["features"])), backbone=backbone.name, eval_protocol=backbone.protocol, refstats_key=ref.key.slug
    )
    return result


def gather_device(backend: str) -> torch.device:
    """Where a collective of ``backend`` takes its tensors: NCCL this process's current CUDA device, others the CPU."""
    return torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")


def torch_distributed_all_gather(tensor: torch.Tensor, group=None) -> list[torch.Tensor]:
    """All-gather tensors whose first dimension differs between ranks (pads to the max, works with gloo and nccl)."""
    import torch.distributed as dist

    world = dist.get_world_size(group)
    home = tensor.device
    device = gather_device(dist.get_backend(group))
    t = tensor.detach().to(device).contiguous()
    size = torch.tensor([t.shape[0]], dtype=torch.long, device=device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size, group=group)
    counts = [int(s.item()) for s in sizes]
    padded = t.new_zeros((max(counts), *t.shape[1:]))
    padded[: t.shape[0]] = t
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded, group=group)
    return [p[:c].to(home) for p, c in zip(parts, counts)]
