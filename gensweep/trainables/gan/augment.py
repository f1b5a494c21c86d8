"""Differentiable augmentations applied to every image D sees (real and fake alike).

Signature: ``aug(x) -> x`` on NCHW batches in [-1, 1]; differentiable (G is trained through it).
How often an image is augmented (fixed or adaptive p) is decided by :mod:`.ada`.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from gensweep.trainables.registry import Registry

Tensor = torch.Tensor
Augment = Callable[[Tensor], Tensor]
AUGMENTATIONS: Registry[Augment] = Registry("augmentation")


@AUGMENTATIONS.register("none", ref="no augmentation (baseline)")
def no_aug(x: Tensor) -> Tensor:
    return x


def _color(x: Tensor) -> Tensor:
    n = x.shape[0]
    r = lambda: torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype)  # noqa: E731
    x = x + (r() - 0.5)  # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (r() * 2) + mean  # saturation
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (r() + 0.5) + mean  # contrast


def _translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    tx = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    ty = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    gi, gx, gy = torch.meshgrid(
        torch.arange(n, device=x.device), torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij"
    )
    gx = torch.clamp(gx + tx + 1, 0, h + 1)
    gy = torch.clamp(gy + ty + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1])
    return padded.permute(0, 2, 3, 1)[gi, gx, gy].permute(0, 3, 1, 2)


def _cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ox = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    oy = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    gi, gx, gy = torch.meshgrid(
        torch.arange(n, device=x.device), torch.arange(ch, device=x.device), torch.arange(cw, device=x.device), indexing="ij"
    )
    gx = torch.clamp(gx + ox - ch // 2, 0, h - 1)
    gy = torch.clamp(gy + oy - cw // 2, 0, w - 1)
    mask = torch.ones(n, h, w, dtype=x.dtype, device=x.device)
    mask[gi, gx, gy] = 0
    return x * mask.unsqueeze(1)


@AUGMENTATIONS.register("diffaug", ref="Zhao et al. 2020, Differentiable Augmentation for Data-Efficient GAN Training")
def diffaug(x: Tensor) -> Tensor:
    return _cutout(_translation(_color(x)))


@AUGMENTATIONS.register("diffaug-translation", ref="Zhao et al. 2020, DiffAugment (translation only)")
def diffaug_translation(x: Tensor) -> Tensor:
    return _translation(x)


@AUGMENTATIONS.register("diffaug-color", ref="Zhao et al. 2020, DiffAugment (brightness, saturation, contrast only)")
def diffaug_color(x: Tensor) -> Tensor:
    return _color(x)


@AUGMENTATIONS.register("diffaug-cutout", ref="Zhao et al. 2020, DiffAugment (cutout only); DeVries & Taylor 2017")
def diffaug_cutout(x: Tensor) -> Tensor:
    return _cutout(x)
