"""The GAN step as a list of phases (D main, D reg, G main, G reg), like stylegan2-ada.

A phase names the network it updates, how often it runs (lazy intervals), and a function
that returns the loss to minimise. The loop only runs the phases: which loss, regularizer
or augmentation is used was decided when the phases were built from the registries.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
from torch import nn

from gensweep.trainables.gan.augment import AUGMENTATIONS
from gensweep.trainables.gan.config import GanConfig
from gensweep.trainables.gan.losses import LOSSES
from gensweep.trainables.gan.regularizers import REGULARIZERS, RegBatch, Regularizer

Tensor = torch.Tensor


@dataclass
class StepInputs:
    real: Tensor
    labels: Optional[Tensor]
    z_fn: Callable[[int], Tensor]
    cache: dict = field(default_factory=dict)  # per-step values shared between phases


@dataclass
class Phase:
    name: str
    net: str  # "D" or "G": whose optimizer steps
    interval: int
    loss: Callable[[StepInputs], Tensor]

    def due(self, step: int) -> bool:
        return step % self.interval == 0


@dataclass
class Components:
    G: nn.Module
    D: nn.Module
    regularizer: Regularizer
    reg_state: dict = field(default_factory=dict)


def build_phases(cfg: GanConfig, comp: Components) -> list[Phase]:
    adv = LOSSES.get(cfg.loss)
    aug = AUGMENTATIONS.get(cfg.aug)
    reg = comp.regularizer
    G, D = comp.G, comp.D

    def d_fn(x: Tensor, labels: Optional[Tensor]) -> Tensor:
        return D(aug(x), labels)

    def fake(inp: StepInputs) -> Tensor:
        return G(inp.z_fn(inp.real.shape[0]), inp.labels)

    def d_main(inp: StepInputs) -> Tensor:
        with torch.no_grad():
            f = fake(inp)
        inp.cache["fake_detached"] = f
        real_logits = d_fn(inp.real, inp.labels)
        fake_logits = d_fn(f, inp.labels)
        inp.cache["d_real"] = real_logits.detach().mean()
        inp.cache["d_fake"] = fake_logits.detach().mean()
        return adv.d(real_logits, fake_logits)

    def g_main(inp: StepInputs) -> Tensor:
        f = fake(inp)
        real_logits = d_fn(inp.real, inp.labels).detach()
        return adv.g(real_logits, d_fn(f, inp.labels))

    phases = [Phase("D_main", "D", 1, d_main), Phase("G_main", "G", cfg.n_dis, g_main)]
    if reg.phase is not None:
        weight = reg.default_weight if cfg.reg_weight is None else cfg.reg_weight
        interval = cfg.reg_interval

        def reg_loss(inp: StepInputs) -> Tensor:
            f = inp.cache.get("fake_detached")
            if f is None:
                with torch.no_grad():
                    f = fake(inp)
            batch = RegBatch(real=inp.real, fake=f, labels=inp.labels, d_fn=d_fn, D=D, G=G, state=comp.reg_state)
            return reg.penalty(batch) * (weight * interval)

        # D reg runs right after D main; G reg right after G main.
        phases.insert(1 if reg.phase == "D" else 2, Phase(f"{reg.phase}_reg", reg.phase, interval, reg_loss))
    return phases


def build_regularizer(cfg: GanConfig) -> Regularizer:
    return REGULARIZERS.get(cfg.reg)()
