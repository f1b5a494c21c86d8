"""Path-length regularization of G (Karras et al. 2020, StyleGAN2), as stylegan2-ada-pytorch runs it."""
from __future__ import annotations

import math

import torch

from gensweep.trainables.gan.regularizers.base import REGULARIZERS, Regularizer
from gensweep.trainables.gan.terms import StepView, Term

Tensor = torch.Tensor


@REGULARIZERS.register("path-length", ref="Karras et al. 2020, Analyzing and Improving the Image Quality of StyleGAN (path length regularization)")
class PathLength(Regularizer):
    """``E (||J_w^T y|| - a)^2`` in G_reg: J_w the Jacobian of the synthesis network at w = mapping(z),
    y ~ N(0, I) / sqrt(H W), ||.|| the root mean over the ws of their squared norms, and ``a`` the
    moving average of the lengths (decay 0.01, in ``state``; the penalty sees the updated average,
    with its gradient). On half the batch's latents; weight 2 (the paper's). It differentiates through
    ``G.mapping`` / ``G.synthesis``, so it needs a generator with a mapping network (rule)."""

    default_weight = 2.0
    needs_mapping = True
    decay = 0.01
    batch_shrink = 2

    def __init__(self, weight=None):
        super().__init__(weight)
        self.state = {"pl_mean": 0.0}

    def terms(self) -> list[Term]:
        def path_length(v: StepView) -> Tensor:
            n = max(v.z.shape[0] // self.batch_shrink, 1)
            ws = v.G.mapping(v.z[:n], None if v.labels is None else v.labels[:n])
            img = v.G.synthesis(ws)
            y = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
            (grads,) = torch.autograd.grad((img * y).sum(), ws, create_graph=True)
            lengths = grads.square().sum(2).mean(1).sqrt()
            mean = self.state["pl_mean"] + self.decay * (lengths.mean() - self.state["pl_mean"])
            self.state["pl_mean"] = float(mean.detach())
            return (lengths - mean).square().mean()

        return [Term("path_length", "G_reg", path_length, self.weight)]
