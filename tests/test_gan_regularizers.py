"""Regularizers against independent NumPy computations of their papers' / reference code's formulas."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gensweep.trainables.gan.config import GanConfig
from gensweep.trainables.gan.regularizers import REGULARIZERS, build_regularizers
from gensweep.trainables.gan.regularizers.penalties import interpolates, orthogonality, per_sample_uniform
from gensweep.trainables.gan.terms import StepView

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ----------------------------------------------------------------------------- LeCam


def lecam_reference(real: list[np.ndarray], fake: list[np.ndarray], start: int, decay: float, n_dis: int = 1):
    """The official lecam-gan / StudioGAN recipe, one D step at a time: the anchors take the batch
    means (decay 0) until iteration ``start``, then an EMA; the penalty
    mean(relu(D(x) - a_F)^2) + mean(relu(a_R - D(G(z)))^2) counts from iteration ``start + 1``."""
    a_r = a_f = None
    out = []
    for step, (r, f) in enumerate(zip(real, fake)):
        it = step // n_dis
        d = 0.0 if (it < start or a_r is None) else decay
        a_r = r.mean() if a_r is None else a_r * d + r.mean() * (1 - d)
        a_f = f.mean() if a_f is None else a_f * d + f.mean() * (1 - d)
        reg = np.mean(np.maximum(r - a_f, 0) ** 2) + np.mean(np.maximum(a_r - f, 0) ** 2)
        out.append(reg if it > start else 0.0)
    return out


def _value(t: torch.Tensor) -> float:
    return float(t.detach())


def _lecam_view(step: int, r: np.ndarray, f: np.ndarray) -> StepView:
    return StepView(step, None, None, None, None, None,
                    real_logits=torch.tensor(r, requires_grad=True), fake_logits=torch.tensor(f, requires_grad=True))


@pytest.mark.parametrize("start,decay,n_dis", [(3, 0.9, 1), (0, 0.99, 1), (2, 0.5, 2)])
def test_lecam_matches_the_reference_recipe(start, decay, n_dis):
    rng = np.random.default_rng(0)
    real = [rng.normal(1.0, 1.0, 16) for _ in range(12)]
    fake = [rng.normal(-1.0, 1.5, 16) for _ in range(12)]
    cfg = GanConfig.model_validate({"reg": "lecam", "lecam_start": start, "lecam_decay": decay, "n_dis": n_dis})
    (reg,) = build_regularizers(cfg.reg, cfg.reg_weight, cfg)
    (term,) = reg.terms()
    assert term.phase == "D_main" and term.weight == 0.3
    got = [_value(term.fn(_lecam_view(s, r, f))) for s, (r, f) in enumerate(zip(real, fake))]
    np.testing.assert_allclose(got, lecam_reference(real, fake, start, decay, n_dis), rtol=1e-10, atol=1e-12)
    assert sum(g > 0 for g in got) > 3  # the ReLU leaves some terms on: a real test of the formula


def test_lecam_relu_ignores_outputs_on_the_right_side_of_the_anchors():
    reg = REGULARIZERS.get("lecam")(lecam_start=0, lecam_decay=1.0)
    (term,) = reg.terms()
    term.fn(_lecam_view(0, np.array([0.0, 0.0]), np.array([0.0, 0.0])))  # anchors a_R = a_F = 0, frozen (decay 1)
    # D(x) below a_F and D(G(z)) above a_R: no penalty; the paper's squared distance would give 2 + 2
    assert _value(term.fn(_lecam_view(1, np.array([-1.0, -1.0]), np.array([1.0, 1.0])))) == 0.0
    value = term.fn(_lecam_view(2, np.array([2.0, -1.0]), np.array([-3.0, 1.0])))
    assert _value(value) == pytest.approx(4.0 / 2 + 9.0 / 2)


def test_lecam_start_defaults_to_the_references_1000_iterations():
    cfg = GanConfig.model_validate({"reg": "lecam"})
    assert (cfg.lecam_start, cfg.lecam_decay) == (1000, 0.99)
    (reg,) = build_regularizers(cfg.reg, cfg.reg_weight, cfg)
    (term,) = reg.terms()
    r, f = np.array([3.0, 2.0]), np.array([-3.0, -2.0])
    assert _value(term.fn(_lecam_view(1000, r, f))) == 0.0
    assert reg.state["ema_real"] == 2.5  # before the start the anchors follow the batch means
    assert _value(term.fn(_lecam_view(1001, r + 10, f - 10))) > 0


# ----------------------------------------------------------------------------- gradient penalties

N, C, H = 6, 1, 4
DIM = C * H * H


class TanhCritic(torch.nn.Module):
    """D(x) = v . tanh(W x + b): non-linear, with the input gradient W^T (v * (1 - tanh^2)) in closed form."""

    def __init__(self, scale: float = 1.0, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.W = torch.nn.Parameter(torch.randn(8, DIM, generator=g, dtype=torch.float64) * scale)
        self.b = torch.nn.Parameter(torch.randn(8, generator=g, dtype=torch.float64))
        self.v = torch.nn.Parameter(torch.randn(8, generator=g, dtype=torch.float64))

    def forward(self, x, labels=None, aux=False):
        return torch.tanh(x.flatten(1) @ self.W.T + self.b) @ self.v

    def numpy_grad(self, x: np.ndarray) -> np.ndarray:
        W, b, v = (p.detach().numpy() for p in (self.W, self.b, self.v))
        h = np.tanh(x.reshape(len(x), -1) @ W.T + b)
        return ((1 - h**2) * v) @ W


def _penalty_view(D, seed: int = 0) -> StepView:
    g = torch.Generator().manual_seed(seed)
    real = torch.rand(N, C, H, H, generator=g, dtype=torch.float64) * 2 - 1
    fake = torch.rand(N, C, H, H, generator=g, dtype=torch.float64) * 2 - 1
    return StepView(0, real, None, None, D, lambda x, y: D(x, y), fake)


def _penalty(name: str, D, seed: int = 1) -> tuple[float, StepView]:
    (term,) = REGULARIZERS.get(name)().terms()
    assert term.phase == "D_reg"
    v = _penalty_view(D)
    torch.manual_seed(seed)
    return _value(term.fn(v)), v


def _interpolates(v: StepView, seed: int) -> np.ndarray:
    """x_hat = a x + (1 - a) G(z), a ~ U[0, 1) per sample: the points of WGAN-GP, WGAN-LP and max-GP."""
    torch.manual_seed(seed)
    a = torch.rand(N, 1, 1, 1, dtype=torch.float64).numpy()
    return a * v.real.numpy() + (1 - a) * v.fake.numpy()


def _dragan_points(v: StepView, seed: int) -> np.ndarray:
    """DRAGAN's official code: x_p = x + 0.5 std(x) U[0,1)^d, x_hat = x + a (x_p - x), a ~ U[0, 1) per sample."""
    torch.manual_seed(seed)
    a = torch.rand(N, 1, 1, 1, dtype=torch.float64).numpy()
    u = torch.rand(N, C, H, H, dtype=torch.float64).numpy()
    x = v.real.numpy()
    return x + a * (0.5 * x.std() * u)  # numpy std over the whole batch (ddof 0), as that code


REFERENCE_PENALTIES = {
    "gp": (_interpolates, lambda norms: np.mean((norms - 1) ** 2)),
    "dragan": (_dragan_points, lambda norms: np.mean((norms - 1) ** 2)),
    "lp": (_interpolates, lambda norms: np.mean(np.maximum(norms - 1, 0) ** 2)),
    "maxgp": (_interpolates, lambda norms: np.max(norms**2)),
}


@pytest.mark.parametrize("scale", [0.2, 3.0])  # gradient norms below and above 1
@pytest.mark.parametrize("name", sorted(REFERENCE_PENALTIES))
def test_gradient_penalty_matches_numpy_at_the_papers_points(name, scale):
    D = TanhCritic(scale)
    got, v = _penalty(name, D, seed=7)
    points, reduce = REFERENCE_PENALTIES[name]
    norms = np.linalg.norm(D.numpy_grad(points(v, seed=7)), axis=1)
    assert got == pytest.approx(reduce(norms), rel=1e-9, abs=1e-12)
    if name == "lp":  # one-sided: zero for a critic whose slopes stay below 1
        assert (got == 0.0) == bool((norms <= 1).all())


def test_penalties_reach_d_and_are_lipschitz_constraints_for_the_critic_rules():
    for name in ("dragan", "lp", "maxgp"):
        cls = REGULARIZERS.get(name)
        assert cls.lipschitz and cls.default_weight == 10.0
        D = TanhCritic(3.0)
        (term,) = cls().terms()
        term.fn(_penalty_view(D)).backward()
        assert float(D.W.grad.abs().sum()) > 0, name


class ConditionalTanhCritic(TanhCritic):
    """D(x, y) = v . tanh(W x + b + E_y): the class embedding E_y moves every slope, so a penalty
    taken without the labels (E_y dropped) gives other values."""

    def __init__(self, scale: float = 1.0, classes: int = 3):
        super().__init__(scale)
        g = torch.Generator().manual_seed(5)
        self.E = torch.nn.Parameter(torch.randn(classes, 8, generator=g, dtype=torch.float64) * 2)

    def forward(self, x, labels=None, aux=False):
        shift = 0.0 if labels is None else self.E[labels]
        return torch.tanh(x.flatten(1) @ self.W.T + self.b + shift) @ self.v

    def numpy_grad_at(self, x: np.ndarray, labels: np.ndarray) -> np.ndarray:
        W, b, v, E = (p.detach().numpy() for p in (self.W, self.b, self.v, self.E))
        h = np.tanh(x.reshape(len(x), -1) @ W.T + b + E[labels])
        return ((1 - h**2) * v) @ W


CONDITIONAL_PENALTIES = {  # name -> the points the slopes are taken at, and the penalty of the norms
    "r1": (lambda v, seed: v.real.numpy(), lambda norms: 0.5 * np.mean(norms**2)),
    "r2": (lambda v, seed: v.fake.numpy(), lambda norms: 0.5 * np.mean(norms**2)),
    "gp": REFERENCE_PENALTIES["gp"],
    "dragan": REFERENCE_PENALTIES["dragan"],
}


@pytest.mark.parametrize("name", sorted(CONDITIONAL_PENALTIES))
def test_penalties_of_a_conditional_critic_take_its_slopes_at_the_batch_labels(name):
    D = ConditionalTanhCritic(scale=1.5)
    labels = torch.tensor([0, 1, 2, 2, 1, 0])
    (term,) = REGULARIZERS.get(name)().terms()
    v = _penalty_view(D)
    v.labels = labels
    torch.manual_seed(4)
    got = _value(term.fn(v))
    points, reduce = CONDITIONAL_PENALTIES[name]
    norms = np.linalg.norm(D.numpy_grad_at(points(v, seed=4), labels.numpy()), axis=1)
    assert got == pytest.approx(reduce(norms), rel=1e-9, abs=1e-12)
    unconditional = np.linalg.norm(D.numpy_grad(points(v, seed=4)), axis=1)
    assert abs(reduce(unconditional) - reduce(norms)) > 1e-3  # the labels matter to this critic


def test_penalty_terms_carry_the_names_their_logs_are_keyed_by():
    """The loop logs each term as ``term/<phase>/<name>`` (e.g. ``term/D_reg/r1``): the results
    store's columns and the report read these keys."""
    for name in ("r1", "r2", "gp", "lp", "maxgp", "dragan", "ortho"):
        assert [t.name for t in REGULARIZERS.get(name)().terms()] == [name]


# ----------------------------------------------------------------------------- zCR


class TanhGenerator(torch.nn.Module):
    """G(z) = tanh(A z) as a C x H x H image."""

    def __init__(self, z_dim: int = 5, seed: int = 1):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.A = torch.nn.Parameter(torch.randn(DIM, z_dim, generator=g, dtype=torch.float64))

    def forward(self, z, labels=None):
        return torch.tanh(z @ self.A.T).view(-1, C, H, H)

    def numpy(self, z: np.ndarray) -> np.ndarray:
        return np.tanh(z @ self.A.detach().numpy().T)


def test_zcr_matches_the_papers_latent_consistency_terms():
    cfg = GanConfig.model_validate({"reg": "zcr", "zcr_sigma": 0.3, "zcr_gen_weight": 0.7})
    (reg,) = build_regularizers(cfg.reg, cfg.reg_weight, cfg)
    d_term, g_term = reg.terms()
    assert (d_term.phase, d_term.weight, g_term.phase, g_term.weight) == ("D_main", 5.0, "G_main", 0.7)
    G, D = TanhGenerator(), TanhCritic(2.0)
    z = torch.randn(N, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    W, b, v = (p.detach().numpy() for p in (D.W, D.b, D.v))
    d_np = lambda x: np.tanh(x @ W.T + b) @ v  # noqa: E731

    for term, fake in ((d_term, G(z).detach()), (g_term, G(z))):
        view = StepView(0, None, None, G, D, None, fake, z=z)
        torch.manual_seed(11)
        got = term.fn(view)
        torch.manual_seed(11)
        z_eps = (z + 0.3 * torch.randn_like(z)).numpy()  # T(z) = z + dz, dz ~ N(0, sigma^2 I)
        a, b_ = G.numpy(z.numpy()), G.numpy(z_eps)
        if term is d_term:  # D pulled to the same output for G(z) and G(T(z))
            assert _value(got) == pytest.approx(np.mean((d_np(a) - d_np(b_)) ** 2), rel=1e-9)
        else:  # G pushed to map z and T(z) apart
            assert _value(got) == pytest.approx(-np.mean((a - b_) ** 2), rel=1e-9)
            got.backward()
            assert float(G.A.grad.abs().sum()) > 0


def test_zcr_defaults_are_the_papers():
    cfg = GanConfig.model_validate({"reg": "zcr"})
    assert (cfg.zcr_sigma, cfg.zcr_gen_weight) == (0.03, 0.5)
    (reg,) = build_regularizers(cfg.reg, None, cfg)
    assert [t.weight for t in reg.terms()] == [5.0, 0.5]


# ----------------------------------------------------------------------------- devices and dtypes
# Tensors a penalty allocates live on the batch's device, never on torch's default device (a CPU
# default with a GPU batch, or ``torch.set_default_device("cuda")`` with a CPU batch). Tests make the
# meta device the default and pass CPU batches: whatever lands on the default device shows up as meta.


def test_random_weights_and_interpolates_live_on_the_batchs_device():
    x = torch.zeros(4, 2, 3, 3, dtype=torch.float64)
    with torch.device("meta"):
        alpha, points = per_sample_uniform(x), interpolates(x, x + 1)
    assert (alpha.shape, alpha.device.type, alpha.dtype) == ((4, 1, 1, 1), "cpu", torch.float64)
    assert points.device.type == "cpu" and points.shape == x.shape


def test_orthogonality_keeps_the_weights_device_and_dtype():
    w = torch.randn(3, 5, generator=torch.Generator().manual_seed(0))
    wn = w.double().numpy()
    gram = wn @ wn.T
    expected = ((gram * (1 - np.eye(3))) ** 2).sum()
    with torch.device("meta"):
        value = orthogonality(w)
    assert value.device.type == "cpu" and float(value) == pytest.approx(expected, rel=1e-5)
    low = orthogonality(w.to(torch.bfloat16))  # the off-diagonal mask must not promote it to float32
    assert low.dtype == torch.bfloat16 and float(low) == pytest.approx(expected, rel=0.05)


def test_ortho_of_a_generator_without_multi_row_matrices_is_a_zero_tensor_on_the_batchs_device():
    (term,) = REGULARIZERS.get("ortho")().terms()
    G = torch.nn.Sequential(torch.nn.Linear(3, 1))  # one filter: no off-diagonal Gram entries
    with torch.device("meta"):
        value = term.fn(StepView(0, torch.zeros(2, 1, 4, 4, device="cpu"), None, G, None, None))
    assert isinstance(value, torch.Tensor) and value.shape == () and value.device.type == "cpu"
    assert float(value.detach()) == 0.0  # the loop logs float(value.detach())
