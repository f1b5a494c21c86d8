"""Images -> backbone features, in fixed-size batches (the first link of every metric chain).

Image conventions accepted by :func:`reference_features`:

* ``numpy`` arrays use image layout: uint8 ``[N, H, W]`` (gray) or
  ``[N, H, W, C]`` with C in (1, 3);
* ``torch`` tensors use NCHW (``[N, H, W]`` is taken as gray);
* uint8 values are mapped to [-1, 1] by ``x / 127.5 - 1``; float inputs must
  already be in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch

from .backbones import Backbone

__all__ = ["to_unit_nchw", "extract_features", "reference_features", "iter_batches"]


def to_unit_nchw(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Convert one image batch (see module conventions) to float32 NCHW in [-1, 1]."""
    if isinstance(images, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(images))
        if t.ndim == 3:
            t = t.unsqueeze(1)
        elif t.ndim == 4 and t.shape[-1] in (1, 3):
            t = t.permute(0, 3, 1, 2)
        else:
            raise ValueError(f"numpy images must be [N,H,W] or [N,H,W,C] with C in (1,3); got {images.shape}")
    elif isinstance(images, torch.Tensor):
        t = images.unsqueeze(1) if images.ndim == 3 else images
        if t.ndim != 4 or t.shape[1] not in (1, 3):
            raise ValueError(f"torch images must be NCHW with 1 or 3 channels; got {tuple(images.shape)}")
    else:
        raise TypeError(f"unsupported image batch type {type(images).__name__}")
    if t.dtype == torch.uint8:
        return t.to(torch.float32) / 127.5 - 1.0
    return t.to(torch.float32)


def iter_batches(images: np.ndarray | torch.Tensor, batch_size: int) -> Iterator[np.ndarray | torch.Tensor]:
    """Slice an array into consecutive batches of ``batch_size`` (last one may be smaller)."""
    for i in range(0, len(images), batch_size):
        yield images[i : i + batch_size]


@torch.no_grad()
def extract_features(backbone: Backbone, images: torch.Tensor, batch_size: int = 256) -> dict[str, torch.Tensor]:
    """Run ``backbone`` on float NCHW [-1, 1] images in batches; returns CPU float32 ``features`` (+ ``logits``)."""
    backbone.eval()
    out: dict[str, list[torch.Tensor]] = {}
    for chunk in iter_batches(images, batch_size):
        res = backbone(chunk)
        for k, v in res.items():
            out.setdefault(k, []).append(v.detach().to("cpu", torch.float32))
    if not out:
        empty = {"features": torch.zeros(0, backbone.feature_dim)}
        if backbone.has_logits:
            empty["logits"] = torch.zeros(0, int(getattr(backbone, "num_classes", 10)))
        return empty
    return {k: torch.cat(v) for k, v in out.items()}


@torch.no_grad()
def reference_features(
    images_iter: np.ndarray | torch.Tensor | Iterable[np.ndarray | torch.Tensor],
    backbone: Backbone,
    batch_size: int = 256,
) -> np.ndarray:
    """Backbone features (float32 [N, D] numpy) of real images given as one array or an iterable of batches."""
    batches = iter_batches(images_iter, batch_size) if isinstance(images_iter, (np.ndarray, torch.Tensor)) else images_iter
    feats: list[np.ndarray] = []
    for batch in batches:
        x = to_unit_nchw(batch)
        feats.append(extract_features(backbone, x, batch_size)["features"].numpy())
    if not feats:
        return np.zeros((0, backbone.feature_dim), np.float32)
    return np.concatenate(feats).astype(np.float32, copy=False)
