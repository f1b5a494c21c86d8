"""Noise schedules ("paths"): how a clean image x0 and Gaussian noise eps mix at time t.

Every entry describes ``x_t = alpha(t) * x0 + sigma(t) * eps`` for continuous ``t`` in
[0, 1] (t = 0 clean, t = 1 noise). Diffusion schedules are variance preserving
(``alpha^2 + sigma^2 = 1``, ``alpha_bar = alpha^2``) and also give the discrete betas of the
paper that defines them; the flow path mixes linearly. Training draws ``t`` uniformly from
``[t_min, 1]``; the samplers walk a grid of times from 1 down to 0.

For the ODE samplers each path names the coordinates in which its probability-flow ODE is
integrated: diffusion schedules use the scaled state ``y = x / alpha`` against the noise level
``sigma / alpha`` (Karras et al. 2022), where ``dy/d(sigma/alpha) = E[eps | x_t]``; the flow
path uses ``x`` against ``t`` itself, where ``dx/dt = E[eps - x0 | x_t]``. In both cases one
Euler step equals one deterministic DDIM step, so the two families share one update rule.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

import torch

from gensweep.trainables.registry import Registry

Tensor = torch.Tensor
TimeLike = Union[float, Tensor]


@dataclass(frozen=True)
class Coef:
    """Path coefficients at some times, shaped to broadcast against the data."""

    alpha: Tensor
    sigma: Tensor
    d_alpha: Tensor
    d_sigma: Tensor


def _as_t(t: TimeLike) -> Tensor:
    return torch.as_tensor(t, dtype=torch.float64)


class NoisePath:
    """Base class: subclasses give ``alpha``/``sigma`` and their time derivatives."""

    name = ""
    default_prediction = "eps"
    t_min = 1e-3  # smallest time trained on and visited by the samplers (besides the final t = 0)

    # --- the path -------------------------------------------------------------------------
    def alpha(self, t: TimeLike) -> Tensor:
        raise NotImplementedError

    def sigma(self, t: TimeLike) -> Tensor:
        raise NotImplementedError

    def d_alpha(self, t: TimeLike) -> Tensor:
        raise NotImplementedError

    def d_sigma(self, t: TimeLike) -> Tensor:
        raise NotImplementedError

    def alpha_bar(self, t: TimeLike) -> Tensor:
        """Signal power ``alpha(t)^2`` (the cumulative product of (1 - beta) for diffusion schedules)."""
        return self.alpha(t) ** 2

    def snr(self, t: TimeLike) -> Tensor:
        return self.alpha(t) ** 2 / self.sigma(t) ** 2

    def log_snr(self, t: TimeLike) -> Tensor:
        return 2 * (torch.log(self.alpha(t)) - torch.log(self.sigma(t)))

    def coef(self, t: TimeLike, like: Tensor) -> Coef:
        """Coefficients at ``t`` (a float or a per-sample [N] tensor) in ``like``'s dtype/device, ready to broadcast."""
        t64 = _as_t(t)
        shape = (-1,) + (1,) * (like.ndim - 1) if t64.ndim else ()
        conv = lambda v: v.to(like.device, like.dtype).reshape(shape)  # noqa: E731
        return Coef(conv(self.alpha(t64)), conv(self.sigma(t64)), conv(self.d_alpha(t64)), conv(self.d_sigma(t64)))

    def mix(self, x0: Tensor, eps: Tensor, t: Tensor) -> Tensor:
        c = self.coef(t, x0)
        return c.alpha * x0 + c.sigma * eps

    # sigma/alpha noise level (Karras et al. 2022's sigma) and its inverse (bisection: it rises with t)
    def noise_level(self, t: TimeLike) -> Tensor:
        return self.sigma(t) / self.alpha(t)

    def time_of_noise_level(self, level: Tensor) -> Tensor:
        target = _as_t(level)
        lo, hi = torch.zeros_like(target), torch.ones_like(target)
        for _ in range(60):
            mid = (lo + hi) / 2
            below = self.noise_level(mid) < target
            lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
        return (lo + hi) / 2

    # --- ODE coordinates --------------------------------------------------------------------
    def ode_time(self, t: float) -> float:
        raise NotImplementedError

    def ode_state(self, x: Tensor, t: float) -> Tensor:
        raise NotImplementedError

    def ode_unstate(self, y: Tensor, t: float) -> Tensor:
        raise NotImplementedError

    def ode_drift(self, x0_hat: Tensor, eps_hat: Tensor, t: float) -> Tensor:
        raise NotImplementedError

    def uniform_grid(self, steps: int) -> list[float]:
        """``steps + 1`` times evenly spaced from 1 down to 0."""
        return [1.0 - i / steps for i in range(steps)] + [0.0]

    def ode_grid(self, steps: int) -> list[float]:
        """The time grid (from 1 to 0, ``steps + 1`` points) the ODE samplers use on this path."""
        return self.uniform_grid(steps)


class VariancePreserving(NoisePath):
    """``alpha = sqrt(alpha_bar)``, ``sigma = sqrt(1 - alpha_bar)``; subclasses give alpha_bar and its derivative."""

    rho = 7.0  # Karras et al. 2022 noise-level spacing exponent for the ODE grid

    def _ab(self, t: Tensor) -> Tensor:
        raise NotImplementedError

    def _d_ab(self, t: Tensor) -> Tensor:
        raise NotImplementedError

    def betas(self, num_steps: int = 1000) -> Tensor:
        raise NotImplementedError

    def alpha_bar(self, t: TimeLike) -> Tensor:
        return self._ab(_as_t(t))

    def alpha(self, t: TimeLike) -> Tensor:
        return self._ab(_as_t(t)).sqrt()

    def sigma(self, t: TimeLike) -> Tensor:
        return (1.0 - self._ab(_as_t(t))).sqrt()

    def d_alpha(self, t: TimeLike) -> Tensor:
        t = _as_t(t)
        return self._d_ab(t) / (2 * self._ab(t).sqrt())

    def d_sigma(self, t: TimeLike) -> Tensor:
        t = _as_t(t)
        return -self._d_ab(t) / (2 * (1.0 - self._ab(t)).sqrt())

    def snr(self, t: TimeLike) -> Tensor:
        ab = self._ab(_as_t(t))
        return ab / (1.0 - ab)

    def noise_level(self, t: TimeLike) -> Tensor:
        return self.snr(t).rsqrt()

    def ode_time(self, t: float) -> float:
        return 0.0 if t <= 0 else float(self.noise_level(t))

    def ode_state(self, x: Tensor, t: float) -> Tensor:
        return x / float(self.alpha(t))

    def ode_unstate(self, y: Tensor, t: float) -> Tensor:
        return y * float(self.alpha(t))

    def ode_drift(self, x0_hat: Tensor, eps_hat: Tensor, t: float) -> Tensor:
        return eps_hat

    def ode_grid(self, steps: int) -> list[float]:
        """Noise levels spaced as in Karras et al. 2022 (rho = 7) from level(1) to level(t_min), then 0."""
        hi = float(self.noise_level(1.0)) ** (1 / self.rho)
        lo = float(self.noise_level(self.t_min)) ** (1 / self.rho)
        if steps == 1:
            return [1.0, 0.0]
        levels = torch.tensor([(hi + i / (steps - 1) * (lo - hi)) ** self.rho for i in range(steps)], dtype=torch.float64)
        times = self.time_of_noise_level(levels).tolist()
        times[0] = 1.0
        return times + [0.0]


PATHS: Registry[NoisePath] = Registry("noise schedule")


@PATHS.register("linear", ref="Ho et al. 2020, Denoising Diffusion Probabilistic Models (linear betas 1e-4..0.02)")
class LinearSchedule(VariancePreserving):
    """Betas rising linearly from 1e-4 to 0.02 over 1000 steps; in continuous time
    ``alpha_bar(t) = exp(-int_0^t beta(s) ds)`` with ``beta(s) = 1000 * (b0 + s (b1 - b0))``."""

    name = "linear"

    def __init__(self, beta_start: float = 1e-4, beta_end: float = 0.02, num_steps: int = 1000):
        self.b0, self.b1, self.T = beta_start, beta_end, num_steps

    def _integral(self, t: Tensor) -> Tensor:
        return self.T * (self.b0 * t + 0.5 * (self.b1 - self.b0) * t * t)

    def _ab(self, t: Tensor) -> Tensor:
        return torch.exp(-self._integral(t))

    def _d_ab(self, t: Tensor) -> Tensor:
        return -self._ab(t) * self.T * (self.b0 + (self.b1 - self.b0) * t)

    def betas(self, num_steps: int = 1000) -> Tensor:
        scale = self.T / num_steps  # keeps alpha_bar(1) the same for other step counts (Nichol & Dhariwal 2021)
        return torch.linspace(self.b0 * scale, self.b1 * scale, num_steps, dtype=torch.float64)


@PATHS.register("cosine", ref="Nichol & Dhariwal 2021, Improved Denoising Diffusion Probabilistic Models (cosine schedule)")
class CosineSchedule(VariancePreserving):
    """``alpha_bar(t) = cos^2(pi/2 * (t + s) / (1 + s)) / cos^2(pi/2 * s / (1 + s))`` with s = 0.008.

    The paper clips betas at 0.999 so the last step keeps a little signal; in continuous time the
    same role is played by a floor: ``alpha_bar`` runs from 1 to ``floor`` (log-SNR about -11.5)
    instead of reaching 0, which keeps every quantity finite and strictly monotone.
    """

    name = "cosine"

    def __init__(self, offset: float = 0.008, floor: float = 1e-5):
        self.s, self.floor = offset, floor

    def _f(self, t: Tensor) -> Tensor:
        return torch.cos((t + self.s) / (1 + self.s) * math.pi / 2) ** 2

    def _ab(self, t: Tensor) -> Tensor:
        ratio = self._f(t) / self._f(torch.zeros_like(t))
        return self.floor + (1 - self.floor) * ratio

    def _d_ab(self, t: Tensor) -> Tensor:
        u = (t + self.s) / (1 + self.s) * math.pi / 2
        d_f = -torch.sin(2 * u) * math.pi / (2 * (1 + self.s))
        return (1 - self.floor) * d_f / self._f(torch.zeros_like(t))

    def betas(self, num_steps: int = 1000) -> Tensor:
        t = torch.arange(num_steps + 1, dtype=torch.float64) / num_steps
        ab = self._f(t) / self._f(torch.zeros(()))
        return (1 - ab[1:] / ab[:-1]).clamp(max=0.999)


@PATHS.register("sigmoid", ref="Jabri et al. 2022, Scalable Adaptive Computation for Iterative Generation (sigmoid schedule)")
class SigmoidSchedule(VariancePreserving):
    """``alpha_bar(t) = (v_end - sig((t (end - start) + start) / tau)) / (v_end - v_start)`` with
    ``v = sig(start / tau), sig(end / tau)``; start -3, end 3, tau 1 as denoising-diffusion-pytorch's
    ``sigmoid_beta_schedule``. It reaches 0 at t = 1, so, as for the cosine schedule, ``alpha_bar``
    runs down to ``floor`` instead; the discrete betas are the reference's (clipped at 0.999)."""

    name = "sigmoid"

    def __init__(self, start: float = -3.0, end: float = 3.0, tau: float = 1.0, floor: float = 1e-5):
        self.start, self.end, self.tau, self.floor = start, end, tau, floor
        self.v_start, self.v_end = (torch.sigmoid(torch.tensor(v / tau, dtype=torch.float64)) for v in (start, end))

    def _u(self, t: Tensor) -> Tensor:
        return (t * (self.end - self.start) + self.start) / self.tau

    def _gamma(self, t: Tensor) -> Tensor:
        return (self.v_end - torch.sigmoid(self._u(t))) / (self.v_end - self.v_start)

    def _ab(self, t: Tensor) -> Tensor:
        return self.floor + (1 - self.floor) * self._gamma(t)

    def _d_ab(self, t: Tensor) -> Tensor:
        sig = torch.sigmoid(self._u(t))
        return -(1 - self.floor) * sig * (1 - sig) * (self.end - self.start) / self.tau / (self.v_end - self.v_start)

    def betas(self, num_steps: int = 1000) -> Tensor:
        ab = self._gamma(torch.arange(num_steps + 1, dtype=torch.float64) / num_steps)
        ab = ab / ab[0]
        return (1 - ab[1:] / ab[:-1]).clamp(0.0, 0.999)


@PATHS.register("flow", ref="Lipman et al. 2023, Flow Matching for Generative Modeling; Liu et al. 2023, Rectified Flow")
class FlowPath(NoisePath):
    """The straight path ``x_t = (1 - t) x0 + t eps``; its ODE is integrated in ``t`` with uniform steps."""

    name = "flow"
    default_prediction = "velocity"

    def alpha(self, t: TimeLike) -> Tensor:
        return 1.0 - _as_t(t)

    def sigma(self, t: TimeLike) -> Tensor:
        return _as_t(t).clone()

    def d_alpha(self, t: TimeLike) -> Tensor:
        return torch.full_like(_as_t(t), -1.0)

    def d_sigma(self, t: TimeLike) -> Tensor:
        return torch.ones_like(_as_t(t))

    def ode_time(self, t: float) -> float:
        return float(t)

    def ode_state(self, x: Tensor, t: float) -> Tensor:
        return x

    def ode_unstate(self, y: Tensor, t: float) -> Tensor:
        return y

    def ode_drift(self, x0_hat: Tensor, eps_hat: Tensor, t: float) -> Tensor:
        return eps_hat - x0_hat


def get_path(name: str) -> NoisePath:
    """A fresh instance of the schedule registered as ``name``."""
    return PATHS.get(name)()
