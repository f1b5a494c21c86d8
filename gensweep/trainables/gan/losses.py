"""Adversarial losses: each maps (real_logits, fake_logits) to the D loss and the G loss.

One signature for all: ``d(real, fake)`` and ``g(real, fake)``, logits of shape [N] or [N, 1].
``g`` receives ``real=None`` unless the loss declares ``g_uses_real`` (relativistic losses, whose
G loss compares fake to real logits; the real logits carry no gradient to G),
so the G phase skips a forward pass of D on real data when it is not needed.
``needs_lipschitz``: the loss is only well posed with a Lipschitz-constrained D (a critic).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from gensweep.trainables.registry import Registry

Tensor = torch.Tensor


@dataclass(frozen=True)
class AdversarialLoss:
    d: Callable[[Tensor, Tensor], Tensor]
    g: Callable[[Optional[Tensor], Tensor], Tensor]
    g_uses_real: bool = False
    needs_lipschitz: bool = False


LOSSES: Registry[AdversarialLoss] = Registry("adversarial loss")


def _register(name: str, ref: str, d, g, **flags) -> None:
    LOSSES.register(name, ref=ref)(AdversarialLoss(d=d, g=g, **flags))


def _d_logistic(r: Tensor, f: Tensor) -> Tensor:
    return F.softplus(-r).mean() + F.softplus(f).mean()


_register(
    "ns",
    "Goodfellow et al. 2014, Generative Adversarial Nets (non-saturating G loss)",
    _d_logistic,
    lambda r, f: F.softplus(-f).mean(),
)
_register(
    "minimax",
    "Goodfellow et al. 2014, Generative Adversarial Nets (original saturating minimax)",
    _d_logistic,
    lambda r, f: -F.softplus(f).mean(),
)
_register(
    "hinge",
    "Lim & Ye 2017, Geometric GAN; Miyato et al. 2018 (hinge loss)",
    lambda r, f: F.relu(1.0 - r).mean() + F.relu(1.0 + f).mean(),
    lambda r, f: -f.mean(),
)
_register(
    "wgan",
    "Arjovsky et al. 2017, Wasserstein GAN",
    lambda r, f: f.mean() - r.mean(),
    lambda r, f: -f.mean(),
    needs_lipschitz=True,
)
_register(
    "lsgan",
    "Mao et al. 2017, Least Squares Generative Adversarial Networks",
    lambda r, f: 0.5 * ((r - 1.0) ** 2).mean() + 0.5 * (f**2).mean(),
    lambda r, f: 0.5 * ((f - 1.0) ** 2).mean(),
)
_register(
    "rpgan",
    "Jolicoeur-Martineau 2019, The relativistic discriminator (relativistic pairing)",
    lambda r, f: F.softplus(-(r - f)).mean(),
    lambda r, f: F.softplus(-(f - r)).mean(),
    g_uses_real=True,
)


def _relative_to_average(a: Tensor, b: Tensor) -> Tensor:
    """a - E[b]: how much more realistic each ``a`` looks than the average ``b``."""
    return a - b.mean()


_register(
    "ragan",
    "Jolicoeur-Martineau 2018, The relativistic discriminator (relativistic average standard GAN, RaSGAN)",
    lambda r, f: (F.softplus(-_relative_to_average(r, f)).mean() + F.softplus(_relative_to_average(f, r)).mean()) / 2,
    lambda r, f: (F.softplus(_relative_to_average(r, f)).mean() + F.softplus(-_relative_to_average(f, r)).mean()) / 2,
    g_uses_real=True,
)
