"""Contract of every registered GAN ingredient (the registries are iterated, so a newly
registered component is tested here without editing this file).

Losses: scalar, finite, and the right direction (D's loss falls as real logits rise and fake
logits fall; G's loss falls as fake logits rise). Architectures x conditionings: shapes at 28
and 32 px, finite values, gradients reach every parameter. Regularizers: finite, non-negative
penalties whose gradients reach the network they regularize, plus a theory check each (zero
or minimal where theory says so). Augmentations, ADA, DynamicD and conditioning terms likewise.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gensweep.trainables.gan.ada import AugmentPipe
from gensweep.trainables.gan.architectures import ARCHITECTURES, ArchSpec
from gensweep.trainables.gan.augment import AUGMENTATIONS
from gensweep.trainables.gan.conditioning import CONDITIONINGS
from gensweep.trainables.gan.dynamic_d import DYNAMIC_D, DynamicD, kept_channels
from gensweep.trainables.gan.losses import LOSSES
from gensweep.trainables.gan.regularizers import REGULARIZERS
from gensweep.trainables.gan.terms import PHASES, StepView

RESOLUTIONS = (28, 32)
K = 10  # classes


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    prev = torch.get_num_threads()
    torch.set_num_threads(1)  # the test machine's cores are shared; threads only contend
    yield
    torch.set_num_threads(prev)


def _finite(t: torch.Tensor) -> bool:
    return bool(torch.isfinite(t).all())


# ----------------------------------------------------------------------------- losses


@pytest.mark.parametrize("name", LOSSES.names())
def test_loss_directions(name):
    adv = LOSSES.get(name)
    for r0 in (-0.5, 0.0, 0.5):
        for f0 in (0.25, 0.5):
            r = torch.full((8,), r0, requires_grad=True)
            f = torch.full((8,), f0, requires_grad=True)
            d = adv.d(r, f)
            assert d.dim() == 0 and _finite(d)
            d.backward()
            assert (r.grad < 0).all(), f"{name}: D loss must fall as real logits rise (r={r0}, f={f0})"
            assert (f.grad > 0).all(), f"{name}: D loss must fall as fake logits fall (r={r0}, f={f0})"
            # the same statement with finite steps, not only the local gradient
            assert adv.d(r.detach() + 0.1, f.detach()) < d and adv.d(r.detach(), f.detach() - 0.1) < d

            real = r.detach() if adv.g_uses_real else None  # G gets real logits only if it says it uses them
            f2 = torch.full((8,), f0, requires_grad=True)
            g = adv.g(real, f2)
            assert g.dim() == 0 and _finite(g)
            g.backward()
            assert (f2.grad < 0).all(), f"{name}: G loss must fall as fake logits rise (r={r0}, f={f0})"
            assert adv.g(real, f2.detach() + 0.1) < g


@pytest.mark.parametrize("name", LOSSES.names())
def test_loss_accepts_n_and_n1_logits(name):
    adv = LOSSES.get(name)
    r, f = torch.randn(6), torch.randn(6)
    torch.testing.assert_close(adv.d(r, f), adv.d(r[:, None], f[:, None]))
    real = r if adv.g_uses_real else None
    torch.testing.assert_close(adv.g(real, f), adv.g(None if real is None else real[:, None], f[:, None]))


# ----------------------------------------------------------------------------- architectures

ARCH_CASES = [
    (arch, cond, res, att, ch)
    for arch in ARCHITECTURES.names()
    for cond in CONDITIONINGS.names()
    for res in RESOLUTIONS
    for att in (False, True)
    for ch in ((1, 3) if (res == 32 and not att) else (1,))
]


def _spec(res: int, cond: str = "none", att: bool = False, ch: int = 1, width: int = 4) -> ArchSpec:
    return ArchSpec(resolution=res, channels=ch, width=width, z_dim=8, num_classes=K, conditioning=cond, attention=att)


@pytest.mark.parametrize("arch,cond,res,att,ch", ARCH_CASES, ids=[f"{a}-{c}-{r}px-att{int(t)}-c{h}" for a, c, r, t, h in ARCH_CASES])
def test_architecture_shapes_values_and_gradients(arch, cond, res, att, ch):
    torch.manual_seed(0)
    G, D = ARCHITECTURES.get(arch)(_spec(res, cond, att, ch))
    n = 4
    z, y = torch.randn(n, 8), torch.arange(n) % K
    x = G(z, y)
    assert x.shape == (n, ch, res, res) and _finite(x)
    assert x.abs().max() <= 1.0
    logits, aux = D(x, y, aux=True)
    assert logits.shape == (n,) and _finite(logits)
    assert torch.equal(D(x.detach(), y), D(x.detach(), y, aux=True)[0])
    for key, value in aux.items():
        assert value.shape[0] == n and _finite(value), key
    loss = logits.sum() + sum(v.float().pow(2).mean() for v in aux.values() if v.requires_grad)
    loss.backward()
    for net_name, net in (("G", G), ("D", D)):
        grads = {k: p.grad for k, p in net.named_parameters()}
        missing = [k for k, g in grads.items() if g is None]
        assert not missing, f"{net_name} parameters without gradient: {missing}"
        assert all(_finite(g) for g in grads.values())
        assert sum(float(g.abs().sum()) for g in grads.values()) > 0


def test_architectures_scale_with_width():
    for arch in ARCHITECTURES.names():
        small = ARCHITECTURES.get(arch)(_spec(32, width=4))
        big = ARCHITECTURES.get(arch)(_spec(32, width=8))
        for s, b in zip(small, big):
            assert sum(p.numel() for p in b.parameters()) > 2 * sum(p.numel() for p in s.parameters()), arch


# ----------------------------------------------------------------------------- conditioning terms


@pytest.mark.parametrize("cond", CONDITIONINGS.names())
def test_conditioning_terms_are_finite_and_reach_the_right_net(cond):
    torch.manual_seed(0)
    G, D = ARCHITECTURES.get("dcgan")(_spec(32, cond))
    terms = CONDITIONINGS.get(cond)(K, 1.0).terms()
    y = torch.arange(6) % K
    real = torch.rand(6, 1, 32, 32) * 2 - 1
    for t in terms:
        assert t.phase in PHASES
        G.zero_grad()
        D.zero_grad()
        fake = G(torch.randn(6, 8), y)
        if t.phase.startswith("D"):
            fake = fake.detach()
        rl, ra = D(real, y, aux=True)
        fl, fa = D(fake, y, aux=True)
        v = StepView(0, real, y, G, D, lambda a, b: D(a, b), fake, rl, fl, ra, fa)
        value = t.fn(v)
        assert value.dim() == 0 and _finite(value)
        value.backward()
        net = D if t.phase.startswith("D") else G
        assert sum(float(p.grad.abs().sum()) for p in net.parameters() if p.grad is not None) > 0, (cond, t.name)


def test_acgan_class_loss_is_lower_when_the_classifier_is_right():
    (d_term, _) = CONDITIONINGS.get("acgan")(K, 1.0).terms()
    y = torch.arange(K)
    right = torch.eye(K) * 10
    wrong = torch.roll(right, 1, dims=1)
    mk = lambda cls: StepView(0, None, y, None, None, None, real_aux={"cls": cls}, fake_aux={"cls": cls})  # noqa: E731
    assert d_term.fn(mk(right)) < 0.01 < 10 < d_term.fn(mk(wrong))


def test_adcgan_generator_term_prefers_the_real_half_of_the_classifier():
    (_, g_term) = CONDITIONINGS.get("adcgan")(K, 1.0).terms()
    y = torch.arange(K)
    as_real = torch.cat([torch.eye(K) * 10, torch.zeros(K, K)], dim=1)
    as_fake = torch.cat([torch.zeros(K, K), torch.eye(K) * 10], dim=1)
    mk = lambda cls: StepView(0, None, y, None, None, None, fake_aux={"cls": cls})  # noqa: E731
    assert g_term.fn(mk(as_real)) < 0 < g_term.fn(mk(as_fake))


# ----------------------------------------------------------------------------- regularizers


LATE = 10**6  # a step past every regularizer's warm-up (e.g. LeCam's start)


def _view(G, D, res, *, G_phase=False, n=6, seed=0):
    torch.manual_seed(seed)
    real = torch.rand(n, 1, res, res) * 2 - 1
    z = torch.randn(n, 8)
    fake = G(z)
    if not G_phase:
        fake = fake.detach()
    rl, fl = D(real), D(fake)
    return StepView(LATE, real, None, G, D, lambda x, y: D(x, y), fake, rl, fl, z=z)


ONE_SIDED = {"lp"}
REPULSIONS = {("zcr", "zcr_gen")}  # zCR's G term is -lambda_gen ||G(z) - G(T(z))||^2: a reward for G


@pytest.mark.parametrize("res", RESOLUTIONS)
@pytest.mark.parametrize("name", REGULARIZERS.names())
def test_regularizer_contract(name, res):
    torch.manual_seed(0)
    cls = REGULARIZERS.get(name)
    G, D = ARCHITECTURES.get("stylegan2-lite" if cls.needs_mapping else "dcgan")(_spec(res))
    reg = cls()
    reg.build(G, D)
    if name in ONE_SIDED:  # penalizes slopes above 1 only: make D steep enough to be penalized
        with torch.no_grad():
            for p in D.parameters():
                p.mul_(4.0)
    for t in reg.terms():
        assert t.phase in PHASES and t.weight >= 0
        G.zero_grad()
        D.zero_grad()
        on_g = t.phase.startswith("G")
        value = t.fn(_view(G, D, res, G_phase=on_g))
        sign = -1 if (name, t.name) in REPULSIONS else 1
        assert value.dim() == 0 and _finite(value) and sign * value >= 0, (name, t.name)
        value.backward()
        net = G if on_g else D
        total = sum(float(p.grad.abs().sum()) for p in net.parameters() if p.grad is not None)
        assert total > 0, f"{name}/{t.name}: no gradient reaches {'G' if on_g else 'D'}"
    # hooks run and leave the networks usable
    view = _view(G, D, res)
    for phase in PHASES:
        reg.after_phase(phase, view)
    assert _finite(D(view.real)) and _finite(G(torch.randn(2, 8)))
    state = reg.state_dict()
    reg.load_state_dict(state)
    assert reg.state_dict() == state


class LinearCritic(nn.Module):
    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w.flatten())

    def forward(self, x, labels=None, aux=False):
        return x.flatten(1) @ self.w


class ConstCritic(nn.Module):
    def __init__(self):
        super().__init__()
        self.b = nn.Parameter(torch.tensor(0.7))

    def forward(self, x, labels=None, aux=False):
        return self.b + 0.0 * x.flatten(1).sum(1)


class PooledCritic(nn.Module):
    """Global average pooling then linear: invariant to flips and circular shifts."""

    def __init__(self, channels=1):
        super().__init__()
        self.lin = nn.Linear(channels, 1)

    def forward(self, x, labels=None, aux=False):
        return self.lin(x.mean(dim=(2, 3))).squeeze(1)


def _critic_view(D, res=32, n=6, seed=0):
    torch.manual_seed(seed)
    real = torch.rand(n, 1, res, res) * 2 - 1
    fake = torch.rand(n, 1, res, res) * 2 - 1
    return StepView(0, real, None, None, D, lambda x, y: D(x, y), fake, D(real), D(fake))


def _only_value(name: str, view: StepView) -> float:
    terms = REGULARIZERS.get(name)().terms()
    return float(sum(t.fn(view).detach() for t in terms))


def _check_none():
    assert REGULARIZERS.get("none")().terms() == []


def _check_r1():
    assert _only_value("r1", _critic_view(ConstCritic())) == 0.0
    w = torch.randn(32 * 32)  # D(x) = w.x: grad = w, so R1 = ||w||^2 / 2
    assert math.isclose(_only_value("r1", _critic_view(LinearCritic(w))), 0.5 * float(w @ w), rel_tol=1e-4)


def _check_r2():
    assert _only_value("r2", _critic_view(ConstCritic())) == 0.0
    w = torch.randn(32 * 32)
    assert math.isclose(_only_value("r2", _critic_view(LinearCritic(w))), 0.5 * float(w @ w), rel_tol=1e-4)


def _check_gp():
    w = torch.randn(32 * 32)
    unit = LinearCritic(w / w.norm())  # 1-Lipschitz with unit gradient everywhere
    assert _only_value("gp", _critic_view(unit)) < 1e-8
    double = LinearCritic(2 * w / w.norm())
    assert math.isclose(_only_value("gp", _critic_view(double)), 1.0, rel_tol=1e-4)


def _check_unit_slope_penalty(name, at_double_slope):
    def check():
        w = torch.randn(32 * 32)
        assert _only_value(name, _critic_view(LinearCritic(w / w.norm()))) < 1e-8  # slope 1 everywhere
        assert math.isclose(_only_value(name, _critic_view(LinearCritic(2 * w / w.norm()))), at_double_slope, rel_tol=1e-4)
        if name == "lp":  # one-sided: a critic flatter than 1-Lipschitz is not penalized
            assert _only_value(name, _critic_view(LinearCritic(0.5 * w / w.norm()))) == 0.0

    return check


def _check_maxgp():
    w = torch.randn(32 * 32)  # D(x) = w.x: every slope is ||w||, so the max of the squares is ||w||^2
    assert math.isclose(_only_value("maxgp", _critic_view(LinearCritic(w))), float(w @ w), rel_tol=1e-4)
    assert _only_value("maxgp", _critic_view(ConstCritic())) < 1e-10


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


def _check_consistency(name):
    def check():
        assert _only_value(name, _critic_view(PooledCritic())) < 1e-10
        assert _only_value(name, _critic_view(LinearCritic(torch.randn(32 * 32)))) > 1e-3

    return check


def _check_ortho():
    G = nn.Sequential(nn.Linear(8, 6), nn.Conv2d(2, 4, 3))
    for m in G:
        nn.init.orthogonal_(m.weight)
    v = StepView(0, torch.zeros(1), None, G, None, None)
    assert _only_value("ortho", v) < 1e-10
    with torch.no_grad():
        G[0].weight.add_(0.5)
    assert _only_value("ortho", v) > 1e-2


def _check_weight_clip():
    reg = REGULARIZERS.get("weight-clip")()
    G, D = ARCHITECTURES.get("dcgan")(_spec(32))
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


def _check_spectral(name, on_g: bool):
    def check():
        G, D = ARCHITECTURES.get("dcgan")(_spec(32))
        REGULARIZERS.get(name)().build(G, D)
        for _ in range(30):  # power iterations run in training-mode forwards
            D(torch.randn(4, 1, 32, 32))
            G(torch.randn(4, 8))
        layers = lambda net: [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]  # noqa: E731
        for m in layers(D):
            assert abs(_sigma_max(m) - 1.0) < 0.05, f"{name}: D layer {m} has sigma {_sigma_max(m):.3f}"
        g_sigmas = [_sigma_max(m) for m in layers(G)]
        if on_g:
            assert all(abs(s - 1.0) < 0.05 for s in g_sigmas), g_sigmas
        else:
            assert not any(hasattr(m, "parametrizations") for m in layers(G))

    return check


THEORY_CHECKS = {
    "none": _check_none,
    "r1": _check_r1,
    "r2": _check_r2,
    "gp": _check_gp,
    "dragan": _check_unit_slope_penalty("dragan", 1.0),
    "lp": _check_unit_slope_penalty("lp", 1.0),
    "maxgp": _check_maxgp,
    "lecam": _check_lecam,
    "zcr": _check_zcr,
    "path-length": _check_path_length,
    "cr": _check_consistency("cr"),
    "bcr": _check_consistency("bcr"),
    "ortho": _check_ortho,
    "weight-clip": _check_weight_clip,
    "spectral-norm": _check_spectral("spectral-norm", on_g=False),
    "spectral-norm-gd": _check_spectral("spectral-norm-gd", on_g=True),
}


@pytest.mark.parametrize("name", REGULARIZERS.names())
def test_regularizer_theory(name):
    assert name in THEORY_CHECKS, f"new regularizer {name!r}: add a check of where theory says it is zero/minimal"
    THEORY_CHECKS[name]()


# ----------------------------------------------------------------------------- augmentation, ADA, DynamicD


@pytest.mark.parametrize("res", RESOLUTIONS)
@pytest.mark.parametrize("name", AUGMENTATIONS.names())
def test_augmentation_contract(name, res):
    torch.manual_seed(0)
    x = (torch.rand(5, 3, res, res) * 2 - 1).requires_grad_(True)
    out = AUGMENTATIONS.get(name)(x)
    assert out.shape == x.shape and _finite(out)
    out.square().sum().backward()  # differentiable: G is trained through it
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    pipe = AugmentPipe(name, p=0.0)
    assert torch.equal(pipe(x), x)


def test_augment_pipe_probability():
    torch.manual_seed(0)
    x = torch.rand(400, 1, 8, 8)
    out = AugmentPipe("diffaug-cutout", p=0.3)(x)
    changed = (out != x).flatten(1).any(1).float().mean()
    assert 0.2 < float(changed) < 0.4


def test_ada_moves_p_toward_the_target_and_checkpoints_it():
    pipe = AugmentPipe("diffaug", target=0.6, interval=2, speed=10)
    assert pipe.p == 0.0
    overfit = StepView(0, None, None, None, None, None, real_logits=torch.ones(8))  # r_t = 1 > 0.6
    for step in range(6):
        overfit.step = step
        pipe.after_phase("D_main", overfit)
    assert math.isclose(pipe.p, 0.6) and pipe.rt == 1.0
    assert pipe.metrics() == {"aug/p": pipe.p, "aug/rt": 1.0}
    saved = pipe.state_dict()
    underfit = StepView(0, None, None, None, None, None, real_logits=-torch.ones(8))
    for step in range(100):
        underfit.step = step
        pipe.after_phase("D_main", underfit)
    assert pipe.p == 0.0  # clamped at 0
    pipe.load_state_dict(saved)
    assert math.isclose(pipe.p, 0.6)


@pytest.mark.parametrize("name", DYNAMIC_D.names())
def test_dynamic_d_schedule_bounds(name):
    f = DYNAMIC_D.get(name)
    for t in (0.0, 0.3, 1.0):
        assert 0.25 <= f(t, 0.25) <= 1.0
    assert max(f(0.0, 0.25), f(1.0, 0.25)) == 1.0  # full capacity at one end


@pytest.mark.parametrize("arch", ARCHITECTURES.names())
def test_dynamic_d_masks_channels(arch):
    torch.manual_seed(0)
    G, D = ARCHITECTURES.get(arch)(_spec(32, width=8))
    dyn = DynamicD("shrink", 0.5, total_steps=10)
    dyn.build(G, D)
    x = torch.randn(4, 1, 32, 32)
    full = D(x).detach()
    dyn.before_step(10)
    assert dyn.fraction == 0.5 and dyn.metrics() == {"dynamic_d/capacity": 0.5}
    D.zero_grad()
    half = D(x)
    assert not torch.allclose(full, half.detach())
    half.sum().backward()
    conv = dyn.layers[0]
    keep = kept_channels(conv.out_channels, 0.5)
    assert float(conv.weight.grad[keep:].abs().sum()) == 0.0  # masked channels learn nothing
    assert float(conv.weight.grad[:keep].abs().sum()) > 0.0
