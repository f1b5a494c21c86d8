"""What the network predicts, and how its output converts to the clean image and the noise.

With ``x = alpha x0 + sigma eps`` (see :mod:`.schedules`) every parameterization is an affine,
invertible map between the network output and the pair ``(x0, eps)`` given ``x``:

* ``eps``: the noise; ``x0 = (x - sigma eps) / alpha``.
* ``x0``: the clean image; ``eps = (x - alpha x0) / sigma``.
* ``v``: ``v = alpha eps - sigma x0``; ``x0 = (alpha x - sigma v) / (alpha^2 + sigma^2)``,
  ``eps = (sigma x + alpha v) / (alpha^2 + sigma^2)``.
* ``velocity``: the time derivative of the path, ``u = alpha' x0 + sigma' eps`` (for the flow
  path ``u = eps - x0``); solving the 2x2 system with determinant ``alpha sigma' - sigma alpha'``.

``x0_error_scale`` is the factor ``k(t)`` with ``|x0_hat - x0|^2 = k(t) |out - target|^2``; loss
weightings (see :mod:`.objectives`) use it to express a weight on the x0 error in output space.
Because each map is affine in the output for fixed ``x``, classifier-free guidance can mix
outputs in whichever space the network predicts and get the same eps and x0.
"""
from __future__ import annotations

from typing import Protocol

import torch

from gensweep.trainables.diffusion.schedules import Coef
from gensweep.trainables.registry import Registry

Tensor = torch.Tensor


class Parameterization(Protocol):
    def target(self, x0: Tensor, eps: Tensor, c: Coef) -> Tensor: ...

    def to_x0_eps(self, out: Tensor, x: Tensor, c: Coef) -> tuple[Tensor, Tensor]: ...

    def x0_error_scale(self, c: Coef) -> Tensor: ...


PREDICTIONS: Registry[Parameterization] = Registry("parameterization")


class _Eps:
    def target(self, x0, eps, c):
        return eps

    def to_x0_eps(self, out, x, c):
        return (x - c.sigma * out) / c.alpha, out

    def x0_error_scale(self, c):
        return (c.sigma / c.alpha) ** 2


class _X0:
    def target(self, x0, eps, c):
        return x0

    def to_x0_eps(self, out, x, c):
        return out, (x - c.alpha * out) / c.sigma

    def x0_error_scale(self, c):
        return torch.ones_like(c.alpha)


class _V:
    def target(self, x0, eps, c):
        return c.alpha * eps - c.sigma * x0

    def to_x0_eps(self, out, x, c):
        norm = c.alpha**2 + c.sigma**2
        return (c.alpha * x - c.sigma * out) / norm, (c.sigma * x + c.alpha * out) / norm

    def x0_error_scale(self, c):
        return (c.sigma / (c.alpha**2 + c.sigma**2)) ** 2


class _Velocity:
    def target(self, x0, eps, c):
        return c.d_alpha * x0 + c.d_sigma * eps

    def to_x0_eps(self, out, x, c):
        det = c.alpha * c.d_sigma - c.sigma * c.d_alpha
        return (c.d_sigma * x - c.sigma * out) / det, (c.alpha * out - c.d_alpha * x) / det

    def x0_error_scale(self, c):
        return (c.sigma / (c.alpha * c.d_sigma - c.sigma * c.d_alpha)) ** 2


PREDICTIONS.register("eps", ref="Ho et al. 2020, Denoising Diffusion Probabilistic Models (noise prediction)")(_Eps())
PREDICTIONS.register("x0", ref="Ho et al. 2020, Denoising Diffusion Probabilistic Models (mean/x0 prediction ablation)")(_X0())
PREDICTIONS.register("v", ref="Salimans & Ho 2022, Progressive Distillation for Fast Sampling of Diffusion Models")(_V())
PREDICTIONS.register("velocity", ref="Lipman et al. 2023, Flow Matching for Generative Modeling (velocity regression)")(_Velocity())

# Parameterizations that divide by alpha: singular where alpha(t) = 0 (the flow path at t = 1).
NEEDS_POSITIVE_ALPHA = frozenset({"eps"})


def convert(out: Tensor, x: Tensor, c: Coef, src: str, dst: str) -> Tensor:
    """Re-express a prediction of kind ``src`` as kind ``dst`` (same ``x`` and coefficients)."""
    x0, eps = PREDICTIONS.get(src).to_x0_eps(out, x, c)
    return PREDICTIONS.get(dst).target(x0, eps, c)
