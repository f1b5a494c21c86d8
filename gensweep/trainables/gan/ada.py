"""Augmentation probability: fixed, or adapted to D's overfitting (ADA, Karras et al. 2020).

:class:`AugmentPipe` applies the configured augmentation to each image with probability p
(the same pipe sees real and fake images, as DiffAugment and ADA require). With
``ada_target`` set, p starts at 0 and every ``ada_interval`` steps moves by
``sign(r_t - target) * ada_interval / ada_speed`` where ``r_t = E[sign(D(real))]`` over
those steps (r_t near 1: D is confident on all reals, i.e. overfits). p and the running sums
are checkpointed (``aug_state``) and reported (``aug/p``, ``aug/rt``).
"""
from __future__ import annotations

from typing import Any, Optional

import torch
import torch.distributed as dist

from gensweep.trainables.gan.augment import AUGMENTATIONS, PolicyAugment
from gensweep.trainables.gan.terms import Ingredient, StepView

Tensor = torch.Tensor


class AugmentPipe(Ingredient):
    def __init__(self, aug: str, p: float = 1.0, *, policy: Optional[str] = None, target: Optional[float] = None,
                 interval: int = 4, speed: int = 500):
        self.name = aug
        self.fn = AUGMENTATIONS.get(aug) if policy is None else PolicyAugment(policy)  # policy: replaces DiffAugment's
        self.active = aug != "none"
        self.target, self.interval, self.speed = target, interval, speed
        self.p = 0.0 if target is not None else float(p)
        self.sum, self.count = 0.0, 0
        self.rt: Optional[float] = None  # r_t of the last adjustment

    def __call__(self, x: Tensor) -> Tensor:
        if not self.active or self.p <= 0.0:
            return x
        if self.p >= 1.0:
            return self.fn(x)
        keep = torch.rand(x.shape[0], 1, 1, 1, device=x.device) >= self.p
        return torch.where(keep, x, self.fn(x))

    def after_phase(self, phase: str, view: StepView) -> None:
        if self.target is None or phase != "D_main" or view.real_logits is None:
            return
        self.sum += float(torch.sign(view.real_logits.detach()).sum())
        self.count += int(view.real_logits.shape[0])
        if (view.step + 1) % self.interval == 0:
            self.adjust()

    def adjust(self) -> None:
        total = torch.tensor([self.sum, float(self.count)], dtype=torch.float64)
        if dist.is_available() and dist.is_initialized():  # every rank takes the same p
            dist.all_reduce(total)
        if total[1] > 0:
            self.rt = float(total[0] / total[1])
            direction = float(self.rt > self.target) - float(self.rt < self.target)
            step = direction * self.interval / self.speed
            self.p = min(max(self.p + step, 0.0), 1.0)
        self.sum, self.count = 0.0, 0

    def state_dict(self) -> dict[str, Any]:
        return {"p": self.p, "sum": self.sum, "count": self.count, "rt": self.rt}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.p, self.sum = float(state["p"]), float(state["sum"])
        self.count = int(state["count"])
        self.rt = None if state["rt"] is None else float(state["rt"])

    def metrics(self) -> dict[str, float]:
        if not self.active:
            return {}
        out = {"aug/p": self.p}
        if self.rt is not None:  # r_t exists after the first adjustment
            out["aug/rt"] = self.rt
        return out
