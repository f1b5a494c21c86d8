"""ShardLoader over in-memory arrays (no Ray)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from gensweep.platform.data import ShardLoader


def _arrays(n=100, side=4, channels=1):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, side, side, channels), dtype=np.uint8)
    return images, np.arange(n, dtype=np.int64)  # label == row: identifies rows


def _epoch(loader, epoch):
    return [{k: v.clone() for k, v in b.items()} for b in loader.epoch_batches(epoch)]


def test_shapes_ranges_and_values():
    images, labels = _arrays(channels=3)
    loader = ShardLoader.from_arrays(images, labels, batch_size=16, seed=0)
    batches = _epoch(loader, 0)
    assert len(batches) == 6 == loader.batches_per_epoch  # 100 // 16, last partial dropped
    for b in batches:
        assert b["image"].shape == (16, 3, 4, 4) and b["image"].dtype == torch.float32
        assert b["label"].dtype == torch.int64
        assert b["image"].min() >= -1.0 and b["image"].max() <= 1.0
        rows = b["label"].numpy()
        expect = images[rows].transpose(0, 3, 1, 2).astype(np.float32) / np.float32(127.5) - 1
        np.testing.assert_array_equal(b["image"].numpy(), expect)
    seen = torch.cat([b["label"] for b in batches])
    assert len(set(seen.tolist())) == 96  # a permutation, no repeats
    assert loader.mode == "materialize" and loader.rows == 100
    full = _epoch(ShardLoader.from_arrays(images, labels, batch_size=16, drop_last=False), 0)
    assert [len(b["label"]) for b in full] == [16] * 6 + [4]
    assert sorted(torch.cat([b["label"] for b in full]).tolist()) == list(range(100))


def test_seeded_order_epochs_and_ranks():
    images, labels = _arrays()

    def order(seed, epoch, rank=0):
        loader = ShardLoader.from_arrays(images, labels, batch_size=10, seed=seed, rank=rank)
        return torch.cat([b["label"] for b in loader.epoch_batches(epoch)]).tolist()

    assert order(1, 0) == order(1, 0)
    assert order(1, 0) != order(1, 1)
    assert order(1, 0) != order(2, 0)
    assert order(1, 0, rank=0) != order(1, 0, rank=1)
    loader = ShardLoader.from_arrays(images, labels, batch_size=10, seed=1)
    first = [b["label"].tolist() for b in loader.epoch_batches(3)]
    assert [b["label"].tolist() for b in loader.epoch_batches(3)] == first  # epoch is a pure function


def test_hflip_seeded():
    images = np.zeros((64, 2, 3, 1), dtype=np.uint8)
    images[:, :, 0] = 255  # left column white: a flip moves it right
    labels = np.arange(64)
    a = ShardLoader.from_arrays(images, labels, batch_size=64, seed=5, hflip=True)
    b = ShardLoader.from_arrays(images, labels, batch_size=64, seed=5, hflip=True)
    x = next(a.epoch_batches(0))["image"]
    flipped = (x[:, 0, :, 2] == 1.0).all(dim=1)
    kept = (x[:, 0, :, 0] == 1.0).all(dim=1)
    assert bool((flipped ^ kept).all())
    assert 10 < int(flipped.sum()) < 54
    assert torch.equal(next(b.epoch_batches(0))["image"], x)
    assert not torch.equal(next(a.epoch_batches(1))["image"], x)
    plain = next(ShardLoader.from_arrays(images, labels, batch_size=64).epoch_batches(0))["image"]
    assert bool((plain[:, 0, :, 0] == 1.0).all())


def test_wait_time_recorded_and_no_ray_tune_import():
    images, labels = _arrays(n=50)
    loader = ShardLoader.from_arrays(images[..., 0], labels, batch_size=5)
    assert loader.wait_s == 0.0
    n = sum(1 for _ in loader.epoch_batches(0))
    assert n == 10 and loader.batches == 10
    assert loader.wait_s > 0 and loader.epoch_wait_s == pytest.approx(loader.wait_s)
    assert loader.stats()["mode"] == "materialize"
    code = ("import sys, gensweep.platform.data as d; d.ShardLoader; "
            "bad = [m for m in sys.modules if m == 'ray' or m.startswith(('ray.tune', 'ray.'))]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)  # neither Ray nor Ray Tune imported


def test_rejects_bad_inputs():
    images, labels = _arrays()
    with pytest.raises(TypeError, match="uint8"):
        ShardLoader.from_arrays(images.astype(np.float32), labels, batch_size=4)
    with pytest.raises(ValueError, match="labels shape"):
        ShardLoader.from_arrays(images, labels[:3], batch_size=4)
    with pytest.raises(TypeError, match="iter_torch_batches"):
        ShardLoader(object(), batch_size=4)
    with pytest.raises(ValueError, match="mode"):
        ShardLoader(None, batch_size=4, mode="sometimes")
