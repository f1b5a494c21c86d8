"""Training objective: weighted regression of the network output onto its parameterization's target.

A weighting gives ``w(t)`` per sample; the loss is ``mean_n w(t_n) * mean(|out_n - target_n|^2)``.

* ``uniform``: w = 1 (the "simple" loss of Ho et al. 2020 for eps; plain flow matching for velocity).
* ``min-snr``: min-SNR-gamma (Hang et al. 2023): the error of the implied x0 is weighted by
  ``min(SNR(t), gamma)``; expressed in the output space of any parameterization this is
  ``min(SNR, gamma) * k(t)`` with ``k`` from :meth:`x0_error_scale` (for eps ``min(SNR, gamma)/SNR``,
  for v ``min(SNR, gamma)/(SNR + 1)``, as in the paper).
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from gensweep.trainables.diffusion.parameterization import Parameterization
from gensweep.trainables.diffusion.schedules import Coef, NoisePath
from gensweep.trainables.registry import Registry

Tensor = torch.Tensor
Weighting = Callable[[Coef, Parameterization, float], Tensor]

WEIGHTINGS: Registry[Weighting] = Registry("loss weighting")


@WEIGHTINGS.register("uniform", ref="Ho et al. 2020, Denoising Diffusion Probabilistic Models (simple loss)")
def uniform_weight(c: Coef, pred: Parameterization, gamma: float) -> Tensor:
    return torch.ones_like(c.alpha)


@WEIGHTINGS.register("min-snr", ref="Hang et al. 2023, Efficient Diffusion Training via Min-SNR Weighting Strategy")
def min_snr_weight(c: Coef, pred: Parameterization, gamma: float) -> Tensor:
    snr = (c.alpha / c.sigma) ** 2
    return snr.clamp(max=gamma) * pred.x0_error_scale(c)


def diffusion_loss(
    net: Callable[..., Tensor],
    x0: Tensor,
    path: NoisePath,
    pred: Parameterization,
    weighting: Weighting,
    *,
    gamma: float = 5.0,
    labels: Optional[Tensor] = None,
    t: Optional[Tensor] = None,
    eps: Optional[Tensor] = None,
) -> Tensor:
    """One Monte-Carlo estimate of the objective; ``t`` ~ U[t_min, 1] and ``eps`` ~ N(0, I) unless given."""
    n = x0.shape[0]
    if t is None:
        t = path.t_min + (1 - path.t_min) * torch.rand(n, device=x0.device)
    if eps is None:
        eps = torch.randn_like(x0)
    c = path.coef(t, x0)
    x_t = c.alpha * x0 + c.sigma * eps
    out = net(x_t, t.to(x0.dtype), labels)
    err = (out - pred.target(x0, eps, c)).pow(2).flatten(1).mean(1)
    w = weighting(c, pred, gamma).flatten()
    return (w * err).mean()
