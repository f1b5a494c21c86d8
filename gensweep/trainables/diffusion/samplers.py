"""Samplers: turn a denoiser into samples by walking a time grid from t = 1 (noise) to t = 0.

One signature for all: ``sampler(denoise, path, noise, steps, *, generator=None, eta=0.0, churn=None)``.

* ``denoise(x, t) -> (x0_hat, eps_hat)`` at a float time ``t`` in (0, 1] (see :mod:`.denoiser`);
* ``noise`` is a standard normal tensor of the output shape (the start is ``sigma(1) * noise``);
* ``steps`` is the number of grid intervals (Heun evaluates the denoiser ``2 * steps - 1`` times);
* ``generator`` (a CPU ``torch.Generator``) draws the fresh noise of stochastic steps, so a
  sample is a function of the seed alone;
* ``eta`` is read by DDIM only; ``churn`` (a :class:`Churn`, EDM's stochastic sampling) by the
  ODE solvers (Heun, Euler) only.

All of them work on any path from :mod:`.schedules` (diffusion schedules and the flow path).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Protocol

import torch

from gensweep.trainables.diffusion.schedules import NoisePath
from gensweep.trainables.registry import Registry

Tensor = torch.Tensor
Denoiser = Callable[[Tensor, float], tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class Churn:
    """EDM's stochastic sampling (Karras et al. 2022, Alg. 2): before the step from noise level s_i
    (the path's sigma / alpha), with s_i in [s_tmin, s_tmax], raise it to s_i (1 + gamma),
    gamma = min(s_churn / steps, sqrt(2) - 1), by adding fresh noise of std s_noise per unit level.
    ``s_churn = 0`` (the default) is the deterministic sampler, drawing no noise at all."""

    s_churn: float = 0.0
    s_tmin: float = 0.0
    s_tmax: Optional[float] = None  # None: no upper bound
    s_noise: float = 1.0

    def gamma(self, level: float, steps: int) -> float:
        inside = self.s_tmin <= level and (self.s_tmax is None or level <= self.s_tmax)
        return min(self.s_churn / steps, math.sqrt(2) - 1) if self.s_churn > 0 and inside else 0.0


class Sampler(Protocol):
    def __call__(
        self, denoise: Denoiser, path: NoisePath, noise: Tensor, steps: int, *,
        generator: Optional[torch.Generator] = None, eta: float = 0.0, churn: Optional[Churn] = None,
    ) -> Tensor: ...


SAMPLERS: Registry[Sampler] = Registry("sampler")


def _coefs(path: NoisePath, t: float) -> tuple[float, float]:
    return float(path.alpha(t)), float(path.sigma(t))


def _fresh_noise(like: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    z = torch.randn(like.shape, generator=generator, dtype=like.dtype)
    return z.to(like.device)


def _posterior_var(path: NoisePath, t: float, s: float) -> tuple[float, float, float]:
    """For s < t: (alpha_{t|s}, sigma^2_{t|s}, var of q(x_s | x_t, x0)) of the Gaussian path."""
    a_t, s_t = _coefs(path, t)
    a_s, s_s = _coefs(path, s)
    a_ts = a_t / a_s
    var_ts = max(s_t**2 - a_ts**2 * s_s**2, 0.0)
    return a_ts, var_ts, var_ts * s_s**2 / s_t**2


@SAMPLERS.register("ddpm", ref="Ho et al. 2020, Denoising Diffusion Probabilistic Models (ancestral sampling)")
def ddpm(denoise, path, noise, steps, *, generator=None, eta=0.0, churn=None):
    """Ancestral sampling from the posterior q(x_s | x_t, x0 = x0_hat) on a uniform grid of ``steps``
    intervals (respaced as in Nichol & Dhariwal 2021), with the posterior variance beta-tilde."""
    grid = path.uniform_grid(steps)
    x = float(path.sigma(1.0)) * noise
    for t, s in zip(grid[:-1], grid[1:]):
        x0_hat, _ = denoise(x, t)
        a_s, s_s = _coefs(path, s)
        _, s_t = _coefs(path, t)
        a_ts, var_ts, var = _posterior_var(path, t, s)
        x = (a_ts * s_s**2 / s_t**2) * x + (a_s * var_ts / s_t**2) * x0_hat
        if s > 0:
            x = x + math.sqrt(var) * _fresh_noise(x, generator)
    return x


@SAMPLERS.register("ddim", ref="Song et al. 2021, Denoising Diffusion Implicit Models")
def ddim(denoise, path, noise, steps, *, generator=None, eta=0.0, churn=None):
    """``x_s = alpha_s x0_hat + sqrt(sigma_s^2 - c^2) eps_hat + c z`` with ``c = eta * std of q(x_s | x_t, x0)``:
    deterministic for eta = 0, the DDPM posterior for eta = 1. Uniform grid of ``steps`` intervals."""
    grid = path.uniform_grid(steps)
    x = float(path.sigma(1.0)) * noise
    for t, s in zip(grid[:-1], grid[1:]):
        x0_hat, eps_hat = denoise(x, t)
        a_s, s_s = _coefs(path, s)
        c = eta * math.sqrt(_posterior_var(path, t, s)[2]) if eta > 0 else 0.0
        x = a_s * x0_hat + math.sqrt(max(s_s**2 - c**2, 0.0)) * eps_hat
        if c > 0:
            x = x + c * _fresh_noise(x, generator)
    return x


def _churn(path: NoisePath, x: Tensor, t: float, gamma: float, s_noise: float,
           generator: Optional[torch.Generator]) -> tuple[Tensor, float]:
    """Noise ``x`` from time ``t`` up to the time whose noise level is (1 + gamma) times t's, capped at
    t = 1 (the top level the network is trained for): ``x_hat = a x + sqrt(sigma_hat^2 - a^2 sigma^2) z``
    with ``a = alpha_hat / alpha``; in EDM's coordinates this is ``y + sqrt(s_hat^2 - s^2) z``."""
    level, top = float(path.noise_level(t)), float(path.noise_level(1.0))
    if not math.isfinite(level):  # pure noise already (the flow path at t = 1)
        return x, t
    t_hat = float(path.time_of_noise_level(torch.tensor(min(level * (1 + gamma), top), dtype=torch.float64)))
    if t_hat <= t:
        return x, t
    (a_t, s_t), (a_h, s_h) = _coefs(path, t), _coefs(path, t_hat)
    ratio = a_h / a_t
    std = math.sqrt(max(s_h**2 - ratio**2 * s_t**2, 0.0)) * s_noise
    return ratio * x + std * _fresh_noise(x, generator), t_hat


def _ode_solve(denoise, path: NoisePath, noise: Tensor, steps: int, second_order: bool,
               churn: Optional[Churn], generator: Optional[torch.Generator]) -> Tensor:
    grid = path.ode_grid(steps)
    x = float(path.sigma(1.0)) * noise
    for t, s in zip(grid[:-1], grid[1:]):
        gamma = churn.gamma(float(path.noise_level(t)), steps) if churn is not None else 0.0
        if gamma > 0:
            x, t = _churn(path, x, t, gamma, churn.s_noise, generator)
        tau_t, tau_s = path.ode_time(t), path.ode_time(s)
        y = path.ode_state(x, t)
        d = path.ode_drift(*denoise(x, t), t)
        y_next = y + (tau_s - tau_t) * d
        if second_order and s > 0:
            x_e = path.ode_unstate(y_next, s)
            d2 = path.ode_drift(*denoise(x_e, s), s)
            y_next = y + (tau_s - tau_t) * 0.5 * (d + d2)
        x = path.ode_unstate(y_next, s)
    return x


@SAMPLERS.register("euler", ref="Karras et al. 2022, Elucidating the Design Space of Diffusion-Based Generative Models (Euler)")
def euler(denoise, path, noise, steps, *, generator=None, eta=0.0, churn=None):
    """First-order probability-flow ODE solver in the path's ODE coordinates (see :mod:`.schedules`),
    with EDM's churn when ``churn`` asks for it (as k-diffusion's ``sample_euler``)."""
    return _ode_solve(denoise, path, noise, steps, False, churn, generator)


@SAMPLERS.register("heun", ref="Karras et al. 2022, Elucidating the Design Space of Diffusion-Based Generative Models (Alg. 1; Alg. 2 with churn)")
def heun(denoise, path, noise, steps, *, generator=None, eta=0.0, churn=None):
    """Heun's second-order ODE solver; the last step (to t = 0) is an Euler step. With ``churn``
    (s_churn > 0) it is EDM's stochastic sampler (Alg. 2)."""
    return _ode_solve(denoise, path, noise, steps, True, churn, generator)


def parse_setting(text: str) -> tuple[str, int]:
    """``"ddim:50"`` -> ``("ddim", 50)``; validates the sampler name and the step count."""
    name, sep, steps = str(text).partition(":")
    name = name.strip()
    SAMPLERS.entry(name)
    if not sep:
        raise ValueError(f"sampler setting {text!r} must look like 'NAME:STEPS', e.g. 'ddim:50'")
    try:
        n = int(steps)
    except ValueError:
        raise ValueError(f"sampler setting {text!r}: steps {steps!r} is not an integer") from None
    if n < 1:
        raise ValueError(f"sampler setting {text!r}: steps must be >= 1")
    return name, n


def nfe(name: str, steps: int) -> int:
    """Denoiser evaluations a sampler spends for ``steps`` intervals."""
    return 2 * steps - 1 if name == "heun" else steps
