"""Every registered GAN architecture and the diffusion U-Net at 64 and 128 px: a few training
steps on colour images give samples of the right shape, and a checkpoint round trip (a fresh
network loaded from the state) samples the same images and resumes training."""
from __future__ import annotations

import pytest
import torch

from gensweep.trainables.context import LocalContext
from gensweep.trainables.families import FAMILIES
from gensweep.trainables.gan.architectures import ARCHITECTURES

pytestmark = pytest.mark.usefixtures("one_torch_thread")

K = 3  # classes of the conditional models
MODELS = {f"gan-{arch}": ("gan", {"arch": arch, "width": 4, "z_dim": 8, "conditioning": "projection"})
          for arch in ARCHITECTURES}
MODELS["diffusion-unet"] = ("diffusion", {"width": 4, "channel_mult": [1, 2], "attn_res": 8, "eval_samplers": ["ddim:2"],
                                          "eval_batch_size": 2})


def batches(resolution: int):
    g = torch.Generator().manual_seed(resolution)
    data = [{"image": torch.rand(2, 3, resolution, resolution, generator=g) * 2 - 1,
             "label": torch.randint(0, K, (2,), generator=g)}]
    return lambda epoch: iter(data)


@pytest.mark.parametrize("resolution", [64, 128])
@pytest.mark.parametrize("model", sorted(MODELS))
def test_trains_samples_and_round_trips(model, resolution):
    family_name, settings = MODELS[model]
    family = FAMILIES.get(family_name)
    cfg = {**settings, "resolution": resolution, "channels": 3, "num_classes": K, "batch_size": 2, "steps": 2,
           "eval_every": 2, "grid_size": 2}
    ctx = LocalContext(cfg, batches(resolution))
    family.train(ctx)
    assert [r["step"] for r in ctx.reports] == [2]
    grid = ctx.samples[0][1]
    assert grid.shape == (2, 3, resolution, resolution) and torch.isfinite(grid).all()

    state = ctx.states[-1]
    (_, sample), = family.samplers(state, torch.device("cpu"))[:1]
    labels = torch.tensor([0, K - 1])
    first = sample(2, 7, labels=labels)
    assert first.shape == (2, 3, resolution, resolution)
    (_, again), = family.samplers(state, torch.device("cpu"))[:1]
    assert torch.equal(again(2, 7, labels=labels), first)  # the checkpoint alone fixes the samples

    resumed = LocalContext({**cfg, "steps": 3, "eval_every": 1}, batches(resolution), state=state)
    family.train(resumed)
    assert [r["step"] for r in resumed.reports] == [3]
