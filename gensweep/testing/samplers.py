"""Conformance suite of the diffusion samplers (:data:`~gensweep.trainables.diffusion.samplers.SAMPLERS`).

Every registered sampler, on every schedule of :attr:`SamplerSuite.schedules`, must turn the
exact denoiser of Gaussian data N(MU, SD^2 I) into samples with that mean and variance; a sample
must be a function of the start noise and the generator alone (never of torch's global RNG);
it keeps the shape of the noise and leaves the noise untouched; it spends exactly
:func:`~gensweep.trainables.diffusion.samplers.nfe` denoiser evaluations; and its name parses
as a ``NAME:STEPS`` setting. Subclass :class:`SamplerSuite` in a test module (``only =
{"sampler": [...]}`` narrows it); a sampler registered before collection is checked too.
"""
from __future__ import annotations

from typing import Any, ClassVar, Mapping

import pytest
import torch

from gensweep.testing.registries import RegistrySuite
from gensweep.trainables.diffusion.parameterization import PREDICTIONS
from gensweep.trainables.diffusion.samplers import SAMPLERS, Denoiser, Sampler, nfe, parse_setting
from gensweep.trainables.diffusion.schedules import NoisePath, get_path
from gensweep.trainables.registry import Registry

D = 4
MU = torch.linspace(-0.6, 0.8, D, dtype=torch.float64)
SD = 0.5  # data: N(MU, SD^2 I)


def exact_denoiser(path: NoisePath) -> Denoiser:
    """Closed-form E[x0 | x_t] for Gaussian data, and the matching noise estimate."""

    def denoise(x, t):
        a, s = float(path.alpha(t)), float(path.sigma(t))
        x0 = MU + (a * SD**2 / (a * a * SD**2 + s * s)) * (x - a * MU)
        return x0, (x - a * x0) / s

    return denoise


def exact_velocity_denoiser(path: NoisePath) -> Denoiser:
    """For the flow path: the exact marginal velocity E[eps - x0 | x_t], turned into (x0, eps) by the velocity parameterization."""
    vel = PREDICTIONS.get("velocity")

    def denoise(x, t):
        a, s = float(path.alpha(t)), float(path.sigma(t))
        var = a * a * SD**2 + s * s
        e_x0 = MU + (a * SD**2 / var) * (x - a * MU)
        e_eps = (s / var) * (x - a * MU)
        u = e_eps - e_x0
        return vel.to_x0_eps(u, x, path.coef(float(t), x))

    return denoise


def gaussian_denoiser(schedule: str, path: NoisePath) -> Denoiser:
    """The exact denoiser of the Gaussian data on ``path`` (through the velocity parameterization on the flow path)."""
    return exact_velocity_denoiser(path) if schedule == "flow" else exact_denoiser(path)


class SamplerSuite(RegistrySuite):
    """Every registered sampler (or those in ``only["sampler"]``) against the sampler contract."""

    registries: ClassVar[Mapping[str, Registry]] = {"sampler": SAMPLERS}
    schedules: ClassVar[tuple[str, ...]] = ("linear", "cosine", "flow")
    # grid intervals per sampler: the discretization error of the std stays below ~3%
    steps: ClassVar[Mapping[str, int]] = {"ddpm": 250, "ddim": 100, "euler": 100, "heun": 40}
    default_steps: ClassVar[int] = 250  # a sampler not in ``steps``

    def pytest_generate_tests(self, metafunc: Any) -> None:
        super().pytest_generate_tests(metafunc)
        if "schedule" in metafunc.fixturenames:
            metafunc.parametrize("schedule", self.schedules)

    def solver(self, name: str) -> Sampler:
        return self.registries["sampler"].get(name)

    def test_exact_denoiser_recovers_the_data_mean_and_variance(self, sampler, schedule):
        path = get_path(schedule)
        g = torch.Generator().manual_seed(0)
        noise = torch.randn(20_000, D, generator=g, dtype=torch.float64)
        steps = self.steps.get(sampler, self.default_steps)
        x = self.solver(sampler)(gaussian_denoiser(schedule, path), path, noise, steps, generator=g, eta=0.0)
        assert torch.isfinite(x).all()
        # sampling error: mean ~ SD / sqrt(20000) = 0.0035, std ~ 0.5%; the rest is the sampler's discretization
        torch.testing.assert_close(x.mean(0), MU, atol=0.02, rtol=0)
        torch.testing.assert_close(x.std(0), torch.full((D,), SD, dtype=torch.float64), atol=0.04 * SD, rtol=0)

    @pytest.mark.parametrize("eta", [0.0, 1.0])
    def test_a_sample_is_a_function_of_its_noise_and_generator(self, sampler, eta):
        path = get_path("cosine")
        noise = torch.randn(64, D, generator=torch.Generator().manual_seed(3), dtype=torch.float64)

        def run(start: torch.Tensor, seed: int, global_seed: int) -> torch.Tensor:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(global_seed)  # fresh noise must come from ``generator``, not torch's global RNG
                g = torch.Generator().manual_seed(seed)
                return self.solver(sampler)(exact_denoiser(path), path, start, 8, generator=g, eta=eta)

        first = run(noise, 7, 1)
        assert torch.equal(first, run(noise, 7, 2)), f"{sampler}: the same noise and generator seed gave another sample"
        other = run(noise + 0.5, 8, 1)
        assert (other - first).abs().max() > 1e-3, f"{sampler}: another noise and generator seed gave the same sample"

    def test_keeps_the_shape_and_leaves_the_noise_untouched(self, sampler, schedule):
        path = get_path(schedule)
        noise = torch.randn(3, 2, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        before = noise.clone()
        x = self.solver(sampler)(gaussian_denoiser(schedule, path), path, noise, 5,
                                 generator=torch.Generator().manual_seed(2), eta=1.0)
        assert x.shape == noise.shape and torch.isfinite(x).all()
        assert torch.equal(noise, before), f"{sampler} wrote into its start noise"

    @pytest.mark.parametrize("steps", [1, 2, 5])
    def test_spends_the_denoiser_evaluations_nfe_counts(self, sampler, steps):
        path = get_path("linear")
        calls: list[float] = []
        inner = exact_denoiser(path)

        def counting(x, t):
            calls.append(float(t))
            return inner(x, t)

        noise = torch.randn(8, D, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        self.solver(sampler)(counting, path, noise, steps, generator=torch.Generator().manual_seed(1))
        assert len(calls) == nfe(sampler, steps), f"{sampler}: {len(calls)} evaluations, nfe() says {nfe(sampler, steps)}"
        assert all(0.0 < t <= 1.0 for t in calls), f"{sampler}: the denoiser was called outside (0, 1]: {calls}"

    def test_its_name_parses_as_a_setting(self, sampler):
        assert parse_setting(f"{sampler}:7") == (sampler, 7)
