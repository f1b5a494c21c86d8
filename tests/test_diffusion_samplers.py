"""Samplers recover a known Gaussian from its exact denoiser (every registered one, through
gensweep.testing's sampler suite); DDIM(eta=0) is a function of the seed; the U-Net and
classifier-free guidance behave as specified."""
from __future__ import annotations

import pytest
import torch

from gensweep.testing.samplers import D, MU, SD, SamplerSuite, exact_denoiser, exact_velocity_denoiser
from gensweep.trainables.diffusion.config import DiffusionConfig
from gensweep.trainables.diffusion.denoiser import make_denoiser
from gensweep.trainables.diffusion.parameterization import PREDICTIONS
from gensweep.trainables.diffusion.samplers import SAMPLERS, Churn, nfe, parse_setting
from gensweep.trainables.diffusion.schedules import FlowPath, get_path
from gensweep.trainables.diffusion.trainable import build_net, sampler_fn
from gensweep.trainables.diffusion.unet import SelfAttention, UNet, UNetSpec
from gensweep.trainables.registry import UnknownComponent


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """One intra-op thread: on a shared, oversubscribed CPU, torch's thread pool spins and slows down."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class TestRegisteredSamplers(SamplerSuite):
    """Every registered sampler recovers a known Gaussian from its exact denoiser (and the rest of the suite)."""


def test_flow_ode_trajectory_is_the_known_straight_map():
    """For Gaussian data the flow ODE maps noise z to MU + SD z; Heun with 40 steps hits it per sample."""
    path = get_path("flow")
    z = torch.randn(500, D, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    x = SAMPLERS.get("heun")(exact_velocity_denoiser(path), path, z, 40)
    torch.testing.assert_close(x, MU + SD * z, atol=2e-3, rtol=0)


def test_ddim_with_eta_one_is_the_ddpm_posterior():
    path = get_path("cosine")
    noise = torch.randn(100, D, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    a = SAMPLERS.get("ddpm")(exact_denoiser(path), path, noise, 20, generator=torch.Generator().manual_seed(9))
    b = SAMPLERS.get("ddim")(exact_denoiser(path), path, noise, 20, generator=torch.Generator().manual_seed(9), eta=1.0)
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def _tiny_cfg(**kw):
    return DiffusionConfig.model_validate({"resolution": 16, "width": 8, "channel_mult": [1, 2], "num_classes": 10,
                                           "eval_samplers": ["ddim:4"], **kw})


def _randomize_zero_init(net):
    """The U-Net zero-initializes its output and residual branches; a fresh one ignores t and labels."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) and not m.weight.any():
                torch.nn.init.normal_(m.weight, std=0.1)
    return net


def _random_output_net(cfg):
    torch.manual_seed(0)
    return _randomize_zero_init(build_net(cfg))


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_sampling_is_a_function_of_the_seed(sampler):
    cfg = _tiny_cfg(guidance=2.0)
    sample = sampler_fn(_random_output_net(cfg), cfg, torch.device("cpu"), sampler, 4)
    a, b, c = sample(6, 11), sample(6, 11), sample(6, 12)
    assert a.shape == (6, 1, 16, 16) and a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-3


def test_ddim_eta_zero_is_deterministic_in_its_start_noise():
    cfg = _tiny_cfg(num_classes=0)
    net = _random_output_net(cfg)
    path, pred = get_path(cfg.schedule), PREDICTIONS.get(cfg.prediction)
    noise = torch.randn(4, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    den = make_denoiser(net, path, pred, clip=True)
    runs = [SAMPLERS.get("ddim")(den, path, noise, 5, generator=torch.Generator().manual_seed(s)) for s in (1, 2)]
    assert torch.equal(runs[0], runs[1])  # eta = 0 draws no fresh noise: the generator does not matter
    other = SAMPLERS.get("ddim")(den, path, noise + 0.5, 5)
    assert (other - runs[0]).abs().max() > 1e-3


def test_guidance_scale_interpolates_between_unconditional_and_conditional():
    cfg = _tiny_cfg()
    net = _random_output_net(cfg).eval()
    path, pred = get_path("linear"), PREDICTIONS.get("eps")
    x = torch.randn(3, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([1, 4, 7])
    den = lambda **kw: make_denoiser(net, path, pred, null_label=10, **kw)(x, 0.5)[1].detach()  # noqa: E731
    cond, uncond = den(labels=labels), den(labels=None)
    torch.testing.assert_close(den(labels=labels, guidance=0.0), uncond, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(den(labels=labels, guidance=3.0), uncond + 3.0 * (cond - uncond), rtol=1e-4, atol=1e-5)
    assert (cond - uncond).abs().max() > 1e-4  # the labels matter


@pytest.mark.parametrize("resolution,channels,num_classes", [(28, 1, 10), (32, 3, 0), (28, 3, 5), (32, 1, 0)])
def test_unet_keeps_the_image_shape(resolution, channels, num_classes):
    net = UNet(UNetSpec(channels=channels, width=8, channel_mult=(1, 2, 2), num_res_blocks=2, attn_res=8,
                        num_classes=num_classes, resolution=resolution))
    _randomize_zero_init(net)
    x = torch.randn(2, channels, resolution, resolution)
    labels = torch.tensor([0, 1]) if num_classes else None
    out = net(x, torch.tensor([0.1, 0.9]), labels)
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert not torch.allclose(out[0], net(x, torch.tensor([0.5, 0.9]), labels)[0])  # depends on t
    assert any(isinstance(m, torch.nn.GroupNorm) for m in net.modules())
    assert any(isinstance(m, SelfAttention) for m in net.modules())  # the 7/8 px level has attention


def test_sampler_settings_parse_and_count_network_evaluations():
    assert parse_setting("heun:18") == ("heun", 18) and nfe("heun", 18) == 35 and nfe("ddim", 50) == 50
    for bad in ["ddim", "ddim:x", "ddim:0", "nope:10"]:
        with pytest.raises(ValueError):
            parse_setting(bad)


def test_sampler_setting_errors_say_what_is_wrong():
    assert parse_setting(" euler :1") == ("euler", 1)  # spaces around the name; one step is allowed
    with pytest.raises(ValueError, match=r"^sampler setting 'ddim' must look like 'NAME:STEPS', e\.g\. 'ddim:50'$"):
        parse_setting("ddim")
    with pytest.raises(ValueError, match=r"^sampler setting 'ddim:x': steps 'x' is not an integer$"):
        parse_setting("ddim:x")
    with pytest.raises(ValueError, match=r"^sampler setting 'ddim:5:3': steps '5:3' is not an integer$"):
        parse_setting("ddim:5:3")  # the name ends at the first colon
    with pytest.raises(ValueError, match=r"^sampler setting 'ddim:0': steps must be >= 1$"):
        parse_setting("ddim:0")
    with pytest.raises(UnknownComponent, match="unknown sampler 'nope'; allowed: ddim, ddpm, euler, heun"):
        parse_setting("nope:10")


def test_churn_gamma_is_karras_et_als_within_the_level_window():
    """gamma = min(s_churn / steps, sqrt(2) - 1) for s_tmin <= level <= s_tmax, else 0 (Karras et al. 2022, Alg. 2)."""
    assert Churn().gamma(1.0, 10) == 0.0
    assert Churn(s_churn=0.5).gamma(1.0, 10) == pytest.approx(0.05, abs=1e-15)
    assert Churn(s_churn=2.0).gamma(80.0, 10) == pytest.approx(0.2, abs=1e-15)
    assert Churn(s_churn=40.0).gamma(1.0, 10) == pytest.approx(0.41421356237309503, abs=1e-15)  # the cap
    window = Churn(s_churn=2.0, s_tmin=0.5, s_tmax=3.0)
    assert [window.gamma(level, 10) for level in (0.49, 0.5, 1.0, 3.0, 3.01)] == pytest.approx([0.0, 0.2, 0.2, 0.2, 0.0], abs=1e-15)


def test_churn_raises_the_noise_level_by_exactly_one_plus_gamma():
    """Below the top level, a churned Heun step evaluates the denoiser first at the time whose level
    sigma/alpha is (1 + gamma) times the grid level (Karras et al. 2022, Alg. 2, line 5)."""
    path, steps, churn = get_path("cosine"), 4, Churn(s_churn=1.0)
    calls: list[float] = []
    exact = exact_denoiser(path)
    recording = lambda x, t: calls.append(float(t)) or exact(x, t)  # noqa: E731
    noise = torch.randn(2, D, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    SAMPLERS.get("heun")(recording, path, noise, steps, generator=torch.Generator().manual_seed(1), churn=churn)
    grid = path.ode_grid(steps)
    raised = float(path.noise_level(calls[2]))  # calls: t_hat(1), s(1), t_hat(2), s(2), ...
    assert raised == pytest.approx(float(path.noise_level(grid[1])) * 1.25, rel=1e-13)


def test_ode_solvers_give_the_drift_the_time_it_is_evaluated_at():
    """A path's ``ode_drift(x0_hat, eps_hat, t)`` gets the time of the denoiser call it turns into a drift."""
    drift_times: list[float] = []

    class RecordingFlow(FlowPath):
        def ode_drift(self, x0_hat, eps_hat, t):
            drift_times.append(t)
            return super().ode_drift(x0_hat, eps_hat, t)

    path = RecordingFlow()
    noise = torch.randn(2, D, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    SAMPLERS.get("heun")(exact_velocity_denoiser(path), path, noise, 3)
    grid = path.ode_grid(3)
    assert drift_times == [grid[0], grid[1], grid[1], grid[2], grid[2]]  # Heun: t, then s (none at s = 0)


@pytest.mark.parametrize("sampler,kw", [("ddpm", {}), ("ddim", {"eta": 1.0}), ("heun", {"churn": Churn(s_churn=1.0)})],
                         ids=["ddpm", "ddim-eta1", "heun-churn"])
def test_fresh_noise_is_drawn_on_the_generator_and_moved_to_the_samples_device(sampler, kw):
    """The noise of stochastic steps comes from the CPU generator and lands on the sample's device
    (the meta device stands in for a GPU)."""
    path = get_path("cosine")
    noise = torch.empty(2, D, dtype=torch.float64, device="meta")
    denoise = lambda x, t: (0.5 * x, x)  # noqa: E731
    x = SAMPLERS.get(sampler)(denoise, path, noise, 3, generator=torch.Generator().manual_seed(0), **kw)
    assert x.device.type == "meta" and x.dtype == torch.float64
