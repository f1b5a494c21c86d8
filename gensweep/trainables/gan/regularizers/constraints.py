"""Constraints on the networks' weights: spectral normalization and weight clipping."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torch.nn.utils import parametrize

from gensweep.trainables.gan.regularizers.base import REGULARIZERS, Regularizer
from gensweep.trainables.gan.terms import StepView

D_WEIGHTS = "D weight constraint"


def spectral_normalize(net: nn.Module) -> None:
    """Wrap every conv / linear weight of ``net`` in spectral normalization (power iteration per forward)."""
    for module in list(net.modules()):
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) and not parametrize.is_parametrized(module, "weight"):
            nn.utils.parametrizations.spectral_norm(module)


@REGULARIZERS.register("spectral-norm", ref="Miyato et al. 2018, Spectral Normalization for GANs")
class SpectralNorm(Regularizer):
    """A constraint: every conv / linear weight of D divided by its largest singular value."""

    default_weight = None
    lipschitz = True
    exclusive = D_WEIGHTS

    def build(self, G: nn.Module, D: nn.Module) -> None:
        spectral_normalize(D)


@REGULARIZERS.register("spectral-norm-gd", ref="Zhang et al. 2019, Self-Attention GANs (spectral norm in G as well as D)")
class SpectralNormGD(SpectralNorm):
    def build(self, G: nn.Module, D: nn.Module) -> None:
        spectral_normalize(D)
        spectral_normalize(G)


@REGULARIZERS.register("weight-clip", ref="Arjovsky et al. 2017, Wasserstein GAN (weight clipping)")
class WeightClip(Regularizer):
    """After every D optimizer step, clamp all of D's parameters to [-c, c]; the weight is c."""

    default_weight = 0.01
    lipschitz = True
    exclusive = D_WEIGHTS

    def __init__(self, weight: Optional[float] = None):
        super().__init__(weight)
        self.D: Optional[nn.Module] = None

    def build(self, G: nn.Module, D: nn.Module) -> None:
        self.D = D
        self.clip(D)

    @torch.no_grad()
    def clip(self, D: nn.Module) -> None:
        for p in D.parameters():
            p.clamp_(-self.weight, self.weight)

    def after_phase(self, phase: str, view: StepView) -> None:
        if phase.startswith("D_"):
            self.clip(self.D if self.D is not None else view.D)
