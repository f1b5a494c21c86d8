"""From a network to the ``denoise(x, t) -> (x0_hat, eps_hat)`` function the samplers call.

Classifier-free guidance (Ho & Salimans 2021): the network is run with the labels and with the
null label in one batch, and the outputs mix as ``uncond + scale * (cond - uncond)``; scale 1 is
the plain conditional model, 0 the unconditional one. Optionally the predicted clean image is
clipped to the data range [-1, 1] and the noise estimate recomputed from it (Ho et al. 2020).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from gensweep.trainables.diffusion.parameterization import Parameterization
from gensweep.trainables.diffusion.samplers import Denoiser
from gensweep.trainables.diffusion.schedules import NoisePath

Tensor = torch.Tensor


def make_denoiser(
    net: nn.Module,
    path: NoisePath,
    pred: Parameterization,
    *,
    labels: Optional[Tensor] = None,
    null_label: int = 0,
    guidance: float = 1.0,
    clip: bool = False,
) -> Denoiser:
    guided = labels is not None and guidance != 1.0

    def denoise(x: Tensor, t: float) -> tuple[Tensor, Tensor]:
        n = x.shape[0]
        lab = labels
        tt = torch.full((n,), float(t), device=x.device, dtype=x.dtype)
        if guided:
            null = torch.full_like(lab, null_label)
            out_c, out_u = net(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([lab, null])).chunk(2)
            out = out_u + guidance * (out_c - out_u)
        else:
            out = net(x, tt, lab)
        c = path.coef(float(t), x)
        x0, eps = pred.to_x0_eps(out, x, c)
        if clip:
            x0 = x0.clamp(-1.0, 1.0)
            eps = (x - c.alpha * x0) / c.sigma
        return x0, eps

    return denoise
