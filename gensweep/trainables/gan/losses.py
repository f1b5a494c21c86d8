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


# Named functions, not lambdas: each loss can be read, referenced and mutation-tested on its own.
# The registrations below run at import time, outside any function, so mutmut (which mutates
# function bodies and switches a mutant on per call) leaves them alone; the reference suite
# checks every registered pair and its flags through the values it computes.


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


_GOODFELLOW = "Goodfellow et al. 2014, Generative Adversarial Nets"
_RELATIVISTIC = "Jolicoeur-Martineau 2019, The relativistic discriminator"

LOSSES.register("ns", ref=f"{_GOODFELLOW} (non-saturating G loss)")(AdversarialLoss(d_logistic, g_nonsaturating))
LOSSES.register("minimax", ref=f"{_GOODFELLOW} (original saturating minimax)")(AdversarialLoss(d_logistic, g_minimax))
LOSSES.register("hinge", ref="Lim & Ye 2017, Geometric GAN; Miyato et al. 2018 (hinge loss)")(AdversarialLoss(d_hinge, g_critic))
LOSSES.register("wgan", ref="Arjovsky et al. 2017, Wasserstein GAN")(
    AdversarialLoss(d_wasserstein, g_critic, needs_lipschitz=True))
LOSSES.register("lsgan", ref="Mao et al. 2017, Least Squares Generative Adversarial Networks")(
    AdversarialLoss(d_least_squares, g_least_squares))
LOSSES.register("rpgan", ref=f"{_RELATIVISTIC} (relativistic pairing)")(
    AdversarialLoss(d_relativistic_pairing, g_relativistic_pairing, g_uses_real=True))
LOSSES.register("ragan", ref="Jolicoeur-Martineau 2018, The relativistic discriminator (relativistic average standard GAN, RaSGAN)")(
    AdversarialLoss(d_relativistic_average, g_relativistic_average, g_uses_real=True))
