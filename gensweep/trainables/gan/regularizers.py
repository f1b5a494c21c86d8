"""Regularizers and constraints of the discriminator (and generator).

Each is a small object with one interface:
- ``phase``: which network's optimizer the penalty is added to ("D" or "G"), or None for a
  pure constraint applied when the networks are built (e.g. spectral normalization);
- ``penalty(batch) -> Tensor``: the unweighted penalty on a :class:`RegBatch`;
- ``build(G, D)``: a hook run once after the networks are created;
- ``after_step(D)``: a hook run after every D optimizer step (e.g. weight clipping).
``needs_real_logits``: whether it needs D's logits on real data from the main D phase.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn

from gensweep.trainables.registry import Registry

Tensor = torch.Tensor


@dataclass
class RegBatch:
    """Everything a regularizer may need for one step."""

    real: Tensor
    fake: Tensor  # detached generator output
    labels: Optional[Tensor]
    d_fn: Callable[[Tensor, Optional[Tensor]], Tensor]  # (images, labels) -> logits (augmented D)
    D: nn.Module
    G: nn.Module
    state: dict  # persistent per-regularizer state (e.g. LeCam running means)


class Regularizer:
    phase: Optional[str] = "D"
    default_weight: float = 1.0

    def penalty(self, batch: RegBatch) -> Tensor:
        raise NotImplementedError(type(self).__name__)

    def build(self, G: nn.Module, D: nn.Module) -> None:
        return None

    def after_step(self, D: nn.Module) -> None:
        return None


REGULARIZERS: Registry[type] = Registry("regularizer")


def _grad_norm_sq(out: Tensor, inp: Tensor) -> Tensor:
    (grad,) = torch.autograd.grad(out.sum(), inp, create_graph=True)
    return grad.flatten(1).pow(2).sum(1)


@REGULARIZERS.register("none", ref="no regularization (baseline)")
class NoReg(Regularizer):
    phase = None


@REGULARIZERS.register("r1", ref="Mescheder et al. 2018, Which Training Methods for GANs do actually Converge? (R1)")
class R1(Regularizer):
    default_weight = 10.0

    def penalty(self, b: RegBatch) -> Tensor:
        x = b.real.detach().requires_grad_(True)
        return 0.5 * _grad_norm_sq(b.d_fn(x, b.labels), x).mean()


@REGULARIZERS.register("r2", ref="Mescheder et al. 2018, Which Training Methods for GANs do actually Converge? (R2)")
class R2(Regularizer):
    default_weight = 10.0

    def penalty(self, b: RegBatch) -> Tensor:
        x = b.fake.detach().requires_grad_(True)
        return 0.5 * _grad_norm_sq(b.d_fn(x, b.labels), x).mean()


@REGULARIZERS.register("gp", ref="Gulrajani et al. 2017, Improved Training of Wasserstein GANs (gradient penalty)")
class GradientPenalty(Regularizer):
    default_weight = 10.0

    def penalty(self, b: RegBatch) -> Tensor:
        n = b.real.shape[0]
        alpha = torch.rand(n, *([1] * (b.real.dim() - 1)), device=b.real.device)
        x = (alpha * b.real.detach() + (1 - alpha) * b.fake.detach()).requires_grad_(True)
        norm = _grad_norm_sq(b.d_fn(x, b.labels), x).add(1e-12).sqrt()
        return ((norm - 1.0) ** 2).mean()


@REGULARIZERS.register("spectral-norm", ref="Miyato et al. 2018, Spectral Normalization for GANs")
class SpectralNorm(Regularizer):
    """A constraint: wraps every conv/linear weight of D in spectral normalization."""

    phase = None

    def build(self, G: nn.Module, D: nn.Module) -> None:
        for name, module in list(D.named_modules()):
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) and not hasattr(
                module, "parametrizations"
            ):
                nn.utils.parametrizations.spectral_norm(module)
