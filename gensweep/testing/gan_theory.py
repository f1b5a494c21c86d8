"""Theory checks of the shipped regularizers: each is zero (or minimal) where theory says so, and
not elsewhere. :class:`~gensweep.testing.gan.GanComponentSuite` requires one per regularizer it
checks; a new regularizer adds its own to ``theory_checks`` (a subclass may extend
:data:`THEORY_CHECKS`)."""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from gensweep.testing.gan_support import (
    LATE,
    ConstCritic,
    LinearCritic,
    PooledCritic,
    critic_view,
    dcgan,
    only_value,
)
from gensweep.trainables.gan.regularizers import REGULARIZERS
from gensweep.trainables.gan.terms import StepView


def _check_none():
    assert REGULARIZERS.get("none")().terms() == []


def _check_gradient_penalty_at(name: str) -> Callable[[], None]:
    def check():  # zero for a constant critic; ||w||^2 / 2 for D(x) = w.x (its gradient is w)
        assert only_value(name, critic_view(ConstCritic())) == 0.0
        w = torch.randn(32 * 32)
        assert math.isclose(only_value(name, critic_view(LinearCritic(w))), 0.5 * float(w @ w), rel_tol=1e-4)

    return check


def _check_gp():
    w = torch.randn(32 * 32)
    unit = LinearCritic(w / w.norm())  # 1-Lipschitz with unit gradient everywhere
    assert only_value("gp", critic_view(unit)) < 1e-8
    double = LinearCritic(2 * w / w.norm())
    assert math.isclose(only_value("gp", critic_view(double)), 1.0, rel_tol=1e-4)


def _check_lecam():
    reg = REGULARIZERS.get("lecam")()
    (term,) = reg.terms()
    real_out, fake_out = torch.full((5,), 1.5), torch.full((5,), -0.5)
    v = StepView(LATE, None, None, None, None, None, real_logits=real_out, fake_logits=fake_out)
    early = StepView(reg.start, None, None, None, None, None, real_logits=real_out, fake_logits=fake_out)
    assert float(term.fn(early)) == 0.0  # not before its start iteration
    # D(x) at or below a_F and D(G(z)) at or above a_R: nothing to penalize (the ReLU)
    reg.load_state_dict({"ema_real": -2.0, "ema_fake": 3.0, "initialized": True})
    assert float(term.fn(v)) == 0.0
    reg.load_state_dict({"ema_real": 0.5, "ema_fake": 0.5})  # this step's update: a_R = 0.51, a_F = 0.49
    assert math.isclose(float(term.fn(v)), (1.5 - 0.49) ** 2 + (0.51 + 0.5) ** 2, rel_tol=1e-6)
    assert math.isclose(reg.state["ema_real"], 0.51) and math.isclose(reg.state["ema_fake"], 0.49)


def _check_consistency(name: str) -> Callable[[], None]:
    def check():
        assert only_value(name, critic_view(PooledCritic())) < 1e-10
        assert only_value(name, critic_view(LinearCritic(torch.randn(32 * 32)))) > 1e-3

    return check


def _check_ortho():
    G = nn.Sequential(nn.Linear(8, 6), nn.Conv2d(2, 4, 3))
    for m in G:
        nn.init.orthogonal_(m.weight)
    v = StepView(0, torch.zeros(1), None, G, None, None)
    assert only_value("ortho", v) < 1e-10
    with torch.no_grad():
        G[0].weight.add_(0.5)
    assert only_value("ortho", v) > 1e-2


def _check_weight_clip():
    reg = REGULARIZERS.get("weight-clip")()
    G, D = dcgan()
    with torch.no_grad():
        for p in D.parameters():
            p.mul_(100)
    reg.build(G, D)
    assert max(float(p.detach().abs().max()) for p in D.parameters()) <= reg.weight
    opt = torch.optim.SGD(D.parameters(), lr=10.0)
    D(torch.randn(4, 1, 32, 32)).sum().backward()
    opt.step()
    assert max(float(p.detach().abs().max()) for p in D.parameters()) > reg.weight  # the step left the box ...
    reg.after_phase("D_main", StepView(0, None, None, G, D, None))
    assert max(float(p.detach().abs().max()) for p in D.parameters()) <= reg.weight  # ... clipping brings it back


def _sigma_max(module: nn.Module) -> float:
    w = module.weight
    w = w.transpose(0, 1) if isinstance(module, nn.ConvTranspose2d) else w
    return float(torch.linalg.matrix_norm(w.detach().flatten(1), ord=2))


def _linear_layers(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]


def _check_spectral(name: str, on_g: bool) -> Callable[[], None]:
    def check():
        G, D = dcgan()
        REGULARIZERS.get(name)().build(G, D)
        for _ in range(30):  # power iterations run in training-mode forwards
            D(torch.randn(4, 1, 32, 32))
            G(torch.randn(4, 8))
        for m in _linear_layers(D):
            assert abs(_sigma_max(m) - 1.0) < 0.05, f"{name}: D layer {m} has sigma {_sigma_max(m):.3f}"
        g_sigmas = [_sigma_max(m) for m in _linear_layers(G)]
        if on_g:
            assert all(abs(s - 1.0) < 0.05 for s in g_sigmas), g_sigmas
        else:
            assert not any(hasattr(m, "parametrizations") for m in _linear_layers(G))

    return check


def _check_unit_slope_penalty(name, at_double_slope):
    def check():
        w = torch.randn(32 * 32)
        assert only_value(name, critic_view(LinearCritic(w / w.norm()))) < 1e-8  # slope 1 everywhere
        assert math.isclose(only_value(name, critic_view(LinearCritic(2 * w / w.norm()))), at_double_slope, rel_tol=1e-4)
        if name == "lp":  # one-sided: a critic flatter than 1-Lipschitz is not penalized
            assert only_value(name, critic_view(LinearCritic(0.5 * w / w.norm()))) == 0.0

    return check


def _check_maxgp():
    w = torch.randn(32 * 32)  # D(x) = w.x: every slope is ||w||, so the max of the squares is ||w||^2
    assert math.isclose(only_value("maxgp", critic_view(LinearCritic(w))), float(w @ w), rel_tol=1e-4)
    assert only_value("maxgp", critic_view(ConstCritic())) < 1e-10


class LatentGenerator(nn.Module):
    """G(z) = (A z) as a 1 x 32 x 32 image; ``scale`` 0 ignores z entirely."""

    def __init__(self, scale: float):
        super().__init__()
        self.A = nn.Parameter(scale * torch.randn(32 * 32, 8))

    def forward(self, z, labels=None):
        return (z @ self.A.t()).view(-1, 1, 32, 32)


def _check_zcr():
    d_term, g_term = REGULARIZERS.get("zcr")().terms()
    D = LinearCritic(torch.randn(32 * 32))
    for scale in (0.0, 1.0):
        G, z = LatentGenerator(scale), torch.randn(6, 8)
        fake = G(z)
        d_value = float(d_term.fn(StepView(LATE, None, None, G, D, None, fake.detach(), z=z)).detach())
        g_value = float(g_term.fn(StepView(LATE, None, None, G, D, None, fake, z=z)).detach())
        if scale == 0.0:  # G ignores z: T(z) changes nothing
            assert d_value == 0.0 and g_value == 0.0
        else:
            assert d_value > 0 and g_value < 0


class ScaledStyleG(nn.Module):
    """mapping: z broadcast to 2 ws; synthesis: ``scale`` times a fixed linear map of the ws."""

    def __init__(self, scale: float):
        super().__init__()
        self.M = nn.Parameter(scale * torch.randn(2 * 8, 16, generator=torch.Generator().manual_seed(0)))
        self.a = nn.Parameter(torch.ones(8))

    def mapping(self, z, labels=None):
        return (z * self.a).unsqueeze(1).repeat(1, 2, 1)

    def synthesis(self, ws):
        return (ws.flatten(1) @ self.M).view(-1, 1, 4, 4)


def _check_path_length():
    def value(scale: float) -> float:
        (term,) = REGULARIZERS.get("path-length")().terms()
        torch.manual_seed(0)
        z = torch.randn(16, 8)
        return float(term.fn(StepView(LATE, None, None, ScaledStyleG(scale), None, None, z=z)).detach())

    assert value(0.0) == 0.0  # images that ignore w: no path length at all
    assert math.isclose(value(2.0), 4 * value(1.0), rel_tol=1e-5)  # lengths and their average scale with J


THEORY_CHECKS: dict[str, Callable[[], None]] = {
    "none": _check_none,
    "r1": _check_gradient_penalty_at("r1"),
    "r2": _check_gradient_penalty_at("r2"),
    "gp": _check_gp,
    "lecam": _check_lecam,
    "dragan": _check_unit_slope_penalty("dragan", 1.0),
    "lp": _check_unit_slope_penalty("lp", 1.0),
    "maxgp": _check_maxgp,
    "zcr": _check_zcr,
    "path-length": _check_path_length,
    "cr": _check_consistency("cr"),
    "bcr": _check_consistency("bcr"),
    "ortho": _check_ortho,
    "weight-clip": _check_weight_clip,
    "spectral-norm": _check_spectral("spectral-norm", on_g=False),
    "spectral-norm-gd": _check_spectral("spectral-norm-gd", on_g=True),
}
