"""Reference values of the GAN ingredients: every adversarial loss, regularizer and augmentation
recomputed in NumPy from its paper's formula on fixed seeded inputs.

Where a component draws random numbers (GP's interpolation weights, DRAGAN's perturbation, CR's
flips and shifts, DiffAugment's transforms) the reference re-draws the same numbers from the same
seed in the same order and applies the paper's transform to them independently. Gradient
penalties use a non-linear critic ``D(x) = sum_j tanh(w_j . x)``, whose gradient differs from
point to point, so the points a penalty is taken at matter. Weighted penalties are checked at
two weights: ``weight * term`` must equal the weight times the formula.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from gensweep.trainables.gan.architectures.style_layers import EqConv2d, EqLinear
from gensweep.trainables.gan.regularizers import REGULARIZERS
from gensweep.trainables.gan.terms import StepView

N, RES, HID = 6, 4, 3
WEIGHTS = (1.0, 3.0)


def close(actual, expected, rtol: float = 1e-4, atol: float = 1e-6) -> None:
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64), rtol=rtol, atol=atol)


def softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


# ----------------------------------------------------------------------------- losses

def _logits() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return rng.uniform(-3, 3, 9), rng.uniform(-3, 3, 9)  # both sides of every hinge / target


def _loss_case(d_ref: Callable, g_ref: Callable, *, relativistic: bool = False, critic: bool = False) -> Callable[[str, object], None]:
    """D and G losses against the formulas; G sees the real logits only if relativistic; only a
    critic's loss (WGAN) asks for a Lipschitz D."""

    def check(name: str, loss) -> None:
        assert (loss.g_uses_real, loss.needs_lipschitz) == (relativistic, critic), name
        r, f = _logits()
        rt, ft = torch.tensor(r, dtype=torch.float32), torch.tensor(f, dtype=torch.float32)
        close(loss.d(rt, ft), d_ref(r, f))
        close(loss.g(rt if loss.g_uses_real else None, ft), g_ref(r, f))

    return check


def _ragan_d(r, f):
    return (softplus(-(r - f.mean())).mean() + softplus(f - r.mean()).mean()) / 2


def _ragan_g(r, f):
    return (softplus(r - f.mean()).mean() + softplus(-(f - r.mean())).mean()) / 2


LOSS_CASES: dict[str, Callable] = {
    "ns": _loss_case(lambda r, f: softplus(-r).mean() + softplus(f).mean(), lambda r, f: softplus(-f).mean()),
    "minimax": _loss_case(lambda r, f: softplus(-r).mean() + softplus(f).mean(), lambda r, f: -softplus(f).mean()),
    "hinge": _loss_case(lambda r, f: np.maximum(0, 1 - r).mean() + np.maximum(0, 1 + f).mean(), lambda r, f: -f.mean()),
    "wgan": _loss_case(lambda r, f: f.mean() - r.mean(), lambda r, f: -f.mean(), critic=True),
    "lsgan": _loss_case(lambda r, f: 0.5 * ((r - 1) ** 2).mean() + 0.5 * (f**2).mean(), lambda r, f: 0.5 * ((f - 1) ** 2).mean()),
    "rpgan": _loss_case(lambda r, f: softplus(-(r - f)).mean(), lambda r, f: softplus(-(f - r)).mean(), relativistic=True),
    "ragan": _loss_case(_ragan_d, _ragan_g, relativistic=True),
}


# ----------------------------------------------------------------------------- a non-linear critic

class TanhCritic(nn.Module):
    """D(x) = sum_j tanh(w_j . x): its gradient W (1 - tanh^2(W^T x)) changes from point to point."""

    def __init__(self, seed: int = 1):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.W = nn.Parameter(torch.randn(RES * RES, HID, generator=g) * 0.4)

    def forward(self, x, labels=None, aux=False):
        return torch.tanh(x.flatten(1) @ self.W).sum(1)


def critic_np(D: TanhCritic, x: np.ndarray) -> np.ndarray:
    return np.tanh(x.reshape(len(x), -1) @ _np(D.W)).sum(1)


def slopes_np(D: TanhCritic, x: np.ndarray) -> np.ndarray:
    """||grad_x D(x)|| per sample, by hand."""
    W = _np(D.W)
    t = np.tanh(x.reshape(len(x), -1) @ W)
    return np.linalg.norm((1 - t**2) @ W.T, axis=1)


class LinearG(nn.Module):
    """G(z) = A z as a 1 x RES x RES image; with a StyleGAN-like mapping (w = z, twice) and synthesis."""

    def __init__(self, z_dim: int = 5):
        super().__init__()
        self.A = nn.Parameter(torch.randn(RES * RES, z_dim, generator=torch.Generator().manual_seed(2)))
        self.m = nn.Parameter(torch.ones(()))  # the mapping's weight (1: w = z)

    def forward(self, z, labels=None):
        return (z @ self.A.t()).view(-1, 1, RES, RES)

    def mapping(self, z, labels=None):
        return torch.stack([z, 2 * z], 1) * self.m

    def synthesis(self, ws):
        return (ws[:, 0] @ self.A.t() + ws[:, 1] @ self.A.t()).view(-1, 1, RES, RES)


def view(seed: int = 0, z_dim: int = 5) -> StepView:
    g = torch.Generator().manual_seed(seed)
    real = torch.rand(N, 1, RES, RES, generator=g) * 2 - 1
    G, D = LinearG(z_dim), TanhCritic()
    z = torch.randn(N, z_dim, generator=g)
    fake = G(z).detach()
    return StepView(10**6, real, None, G, D, lambda x, y: D(x, y), fake, D(real), D(fake), z=z)


def weighted(name: str, weight, v: StepView, seed: int = 3, **settings) -> float:
    """sum over the terms of ``name`` (built with ``weight``) of term weight x term value, drawing from ``seed``."""
    terms = REGULARIZERS.get(name)(weight, **settings).terms()
    torch.manual_seed(seed)
    return float(sum(t.weight * t.fn(v).detach() for t in terms))


def _weighted_case(reference: Callable[[StepView, int], float], paper_weight: float) -> Callable[[str, object], None]:
    """The term at two weights equals weight x ``reference(view, seed)``; unweighted, the paper's weight."""

    def check(name: str, cls) -> None:
        v = view()
        ref = reference(v, 3)
        assert abs(ref) > 1e-6, f"{name}: the reference case is degenerate"
        for w in WEIGHTS:
            close(weighted(name, w, v), w * ref)
        close(weighted(name, None, v), paper_weight * ref)

    return check


def _uniform_draws(seed: int, *shapes) -> list[np.ndarray]:
    torch.manual_seed(seed)
    return [_np(torch.rand(*s)) for s in shapes]


def _interpolates(v: StepView, seed: int) -> np.ndarray:
    (alpha,) = _uniform_draws(seed, (N, 1, 1, 1))
    return alpha * _np(v.real) + (1 - alpha) * _np(v.fake)


def _dragan_points(v: StepView, seed: int) -> np.ndarray:
    x = _np(v.real)
    alpha, u = _uniform_draws(seed, (N, 1, 1, 1), x.shape)
    return x + alpha * 0.5 * x.std() * u


def _r1(v, seed):
    return 0.5 * (slopes_np(v.D, _np(v.real)) ** 2).mean()


def _r2(v, seed):
    return 0.5 * (slopes_np(v.D, _np(v.fake)) ** 2).mean()


def _gp(v, seed):
    return ((slopes_np(v.D, _interpolates(v, seed)) - 1) ** 2).mean()


def _lp(v, seed):
    return (np.maximum(slopes_np(v.D, _interpolates(v, seed)) - 1, 0) ** 2).mean()


def _maxgp(v, seed):
    return (slopes_np(v.D, _interpolates(v, seed)) ** 2).max()


def _dragan(v, seed):
    return ((slopes_np(v.D, _dragan_points(v, seed)) - 1) ** 2).mean()


EQ_LR_MULTIPLIER = 0.5


def _applied_matrix(m: nn.Module) -> np.ndarray:
    """The [filters, fan_in] matrix a Linear / Conv2d layer applies; equalized-learning-rate layers
    (Karras et al.) scale their stored weight by lr_multiplier / sqrt(fan_in) at run time."""
    w = _np(m.weight).reshape(len(m.weight), -1)
    if isinstance(m, EqLinear):
        return w * (EQ_LR_MULTIPLIER / np.sqrt(w.shape[1]))
    return w / np.sqrt(w.shape[1]) if isinstance(m, EqConv2d) else w


def _ortho(v, seed):
    total = 0.0
    for m in v.G.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)) and m.weight.shape[0] > 1:
            w = _applied_matrix(m)
            gram = w @ w.T
            total += ((gram * (1 - np.eye(len(gram)))) ** 2).sum()
    return total



def _ortho_view(v: StepView) -> StepView:
    torch.manual_seed(0)
    v.G = nn.Sequential(  # the 1-row matrix has no off-diagonal; the fan-in-1 one has
        nn.Linear(5, 4), nn.Linear(4, 3), nn.Linear(3, 1), nn.Linear(1, 3),
        EqLinear(3, 4, lr_multiplier=EQ_LR_MULTIPLIER), EqConv2d(2, 3, 3),
    )
    return v


def _check_ortho(name, cls):
    v = _ortho_view(view())
    ref = _ortho(v, 0)
    for w in WEIGHTS:
        close(weighted(name, w, v), w * ref)
    close(weighted(name, None, v), 1e-4 * ref)
    v.G = nn.Sequential(nn.ConvTranspose2d(3, 2, 3))  # a transposed conv's matrix is [out, in * k * k]
    w = _np(v.G[0].weight).transpose(1, 0, 2, 3).reshape(2, -1)
    gram = w @ w.T
    close(weighted(name, 1.0, v), ((gram * (1 - np.eye(2))) ** 2).sum())



def _flip_translate_np(x: np.ndarray) -> np.ndarray:
    """CR's T with the next draws of torch's RNG: flip where u < 0.5, then a circular shift by (sh, sw)."""
    n, _, h, w = x.shape
    flip = _np(torch.rand(n, 1, 1, 1)) < 0.5
    mh, mw = max(int(h * 0.125), 1), max(int(w * 0.125), 1)
    sh = torch.randint(-mh, mh + 1, (n, 1, 1)).numpy()
    sw = torch.randint(-mw, mw + 1, (n, 1, 1)).numpy()
    out = np.where(flip, x[..., ::-1], x)
    return np.stack([np.roll(out[i], (int(sh[i, 0, 0]), int(sw[i, 0, 0])), axis=(1, 2)) for i in range(n)])


def _gap(D: TanhCritic, x: np.ndarray) -> float:
    return ((critic_np(D, x) - critic_np(D, _flip_translate_np(x))) ** 2).mean()


def _cr(v, seed):
    torch.manual_seed(seed)
    return _gap(v.D, _np(v.real))


def _bcr(v, seed):  # the fake images' transform draws after the real ones'
    torch.manual_seed(seed)
    return _gap(v.D, _np(v.real)) + _gap(v.D, _np(v.fake))


def _check_zcr(name, cls):
    v = view()
    sigma, gen = 0.2, 0.7
    torch.manual_seed(3)
    dz_d = _np(torch.randn(N, 5))
    dz_g = _np(torch.randn(N, 5))
    A, z = _np(v.G.A), _np(v.z)
    img = lambda zz: (zz @ A.T).reshape(N, 1, RES, RES)  # noqa: E731
    dis = ((critic_np(v.D, img(z)) - critic_np(v.D, img(z + sigma * dz_d))) ** 2).mean()
    g_term = -((img(z) - img(z + sigma * dz_g)) ** 2).mean()
    for w in WEIGHTS:
        close(weighted(name, w, v, zcr_sigma=sigma, zcr_gen_weight=gen), w * dis + gen * g_term)
    default = REGULARIZERS.get(name)()
    assert (default.weight, default.sigma, default.gen_weight) == (5.0, 0.03, 0.5)  # the paper's lambda_dis, sigma, lambda_gen


def _check_lecam(name, cls):
    v1, v2 = view(0), view(1)
    for w in WEIGHTS:
        reg = cls(w, lecam_start=0, lecam_decay=0.9)
        (term,) = reg.terms()
        r1, f1 = _np(v1.real_logits), _np(v1.fake_logits)
        value = float(w * term.fn(v1).detach())  # the first update takes the batch means as anchors
        aR, aF = r1.mean(), f1.mean()
        close(value, w * ((np.maximum(r1 - aF, 0) ** 2).mean() + (np.maximum(aR - f1, 0) ** 2).mean()))
        r2, f2 = _np(v2.real_logits), _np(v2.fake_logits)
        aR, aF = 0.9 * aR + 0.1 * r2.mean(), 0.9 * aF + 0.1 * f2.mean()
        close(float(w * term.fn(v2).detach()), w * ((np.maximum(r2 - aF, 0) ** 2).mean() + (np.maximum(aR - f2, 0) ** 2).mean()))
    assert cls().weight == 0.3 and (cls().start, cls().decay) == (1000, 0.99)


def _check_path_length(name, cls):
    v = view(z_dim=5)
    A = _np(v.G.A)
    for w in WEIGHTS:
        reg = cls(w)
        (term,) = reg.terms()
        torch.manual_seed(3)
        n = N // 2
        y = _np(torch.randn(n, 1, RES, RES)) / RES
        # img = A w_0 + A w_1: the Jacobian-vector product w.r.t. each w_i is A^T y
        jy = y.reshape(n, -1) @ A
        lengths = np.sqrt((2 * (jy**2).sum(1)) / 2)
        mean = 0.0 + 0.01 * (lengths.mean() - 0.0)
        torch.manual_seed(3)
        close(float(w * term.fn(v).detach()), w * ((lengths - mean) ** 2).mean())
        close(reg.state["pl_mean"], mean)
    assert cls().weight == 2.0


def _check_none(name, cls):
    reg = cls()
    G, D = LinearG(), TanhCritic()
    before = [p.detach().clone() for p in D.parameters()]
    reg.build(G, D)
    assert reg.terms() == [] and all(torch.equal(a, b) for a, b in zip(before, D.parameters()))


def _check_weight_clip(name, cls):
    for c in (0.05, 0.2):
        D = TanhCritic()
        W = _np(D.W)
        reg = cls(c)
        reg.build(LinearG(), D)
        close(_np(D.W), np.clip(W, -c, c), rtol=0, atol=1e-8)
        with torch.no_grad():
            D.W.mul_(10)
        reg.after_phase("D_main", view())
        close(_np(D.W), np.clip(10 * np.clip(W, -c, c), -c, c), rtol=1e-6)
    assert cls().weight == 0.01


def _check_spectral(on_g: bool) -> Callable[[str, object], None]:
    def check(name, cls):
        torch.manual_seed(0)
        G, D = nn.Sequential(nn.Linear(5, 7), nn.Linear(7, 4)), nn.Sequential(nn.Linear(6, 5), nn.Conv2d(1, 3, 3))
        raw = {id(m): _np(m.weight).reshape(len(m.weight), -1) for m in list(G) + list(D)}
        cls().build(G, D)
        for _ in range(50):  # power iteration runs in training-mode forwards
            D[0](torch.randn(2, 6)), D[1](torch.randn(2, 1, 5, 5)), G(torch.randn(2, 5))
        for net, normalized in ((D, True), (G, on_g)):
            for m in net:
                sigma = np.linalg.svd(raw[id(m)], compute_uv=False)[0]
                expected = raw[id(m)] / sigma if normalized else raw[id(m)]
                close(_np(m.weight).reshape(len(m.weight), -1), expected, rtol=2e-3, atol=2e-4)

    return check


REG_CASES: dict[str, Callable] = {
    "none": _check_none,
    "r1": _weighted_case(_r1, 10.0),
    "r2": _weighted_case(_r2, 10.0),
    "gp": _weighted_case(_gp, 10.0),
    "lp": _weighted_case(_lp, 10.0),
    "maxgp": _weighted_case(_maxgp, 10.0),
    "dragan": _weighted_case(_dragan, 10.0),
    "cr": _weighted_case(_cr, 10.0),
    "bcr": _weighted_case(_bcr, 10.0),
    "zcr": _check_zcr,
    "lecam": _check_lecam,
    "ortho": _check_ortho,
    "path-length": _check_path_length,
    "weight-clip": _check_weight_clip,
    "spectral-norm": _check_spectral(False),
    "spectral-norm-gd": _check_spectral(True),
}
