"""A resumed diffusion trial optimizes under its config's settings, not its checkpoint's."""
from __future__ import annotations

import pytest

from gensweep.trainables.context import LocalContext
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
