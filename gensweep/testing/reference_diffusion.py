"""Reference values of the diffusion components: noise schedules, parameterizations, loss
weightings, one grid of every sampler and the EMA update, recomputed in NumPy from the papers.

Schedules: ``alpha_bar(t)`` from each paper's closed form (Ho et al. 2020's linear betas as a
continuous integral; Nichol & Dhariwal 2021's cosine; Jabri et al. 2022's sigmoid; the flow's
straight line), derivatives by central differences, discrete betas as the papers list them.
Samplers: two grid intervals on the linear schedule with a non-linear denoiser, each update
written out from its paper (DDPM's posterior mean and variance, DDIM's eta-family, Euler and
Heun in Karras et al.'s sigma = sigma_t / alpha_t coordinates with rho = 7 noise levels).
"""
from __future__ import annotations

import copy
import math
from typing import Callable

import numpy as np
import torch
from torch import nn

from gensweep.testing.reference_gan import _np, close
from gensweep.trainables.diffusion.schedules import Coef, get_path

T = np.array([0.0, 0.001, 0.1, 0.37, 0.5, 0.8, 0.999])


def _linear_ab(t):
    return np.exp(-1000 * (1e-4 * t + 0.5 * (0.02 - 1e-4) * t * t))


def _cosine_ab(t, s=0.008, floor=1e-5):
    f = lambda u: np.cos((u + s) / (1 + s) * np.pi / 2) ** 2  # noqa: E731
    return floor + (1 - floor) * f(t) / f(0.0)


def _sigmoid_ab(t, start=-3.0, end=3.0, tau=1.0, floor=1e-5):
    sig = lambda u: 1 / (1 + np.exp(-u))  # noqa: E731
    v_start, v_end = sig(start / tau), sig(end / tau)
    return floor + (1 - floor) * (v_end - sig((t * (end - start) + start) / tau)) / (v_end - v_start)


def _betas_from(ab: np.ndarray) -> np.ndarray:
    return np.clip(1 - ab[1:] / ab[:-1], 0, 0.999)


_GRID = np.arange(1001) / 1000
_DISCRETE = {
    "linear": np.linspace(1e-4, 0.02, 1000),
    "cosine": _betas_from(np.cos((_GRID + 0.008) / 1.008 * np.pi / 2) ** 2),
    "sigmoid": _betas_from(_sigmoid_ab(_GRID, floor=0.0)),
}


def _schedule_case(alpha: Callable, sigma: Callable) -> Callable[[str, object], None]:
    def check(name: str, cls) -> None:
        path = cls()
        close(path.alpha(torch.tensor(T)), alpha(T), rtol=1e-9)
        close(path.sigma(torch.tensor(T)), sigma(T), rtol=1e-9, atol=1e-12)
        inner, h = T[1:-1], 1e-6
        close(path.d_alpha(torch.tensor(inner)), (alpha(inner + h) - alpha(inner - h)) / (2 * h), rtol=1e-5)
        close(path.d_sigma(torch.tensor(inner)), (sigma(inner + h) - sigma(inner - h)) / (2 * h), rtol=1e-5)
        close(path.snr(torch.tensor(inner)), (alpha(inner) / sigma(inner)) ** 2, rtol=1e-9)
        if name in _DISCRETE:
            close(path.betas(1000), _DISCRETE[name], rtol=1e-6, atol=1e-12)

    return check


def _vp(ab: Callable) -> tuple[Callable, Callable]:
    return (lambda t: np.sqrt(ab(t))), (lambda t: np.sqrt(1 - ab(t)))


SCHEDULE_CASES: dict[str, Callable] = {
    "linear": _schedule_case(*_vp(_linear_ab)),
    "cosine": _schedule_case(*_vp(_cosine_ab)),
    "sigmoid": _schedule_case(*_vp(_sigmoid_ab)),
    "flow": _schedule_case(lambda t: 1 - t, lambda t: t.copy()),
}


# ----------------------------------------------------------------------------- parameterizations

def _coef(a: float = 0.8, s: float = 0.6, da: float = -0.3, ds: float = 0.45) -> tuple[Coef, dict[str, float]]:
    """Variance-preserving coefficients by default (a^2 + s^2 = 1)."""
    c = Coef(*(torch.tensor(v, dtype=torch.float64) for v in (a, s, da, ds)))
    return c, {"a": a, "s": s, "da": da, "ds": ds}


# a variance-preserving point and one off it (the flow path at t = 0.3: a^2 + s^2 = 0.58)
_PREDICTION_COEFS = ({}, {"a": 0.7, "s": 0.3, "da": -1.0, "ds": 1.0})


_TARGETS = {
    "eps": lambda x0, eps, k: eps,
    "x0": lambda x0, eps, k: x0,
    "v": lambda x0, eps, k: k["a"] * eps - k["s"] * x0,
    "velocity": lambda x0, eps, k: k["da"] * x0 + k["ds"] * eps,
}


def _prediction_case(name: str, pred) -> None:
    for coefs in _PREDICTION_COEFS:
        _prediction_at(name, pred, *_coef(**coefs))


def _prediction_at(name: str, pred, c: Coef, k: dict[str, float]) -> None:
    rng = np.random.default_rng(5)
    x0, eps, out = rng.normal(size=(3, 7))
    x = k["a"] * x0 + k["s"] * eps
    t64 = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    close(pred.target(t64(x0), t64(eps), c), _TARGETS[name](x0, eps, k), rtol=1e-12)
    # any output: the (x0, eps) pair with x = a x0 + s eps whose target is that output (a 2 x 2 system per entry)
    m = np.array([[k["a"], k["s"]], [_TARGETS[name](1.0, 0.0, k), _TARGETS[name](0.0, 1.0, k)]])
    sol = np.linalg.solve(m, np.stack([x, out]))
    x0_hat, eps_hat = pred.to_x0_eps(t64(out), t64(x), c)
    close(x0_hat, sol[0], rtol=1e-12)
    close(eps_hat, sol[1], rtol=1e-12)
    # |x0_hat - x0|^2 = k(t) |out - target|^2
    scale = float(pred.x0_error_scale(c))
    close(scale, ((sol[0] - x0) ** 2).sum() / ((out - _TARGETS[name](x0, eps, k)) ** 2).sum(), rtol=1e-9)


PREDICTION_CASES: dict[str, Callable] = {name: _prediction_case for name in _TARGETS}


def _weighting_case(expected: Callable[[float, float, str], float]) -> Callable[[str, object], None]:
    def check(name: str, weighting) -> None:
        from gensweep.trainables.diffusion.parameterization import PREDICTIONS

        c, k = _coef()
        snr = (k["a"] / k["s"]) ** 2
        for gamma in (0.5, 5.0):
            for pred in ("eps", "x0", "v"):
                close(weighting(c, PREDICTIONS.get(pred), gamma), expected(snr, gamma, pred), rtol=1e-12)

    return check


_MIN_SNR = {  # Hang et al. 2023: min(SNR, gamma) on the x0 error, in each output space
    "x0": lambda snr, g: min(snr, g),
    "eps": lambda snr, g: min(snr, g) / snr,
    "v": lambda snr, g: min(snr, g) / (snr + 1),
}
WEIGHTING_CASES: dict[str, Callable] = {
    "uniform": _weighting_case(lambda snr, g, pred: 1.0),
    "min-snr": _weighting_case(lambda snr, g, pred: _MIN_SNR[pred](snr, g)),
}


# ----------------------------------------------------------------------------- samplers (linear schedule)

def _lin(t: float) -> tuple[float, float]:
    ab = float(_linear_ab(t))
    return math.sqrt(ab), math.sqrt(1 - ab)


def _denoise_np(x: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
    a, s = _lin(t)
    x0 = 0.5 * np.tanh(x)
    return x0, (x - a * x0) / s


def _denoise(x: torch.Tensor, t: float):
    x0, eps = _denoise_np(_np(x), t)
    return torch.tensor(x0), torch.tensor(eps)


def _time_of_level(level: float) -> float:
    """Linear schedule: sigma/alpha = level  <=>  1000 (b0 t + (b1 - b0) t^2 / 2) = log(1 + level^2)."""
    qa, qb, qc = 500 * (0.02 - 1e-4), 1000 * 1e-4, -math.log1p(level**2)
    return (-qb + math.sqrt(qb * qb - 4 * qa * qc)) / (2 * qa)


def _ddim_np(x, eta, z):
    for t, s in ((1.0, 0.5), (0.5, 0.0)):
        x0, eps = _denoise_np(x, t)
        (a_t, s_t), (a_s, s_s) = _lin(t), _lin(s)
        var = (s_s**2 / s_t**2) * (1 - (a_t / a_s) ** 2)  # Song et al. eq. 16: sigma_t(eta = 1)^2
        c = eta * math.sqrt(var)
        x = a_s * x0 + math.sqrt(s_s**2 - c**2) * eps + (c * z.pop(0) if c > 0 else 0)
    return x


def _ddpm_np(x, eta, z):
    for t, s in ((1.0, 0.5), (0.5, 0.0)):
        x0, _ = _denoise_np(x, t)
        ab_t, ab_s = float(_linear_ab(t)), float(_linear_ab(s))
        beta = 1 - ab_t / ab_s
        mean = math.sqrt(ab_s) * beta / (1 - ab_t) * x0 + math.sqrt(1 - beta) * (1 - ab_s) / (1 - ab_t) * x  # Ho et al. eq. 7
        x = mean + (math.sqrt((1 - ab_s) / (1 - ab_t) * beta) * z.pop(0) if s > 0 else 0)
    return x


def _ode_np(second_order: bool):
    def run(x, eta, z):
        lo, hi = (_lin(t)[1] / _lin(t)[0] for t in (1e-3, 1.0))
        times = [1.0, _time_of_level(lo), 0.0]  # two rho-spaced levels: the top and the bottom one
        for t, s in zip(times[:-1], times[1:]):
            a_t, s_t = _lin(t)
            a_s, s_s = _lin(s)
            lvl_t, lvl_s = s_t / a_t, s_s / a_s
            d = _denoise_np(x, t)[1]
            y = x / a_t + (lvl_s - lvl_t) * d
            if second_order and s > 0:
                d2 = _denoise_np(y * a_s, s)[1]
                y = x / a_t + (lvl_s - lvl_t) * 0.5 * (d + d2)
            x = y * a_s
        return x

    return run


def _sampler_case(reference: Callable) -> Callable[[str, Callable], None]:
    def check(name: str, sampler) -> None:
        noise = torch.randn(3, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        for eta in (0.0, 0.5):
            out = sampler(_denoise, get_path("linear"), noise, 2, generator=torch.Generator().manual_seed(4), eta=eta)
            g = torch.Generator().manual_seed(4)
            draws = [_np(torch.randn(3, 5, generator=g, dtype=torch.float64)) for _ in range(2)]
            x = _lin(1.0)[1] * _np(noise)
            close(out, reference(x, eta, draws), rtol=1e-6, atol=1e-9)

    return check


SAMPLER_CASES: dict[str, Callable] = {
    "ddpm": _sampler_case(_ddpm_np),
    "ddim": _sampler_case(_ddim_np),
    "euler": _sampler_case(_ode_np(False)),
    "heun": _sampler_case(_ode_np(True)),
}


# ----------------------------------------------------------------------------- EMA

def check_ema(make: Callable[[nn.Module, float], Callable[[nn.Module, int], nn.Module]]) -> None:
    """``make(net, beta)`` -> ``update(net, k)`` returning the averaged net; after update k the average
    is ``d_k avg + (1 - d_k) net`` with ``d_k = min(beta, (1 + k) / (10 + k))``; buffers are copied."""
    torch.manual_seed(0)
    net = nn.BatchNorm1d(3)
    with torch.no_grad():
        net.weight.uniform_(-1, 1)
    avg = _np(net.weight).copy()
    update = make(net, 0.9)
    for k in (0, 5, 100):
        with torch.no_grad():
            net.weight.add_(torch.randn(3))
            net.running_mean.add_(1.0)
        d = min(0.9, (1 + k) / (10 + k))
        avg = d * avg + (1 - d) * _np(net.weight)
        shadow = update(net, k)
        close(shadow.weight, avg, rtol=1e-6)
        close(shadow.running_mean, _np(net.running_mean), rtol=0, atol=0)


def diffusion_ema(net: nn.Module, beta: float):
    from gensweep.trainables.diffusion.ema import EMA

    ema = EMA(net, beta)

    def update(n: nn.Module, k: int) -> nn.Module:
        ema.update(n, k)
        return ema.shadow

    return update


def gan_ema(net: nn.Module, beta: float):
    """GanState.update_ema on a state whose G is ``net`` (its step is the update count)."""
    from gensweep.trainables.gan.state import GanState

    state = GanState.__new__(GanState)
    state.cfg = type("Cfg", (), {"ema_beta": beta})()
    state.G, state.G_ema = net, copy.deepcopy(net).eval().requires_grad_(False)

    def update(n: nn.Module, k: int) -> nn.Module:
        state.step = k
        state.update_ema()
        return state.G_ema

    return update


EMA_CASES: dict[str, Callable] = {"diffusion": diffusion_ema, "gan": gan_ema}
