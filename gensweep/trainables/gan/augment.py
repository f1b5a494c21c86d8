"""Differentiable augmentations applied to every image D sees (real and fake alike).

Signature: ``aug(x) -> x`` on NCHW batches in [-1, 1]; differentiable (G is trained through it).
How often an image is augmented (fixed or adaptive p) is decided by :mod:`.ada`.

DiffAugment (Zhao et al. 2020) is a *policy*: a comma-separated list of the transforms in
:data:`AUG_POLICIES` (``color``, ``translation``, ``cutout``), applied in the order given, as the
reference code's ``DiffAugment(x, policy)``. The ``diffaug*`` entries are fixed policies; the
config's ``aug_policy`` replaces a DiffAugment entry's policy (e.g. ``translation,cutout``).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from gensweep.trainables.registry import Registry

Tensor = torch.Tensor
Augment = Callable[[Tensor], Tensor]
AUGMENTATIONS: Registry[Augment] = Registry("augmentation")
AUG_POLICIES: Registry[Augment] = Registry("DiffAugment policy")
POLICY_SEPARATOR = ","


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


AUG_POLICIES.register("color", ref="Zhao et al. 2020, DiffAugment (random brightness, saturation, contrast)")(_color)
AUG_POLICIES.register("translation", ref="Zhao et al. 2020, DiffAugment (random translation by up to 1/8, zero fill)")(_translation)
AUG_POLICIES.register("cutout", ref="Zhao et al. 2020, DiffAugment; DeVries & Taylor 2017 (cutout of half the size)")(_cutout)


def parse_policy(policy: str) -> tuple[str, ...]:
    """``"color, translation"`` -> ``("color", "translation")``; an unknown or empty part raises,
    naming the allowed transforms."""
    names = tuple(part.strip() for part in str(policy).split(POLICY_SEPARATOR))
    for name in names:
        AUG_POLICIES.entry(name)  # raises UnknownComponent (a ValueError) listing the allowed names
    return names


class PolicyAugment:
    """DiffAugment with a fixed policy: its transforms, in order, on the whole batch."""

    def __init__(self, policy: str):
        self.policy = POLICY_SEPARATOR.join(parse_policy(policy))
        self.transforms = [AUG_POLICIES.get(name) for name in self.policy.split(POLICY_SEPARATOR)]

    def __call__(self, x: Tensor) -> Tensor:
        for transform in self.transforms:
            x = transform(x)
        return x


_DIFFAUG = "Zhao et al. 2020, Differentiable Augmentation for Data-Efficient GAN Training"
AUGMENTATIONS.register("diffaug", ref=f"{_DIFFAUG} (policy color,translation,cutout)")(PolicyAugment("color,translation,cutout"))
AUGMENTATIONS.register("diffaug-translation", ref=f"{_DIFFAUG} (policy translation)")(PolicyAugment("translation"))
AUGMENTATIONS.register("diffaug-color", ref=f"{_DIFFAUG} (policy color: brightness, saturation, contrast)")(PolicyAugment("color"))
AUGMENTATIONS.register("diffaug-cutout", ref=f"{_DIFFAUG} (policy cutout); DeVries & Taylor 2017")(PolicyAugment("cutout"))
