"""A resumed diffusion trial optimizes under its config's settings, not its checkpoint's."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gensweep.trainables.context import LocalContext
from gensweep.trainables.diffusion.schedules import get_path
from gensweep.trainables.diffusion.trainable import train_diffusion
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
