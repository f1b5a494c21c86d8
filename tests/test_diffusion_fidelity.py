"""Diffusion against the references: resume under the config's optimizer settings, the sigmoid
schedule (Jabri et al. 2022), EDM's stochastic churn (Karras et al. 2022, Alg. 2)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from gensweep.trainables.context import LocalContext
from gensweep.trainables.diffusion.config import DiffusionConfig
from gensweep.trainables.diffusion.samplers import SAMPLERS, Churn
from gensweep.trainables.diffusion.schedules import get_path
from gensweep.trainables.diffusion.trainable import train_diffusion
from tests.test_diffusion_samplers import MU, SD, exact_denoiser, exact_velocity_denoiser
from tests.test_diffusion_trainable import CFG, make_batches

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_resume_applies_the_configs_optimizer_settings():
    cfg = {**CFG, "steps": 2, "eval_every": 2, "eval_samplers": ["ddim:1"], "warmup_steps": 0}
    first = LocalContext({**cfg, "lr": 2e-4, "beta1": 0.9, "beta2": 0.999, "weight_decay": 0.0}, make_batches())
    train_diffusion(first)
    saved = first.states[-1]
    resumed = LocalContext({**cfg, "steps": 3, "lr": 1e-3, "beta1": 0.5, "beta2": 0.99, "weight_decay": 0.01},
                           make_batches(), state=saved)
    train_diffusion(resumed)
    end = resumed.states[-1]
    group = end["opt"]["param_groups"][0]
    assert group["lr"] == 1e-3 and tuple(group["betas"]) == (0.5, 0.99) and group["weight_decay"] == 0.01
    assert end["opt"]["state"][0]["step"].item() == 3  # the moments carried over


# ----------------------------------------------------------------------------- sigmoid schedule


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_sigmoid_schedule_is_jabri_et_al_and_denoising_diffusion_pytorchs():
    p = get_path("sigmoid")
    start, end, tau = -3.0, 3.0, 1.0
    v_start, v_end = _sigmoid(start / tau), _sigmoid(end / tau)
    gamma = lambda t: (v_end - _sigmoid((t * (end - start) + start) / tau)) / (v_end - v_start)  # noqa: E731
    t = np.linspace(0, 1, 1001)
    np.testing.assert_allclose(p.alpha_bar(torch.tensor(t)).numpy(), gamma(t), rtol=0, atol=1e-5)
    assert float(p.alpha_bar(0.0)) == 1.0 and float(p.alpha_bar(1.0)) == pytest.approx(1e-5)
    # the discrete betas of denoising-diffusion-pytorch's sigmoid_beta_schedule(1000)
    grid = np.linspace(0, 1000, 1001) / 1000
    ab = gamma(grid) / gamma(grid)[0]
    betas = np.clip(1 - ab[1:] / ab[:-1], 0, 0.999)
    np.testing.assert_allclose(p.betas(1000).numpy(), betas, rtol=1e-12, atol=0)


# ----------------------------------------------------------------------------- EDM stochastic churn


def edm_reference(path, noise: torch.Tensor, steps: int, churn, generator) -> np.ndarray:
    """Karras et al. 2022, Alg. 2, written out in their sigma coordinates (y = x / alpha, sigma = the
    path's noise level) for N(MU, SD^2) data, whose exact denoiser is D(y; s) = MU + SD^2 / (SD^2 + s^2) (y - MU).
    The raised level is capped at the path's top level (t = 1), where the network is trained."""
    mu, sd = MU.numpy(), SD
    denoise = lambda y, s: mu + sd**2 / (sd**2 + s**2) * (y - mu)  # noqa: E731
    grid = path.ode_grid(steps)
    sigmas = [float(path.noise_level(t)) for t in grid[:-1]] + [0.0]
    top = float(path.noise_level(1.0))
    y = noise.numpy() * float(path.sigma(1.0)) / float(path.alpha(1.0))
    for i, (s_cur, s_next) in enumerate(zip(sigmas[:-1], sigmas[1:])):
        inside = churn.s_tmin <= s_cur <= (np.inf if churn.s_tmax is None else churn.s_tmax)
        gamma = min(churn.s_churn / steps, np.sqrt(2) - 1) if inside else 0.0
        s_hat = min(s_cur * (1 + gamma), top)
        if s_hat > s_cur:
            eps = torch.randn(noise.shape, generator=generator, dtype=noise.dtype).numpy() * churn.s_noise
            y = y + np.sqrt(s_hat**2 - s_cur**2) * eps
        d = (y - denoise(y, s_hat)) / s_hat
        y_next = y + (s_next - s_hat) * d
        if s_next > 0:
            d2 = (y_next - denoise(y_next, s_next)) / s_next
            y_next = y + (s_next - s_hat) * (d + d2) / 2
        y = y_next
    return y


CHURNS = [Churn(), Churn(s_churn=40.0), Churn(s_churn=10.0, s_tmin=0.05, s_tmax=5.0, s_noise=1.007)]


@pytest.mark.parametrize("churn", CHURNS, ids=["deterministic", "churn40", "churn10-window"])
@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_heun_with_churn_is_edm_algorithm_2(schedule, churn):
    path = get_path(schedule)
    noise = torch.randn(256, len(MU), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    got = SAMPLERS.get("heun")(exact_denoiser(path), path, noise, 12, generator=torch.Generator().manual_seed(1), churn=churn)
    ref = edm_reference(path, noise, 12, churn, torch.Generator().manual_seed(1))
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-7, atol=1e-7)
    if churn.s_churn:  # fresh noise was drawn: the result depends on the generator
        other = SAMPLERS.get("heun")(exact_denoiser(path), path, noise, 12, generator=torch.Generator().manual_seed(2), churn=churn)
        assert (other - got).abs().max() > 1e-3


@pytest.mark.parametrize("sampler", ["heun", "euler"])
@pytest.mark.parametrize("schedule", ["linear", "flow"])
def test_zero_churn_is_todays_deterministic_sampler_exactly(sampler, schedule):
    path = get_path(schedule)
    den = exact_velocity_denoiser(path) if schedule == "flow" else exact_denoiser(path)
    noise = torch.randn(64, len(MU), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    plain = SAMPLERS.get(sampler)(den, path, noise, 12, generator=torch.Generator().manual_seed(1))
    zero = SAMPLERS.get(sampler)(den, path, noise, 12, generator=torch.Generator().manual_seed(7),
                                 churn=Churn(s_churn=0.0, s_tmin=0.1, s_tmax=2.0, s_noise=1.1))
    assert torch.equal(plain, zero)


@pytest.mark.parametrize("schedule", ["cosine", "flow"])
def test_churned_heun_still_samples_the_data_distribution(schedule):
    path = get_path(schedule)
    den = exact_velocity_denoiser(path) if schedule == "flow" else exact_denoiser(path)
    noise = torch.randn(20_000, len(MU), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = SAMPLERS.get("heun")(den, path, noise, 100, generator=torch.Generator().manual_seed(1),
                             churn=Churn(s_churn=30.0))  # 100 steps: coarse churned steps lose variance (Karras et al.)
    torch.testing.assert_close(x.mean(0), MU, atol=0.02, rtol=0)
    torch.testing.assert_close(x.std(0), torch.full((len(MU),), SD, dtype=torch.float64), atol=0.04 * SD, rtol=0)


def test_churn_settings_are_config_fields_defaulting_to_deterministic():
    cfg = DiffusionConfig.model_validate({"eval_samplers": ["heun:18"]})
    assert cfg.churn() == Churn() and (cfg.s_churn, cfg.s_tmin, cfg.s_tmax, cfg.s_noise) == (0.0, 0.0, None, 1.0)
    cfg = DiffusionConfig.model_validate({"eval_samplers": ["heun:18"], "s_churn": 40, "s_tmin": 0.05, "s_tmax": 50, "s_noise": 1.003})
    assert cfg.churn() == Churn(40.0, 0.05, 50.0, 1.003)
    with pytest.raises(ValidationError, match="heun"):
        DiffusionConfig.model_validate({"eval_samplers": ["ddim:50"], "s_churn": 10})
    with pytest.raises(ValidationError, match="s_tmin"):
        DiffusionConfig.model_validate({"eval_samplers": ["heun:18"], "s_churn": 10, "s_tmin": 3.0, "s_tmax": 1.0})
