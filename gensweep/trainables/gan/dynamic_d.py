"""DynamicD (Yang et al. 2022): the discriminator's capacity changes on a schedule during training.

What is implemented: a width multiplier ``f(t)`` in ``[dynamic_d_min, 1]`` over training progress
``t = step / steps``, applied as a channel mask: every conv layer inside D's trunk keeps its first
``ceil(f * C)`` output channels and zeroes the rest (so masked weights get no gradient and
unmasking later "adds" channels). ``grow`` raises f linearly from the minimum to 1 (the paper's
choice for enough data), ``shrink`` lowers it from 1 to the minimum (its choice for limited data).
The mask depends only on the step, so it needs no checkpoint state. Layers flagged
``no_capacity_mask`` (e.g. an image-output conv) are left alone.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from gensweep.trainables.gan.terms import Ingredient
from gensweep.trainables.registry import Registry

Schedule = Callable[[float, float], float]  # (progress in [0, 1], minimum fraction) -> active fraction
DYNAMIC_D: Registry[Schedule] = Registry("D capacity schedule")



@DYNAMIC_D.register("none", ref="fixed discriminator capacity (baseline)")
def full_capacity(t: float, m: float) -> float:
    return 1.0


@DYNAMIC_D.register("grow", ref="Yang et al. 2022, Improving GANs with A Dynamic Discriminator (increasing capacity)")
def growing_capacity(t: float, m: float) -> float:
    """From the minimum fraction ``m`` at the start to full capacity at the end."""
    return m + (1.0 - m) * t


@DYNAMIC_D.register("shrink", ref="Yang et al. 2022, Improving GANs with A Dynamic Discriminator (decreasing capacity)")
def shrinking_capacity(t: float, m: float) -> float:
    """From full capacity at the start to the minimum fraction ``m`` at the end."""
    return 1.0 - (1.0 - m) * t


def kept_channels(channels: int, fraction: float) -> int:
    return min(channels, max(1, math.ceil(fraction * channels - 1e-9)))


class DynamicD(Ingredient):
    def __init__(self, schedule: str, min_fraction: float, total_steps: int):
        self.schedule = DYNAMIC_D.get(schedule)
        self.min_fraction, self.total = min_fraction, max(total_steps, 1)
        self.fraction = self.schedule(0.0, min_fraction)
        self.layers: list[nn.Conv2d] = []

    def build(self, G: nn.Module, D: nn.Module) -> None:
        if min(self.schedule(0.0, self.min_fraction), self.schedule(1.0, self.min_fraction)) >= 1.0:
            return  # never masks anything: no hooks
        trunk = getattr(D, "trunk", D)
        for module in trunk.modules():
            if isinstance(module, nn.Conv2d) and not getattr(module, "no_capacity_mask", False):
                module.register_forward_hook(self._mask)
                self.layers.append(module)

    def _mask(self, module: nn.Module, inputs, out: torch.Tensor) -> torch.Tensor:
        keep = kept_channels(out.shape[1], self.fraction)
        if keep >= out.shape[1]:
            return out
        mask = torch.zeros(out.shape[1], device=out.device, dtype=out.dtype)
        mask[:keep] = 1
        return out * mask[None, :, None, None]

    def before_step(self, step: int) -> None:
        self.fraction = self.schedule(min(step / self.total, 1.0), self.min_fraction)

    def metrics(self) -> dict[str, float]:
        return {"dynamic_d/capacity": self.fraction} if self.layers else {}
