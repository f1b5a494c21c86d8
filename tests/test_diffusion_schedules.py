"""Schedules have the right shape and endpoints; eps/x0/v/velocity conversions are exact inverses."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from gensweep.trainables.diffusion.objectives import WEIGHTINGS, diffusion_loss
from gensweep.trainables.diffusion.parameterization import PREDICTIONS, convert
from gensweep.trainables.diffusion.schedules import PATHS, LinearSchedule, SigmoidSchedule, get_path


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """One intra-op thread: on a shared, oversubscribed CPU, torch's thread pool spins and slows down."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


T = torch.linspace(0.0, 1.0, 2001, dtype=torch.float64)
T_OPEN = T[1:-1]  # where SNR is finite and nonzero for every path


def test_registries_hold_the_advertised_components_with_references():
    assert PATHS.names() == ["cosine", "flow", "linear", "sigmoid"]
    assert PREDICTIONS.names() == ["eps", "v", "velocity", "x0"]
    assert WEIGHTINGS.names() == ["min-snr", "uniform"]
    assert all(PATHS.describe().values()) and all(PREDICTIONS.describe().values())


@pytest.mark.parametrize("name", ["linear", "cosine", "sigmoid", "flow"])
def test_schedule_is_monotone_with_the_right_endpoints(name):
    p = get_path(name)
    ab, a, s = p.alpha_bar(T), p.alpha(T), p.sigma(T)
    assert ab[0] == pytest.approx(1.0, abs=1e-12) and ab[-1] < 1e-4
    assert a[0] == pytest.approx(1.0) and s[0] == pytest.approx(0.0, abs=1e-12)
    assert s[-1] == pytest.approx(1.0, abs=1e-4)
    assert (ab.diff() < 0).all() and (s.diff() > 0).all()
    snr = p.snr(T_OPEN)
    assert (snr.diff() < 0).all() and snr[0] > 1e3 and snr[-1] < 1e-3
    torch.testing.assert_close(p.log_snr(T_OPEN), snr.log())
    if name != "flow":  # variance preserving
        torch.testing.assert_close(a**2 + s**2, torch.ones_like(T))


@pytest.mark.parametrize("name", ["linear", "cosine", "sigmoid", "flow"])
def test_derivatives_match_finite_differences(name):
    p, h = get_path(name), 1e-6
    t = torch.linspace(0.01, 0.99, 50, dtype=torch.float64)
    torch.testing.assert_close(p.d_alpha(t), (p.alpha(t + h) - p.alpha(t - h)) / (2 * h), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(p.d_sigma(t), (p.sigma(t + h) - p.sigma(t - h)) / (2 * h), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["linear", "cosine", "sigmoid"])
def test_continuous_alpha_bar_matches_the_papers_discrete_betas(name):
    p = get_path(name)
    betas = p.betas(1000)
    assert betas.shape == (1000,) and (betas > 0).all() and (betas <= 0.999).all()
    discrete = torch.cumprod(1 - betas, 0)
    t = torch.arange(1, 1001, dtype=torch.float64) / 1000
    head = slice(0, 990)  # cosine's and sigmoid's last betas are clipped at 0.999 (the papers / reference code)
    torch.testing.assert_close(discrete[head], p.alpha_bar(t)[head], rtol=0.05, atol=1e-4)


@pytest.mark.parametrize("name", ["linear", "cosine", "sigmoid"])
def test_ode_grid_is_karras_spaced_and_invertible(name):
    p = get_path(name)
    grid = p.ode_grid(18)
    assert len(grid) == 19 and grid[0] == 1.0 and grid[-1] == 0.0 and grid[-2] == pytest.approx(p.t_min, rel=1e-6)
    assert all(a > b for a, b in zip(grid, grid[1:]))
    levels = torch.tensor([p.ode_time(t) for t in grid[:-1]], dtype=torch.float64) ** (1 / 7)
    torch.testing.assert_close(levels.diff(), levels.diff()[:1].expand(17), rtol=1e-6, atol=1e-9)  # equal steps in sigma^(1/rho)


@pytest.mark.parametrize("name", ["linear", "cosine", "sigmoid", "flow"])
def test_every_conversion_round_trips_to_the_identity(name):
    p = get_path(name)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(64, 3, 4, 4, generator=g, dtype=torch.float64)
    eps = torch.randn(64, 3, 4, 4, generator=g, dtype=torch.float64)
    t = p.t_min + (1 - 2 * p.t_min) * torch.rand(64, generator=g, dtype=torch.float64)
    c = p.coef(t, x0)
    x = c.alpha * x0 + c.sigma * eps
    names = ["v", "velocity", "x0"] + (["eps"] if name != "flow" else [])
    for kind in names:
        x0_hat, eps_hat = PREDICTIONS.get(kind).to_x0_eps(PREDICTIONS.get(kind).target(x0, eps, c), x, c)
        torch.testing.assert_close(x0_hat, x0, rtol=1e-9, atol=1e-9, msg=f"{kind}: x0")
        torch.testing.assert_close(eps_hat, eps, rtol=1e-9, atol=1e-9, msg=f"{kind}: eps")
    for src, dst in itertools.permutations(names, 2):
        out = PREDICTIONS.get(src).target(x0, eps, c)
        back = convert(convert(out, x, c, src, dst), x, c, dst, src)
        torch.testing.assert_close(back, out, rtol=1e-9, atol=1e-9, msg=f"{src}->{dst}->{src}")
        torch.testing.assert_close(convert(out, x, c, src, dst), PREDICTIONS.get(dst).target(x0, eps, c),
                                   rtol=1e-9, atol=1e-9, msg=f"{src}->{dst}")
    if name == "flow":
        torch.testing.assert_close(PREDICTIONS.get("velocity").target(x0, eps, c), eps - x0)
    else:
        torch.testing.assert_close(PREDICTIONS.get("v").target(x0, eps, c), c.alpha * eps - c.sigma * x0)


def test_min_snr_weight_is_the_papers_formula_in_each_parameterization():
    p, gamma = get_path("cosine"), 5.0
    t = torch.linspace(0.02, 0.98, 49, dtype=torch.float64)
    c = p.coef(t, t)
    snr = p.snr(t)
    w = lambda kind: WEIGHTINGS.get("min-snr")(c, PREDICTIONS.get(kind), gamma)  # noqa: E731
    torch.testing.assert_close(w("eps"), snr.clamp(max=gamma) / snr)
    torch.testing.assert_close(w("x0"), snr.clamp(max=gamma))
    torch.testing.assert_close(w("v"), snr.clamp(max=gamma) / (snr + 1))
    assert (WEIGHTINGS.get("uniform")(c, PREDICTIONS.get("eps"), gamma) == 1).all()


def test_loss_is_zero_for_the_exact_target_and_weights_per_sample():
    p = get_path("linear")
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(8, 1, 4, 4, generator=g), torch.randn(8, 1, 4, 4, generator=g)
    t = torch.linspace(0.1, 0.9, 8)
    pred = PREDICTIONS.get("v")
    oracle = lambda x, tt, labels: pred.target(x0, eps, p.coef(tt, x0))  # noqa: E731
    assert diffusion_loss(oracle, x0, p, pred, WEIGHTINGS.get("uniform"), t=t, eps=eps).item() < 1e-10
    zero = lambda x, tt, labels: torch.zeros_like(x)  # noqa: E731
    unweighted = diffusion_loss(zero, x0, p, pred, WEIGHTINGS.get("uniform"), t=t, eps=eps)
    weighted = diffusion_loss(zero, x0, p, pred, WEIGHTINGS.get("min-snr"), gamma=1.0, t=t, eps=eps)
    c = p.coef(t, x0)
    err = pred.target(x0, eps, c).pow(2).flatten(1).mean(1)
    torch.testing.assert_close(unweighted, err.mean())
    torch.testing.assert_close(weighted, (WEIGHTINGS.get("min-snr")(c, pred, 1.0).flatten() * err).mean())


def test_flow_path_quantities_are_the_straight_lines_closed_forms():
    p, t = get_path("flow"), torch.tensor([0.0, 0.25, 0.5, 0.8], dtype=torch.float64)
    torch.testing.assert_close(p.alpha_bar(t), torch.tensor([1.0, 0.5625, 0.25, 0.04], dtype=torch.float64))
    torch.testing.assert_close(p.noise_level(t), torch.tensor([0.0, 1 / 3, 1.0, 4.0], dtype=torch.float64))
    sigma = p.sigma(t)
    sigma.add_(1.0)  # a fresh tensor: writing into it leaves the caller's times alone
    assert t.tolist() == [0.0, 0.25, 0.5, 0.8]


@pytest.mark.parametrize("name", ["linear", "flow"])
def test_coef_and_mix_broadcast_in_the_datas_dtype(name):
    p = get_path(name)
    x0 = torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float32)
    eps = torch.tensor([[0.25, 1.0], [-1.0, 2.0]], dtype=torch.float32)
    t = torch.tensor([0.2, 0.7], dtype=torch.float64)
    a, s = (f(t).numpy() for f in (p.alpha, p.sigma))
    c = p.coef(t, x0)
    assert c.alpha.shape == (2, 1) and c.d_sigma.shape == (2, 1) and c.sigma.dtype == torch.float32
    scalar = p.coef(0.2, x0)
    assert scalar.alpha.shape == () and scalar.d_alpha.dtype == torch.float32
    elsewhere = p.coef(t, torch.empty(2, 3, device="meta"))  # stands in for data on a GPU
    assert elsewhere.alpha.device.type == "meta" and elsewhere.d_sigma.device.type == "meta"
    mixed = p.mix(x0, eps, t)
    assert mixed.dtype == torch.float32
    expected = a[:, None] * x0.double().numpy() + s[:, None] * eps.double().numpy()
    torch.testing.assert_close(mixed, torch.tensor(expected, dtype=torch.float32))


@pytest.mark.parametrize("name", ["linear", "cosine", "sigmoid"])
def test_one_step_ode_grid_goes_from_noise_straight_to_clean(name):
    assert get_path(name).ode_grid(1) == [1.0, 0.0]


def test_linear_betas_keep_their_range_per_step_count():
    """Nichol & Dhariwal 2021's respacing of the linear schedule: T steps get betas scaled by 1000 / T."""
    torch.testing.assert_close(get_path("linear").betas(250), torch.linspace(4e-4, 0.08, 250, dtype=torch.float64))


def test_flow_ode_coordinates_are_x_against_t_with_velocity_drift():
    p = get_path("flow")
    x, x0, eps = (torch.tensor([v, -v], dtype=torch.float64) for v in (0.5, 2.0, -1.0))
    assert p.ode_grid(4) == [1.0, 0.75, 0.5, 0.25, 0.0] and p.ode_time(0.3) == 0.3
    assert torch.equal(p.ode_state(x, 0.3), x) and torch.equal(p.ode_unstate(x, 0.3), x)
    assert p.ode_drift(x0, eps, 0.3).tolist() == [-3.0, 3.0]  # u = eps - x0


@pytest.mark.parametrize("name", ["linear", "cosine", "sigmoid"])
def test_discrete_betas_default_to_the_papers_1000_steps(name):
    assert get_path(name).betas().shape == (1000,)


def test_sigmoid_schedule_off_the_default_temperature():
    p, h = SigmoidSchedule(start=-1.0, end=2.0, tau=0.6), 1e-6
    t = torch.linspace(0.05, 0.95, 10, dtype=torch.float64)
    sig = lambda u: 1 / (1 + math.exp(-u))  # noqa: E731
    gamma = (sig(2.0 / 0.6) - sig((0.5 * 3.0 - 1.0) / 0.6)) / (sig(2.0 / 0.6) - sig(-1.0 / 0.6))  # Jabri et al., t = 0.5
    assert float(p.alpha_bar(0.5)) == pytest.approx(1e-5 + (1 - 1e-5) * gamma, rel=1e-12)
    assert float(p.alpha_bar(0.0)) == pytest.approx(1.0, rel=1e-12) and float(p.alpha_bar(1.0)) == pytest.approx(1e-5, rel=1e-9)
    torch.testing.assert_close(p.d_alpha(t), (p.alpha(t + h) - p.alpha(t - h)) / (2 * h), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["linear", "cosine", "sigmoid"])
def test_ode_grid_levels_are_karras_rho_7_levels_to_double_precision(name):
    """sigma_i = (hi + i / (n - 1) (lo - hi))^7 with hi, lo the 7th roots of the levels at t = 1 and t_min."""
    p, n = get_path(name), 6
    hi, lo = (float(p.noise_level(t)) ** (1 / 7) for t in (1.0, p.t_min))
    expected = [(hi + i / (n - 1) * (lo - hi)) ** 7 for i in range(n)]
    levels = [float(p.noise_level(t)) for t in p.ode_grid(n)[:-1]]
    assert levels == pytest.approx(expected, rel=1e-12)


def test_ode_time_of_the_final_grid_point_is_level_zero_even_where_alpha_bar_starts_below_one():
    class Attenuated(LinearSchedule):  # alpha_bar(0) = 0.5: a nonzero level at t = 0
        def _ab(self, t):
            return 0.5 * super()._ab(t)

    p = Attenuated()
    assert float(p.noise_level(0.0)) == pytest.approx(1.0) and p.ode_time(0.0) == 0.0
    assert p.ode_time(0.5) == pytest.approx(float(p.noise_level(0.5)), rel=1e-15)
