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


# Named functions, not lambdas: each loss can be read, referenced and mutation-tested on its own.


def d_logistic(r: Tensor, f: Tensor) -> Tensor:
    """-log sigmoid(r) - log(1 - sigmoid(f)): the D loss of the original GAN."""
    return F.softplus(-r).mean() + F.softplus(f).mean()


def g_nonsaturating(r: Optional[Tensor], f: Tensor) -> Tensor:
    """-log sigmoid(f)."""
    return F.softplus(-f).mean()


def g_minimax(r: Optional[Tensor], f: Tensor) -> Tensor:
    """log(1 - sigmoid(f)), the saturating G loss."""
    return -F.softplus(f).mean()


def d_hinge(r: Tensor, f: Tensor) -> Tensor:
    """max(0, 1 - r) + max(0, 1 + f): margin 1."""
    return F.relu(1.0 - r).mean() + F.relu(1.0 + f).mean()


def g_critic(r: Optional[Tensor], f: Tensor) -> Tensor:
    """-f: G raises the critic's score of its samples (hinge and WGAN)."""
    return -f.mean()


def d_wasserstein(r: Tensor, f: Tensor) -> Tensor:
    return f.mean() - r.mean()


def d_least_squares(r: Tensor, f: Tensor) -> Tensor:
    """Targets b = 1 for real, a = 0 for fake, halved as in Mao et al."""
    return 0.5 * ((r - 1.0) ** 2).mean() + 0.5 * (f**2).mean()


def g_least_squares(r: Optional[Tensor], f: Tensor) -> Tensor:
    """Target c = 1 for fake."""
    return 0.5 * ((f - 1.0) ** 2).mean()


def d_relativistic_pairing(r: Tensor, f: Tensor) -> Tensor:
    return F.softplus(-(r - f)).mean()


def g_relativistic_pairing(r: Tensor, f: Tensor) -> Tensor:
    return F.softplus(-(f - r)).mean()


def _relative_to_average(a: Tensor, b: Tensor) -> Tensor:
    """a - E[b]: how much more realistic each ``a`` looks than the average ``b``."""
    return a - b.mean()


def d_relativistic_average(r: Tensor, f: Tensor) -> Tensor:
    return (F.softplus(-_relative_to_average(r, f)).mean() + F.softplus(_relative_to_average(f, r)).mean()) / 2


def g_relativistic_average(r: Tensor, f: Tensor) -> Tensor:
    return (F.softplus(_relative_to_average(r, f)).mean() + F.softplus(-_relative_to_average(f, r)).mean()) / 2


_register("ns", "Goodfellow et al. 2014, Generative Adversarial Nets (non-saturating G loss)", d_logistic, g_nonsaturating)
_register("minimax", "Goodfellow et al. 2014, Generative Adversarial Nets (original saturating minimax)", d_logistic, g_minimax)
_register("hinge", "Lim & Ye 2017, Geometric GAN; Miyato et al. 2018 (hinge loss)", d_hinge, g_critic)
_register("wgan", "Arjovsky et al. 2017, Wasserstein GAN", d_wasserstein, g_critic, needs_lipschitz=True)
_register("lsgan", "Mao et al. 2017, Least Squares Generative Adversarial Networks", d_least_squares, g_least_squares)
_register(
    "rpgan",
    "Jolicoeur-Martineau 2019, The relativistic discriminator (relativistic pairing)",
    d_relativistic_pairing,
    g_relativistic_pairing,
    g_uses_real=True,
)
_register(
    "ragan",
    "Jolicoeur-Martineau 2018, The relativistic discriminator (relativistic average standard GAN, RaSGAN)",
    d_relativistic_average,
    g_relativistic_average,
    g_uses_real=True,
)
