"""Dataset variant naming: every option that changes the prepared images changes the dataset's
URI, options that do not leave it alone, and the names stay readable (source, resolution,
channels, resize)."""
from __future__ import annotations

import itertools

from gensweep.platform.data.ensure import default_uri
from gensweep.platform.data.prepare import mnist_uri
from gensweep.platform.data.transforms import DEFAULT_FILTER
from gensweep.platform.spec.experiment import DataConfig

ROOT = "/tmp/gensweep-results"


def test_mnist_variants_are_named_by_resolution_channels_and_resize():
    assert mnist_uri(ROOT) == f"{ROOT}/datasets/mnist-32"  # the defaults keep the plain name
    assert mnist_uri(ROOT, 28) == f"{ROOT}/datasets/mnist-28"
    assert mnist_uri(ROOT, 32, channels=3) == f"{ROOT}/datasets/mnist-32-c3"
    assert mnist_uri(ROOT, 32, resize="resize") == f"{ROOT}/datasets/mnist-32-resize"
    assert mnist_uri(ROOT, 64, channels=3, resize="center-crop") == f"{ROOT}/datasets/mnist-64-c3-center-crop"
    assert mnist_uri(ROOT, 32, resize_filter="bilinear") == f"{ROOT}/datasets/mnist-32-bilinear"
    assert mnist_uri(ROOT, 32, channels=3, resize="stretch", resize_filter="lanczos") == \
        f"{ROOT}/datasets/mnist-32-c3-stretch-lanczos"
    assert mnist_uri(ROOT, 32, resize_filter=DEFAULT_FILTER) == f"{ROOT}/datasets/mnist-32"  # the default filter
    variants = [mnist_uri(ROOT, r, channels=c, resize=z)
                for r, c, z in itertools.product((28, 32), (1, 3), ("pad", "resize", "center-crop"))]
    assert len(set(variants)) == len(variants)


def test_default_uri_differs_for_every_option_that_changes_the_images():
    base = dict(source="/data/My Faces!", resolution=32, channels=1, resize="pad", fraction=1.0, seed=0)
    changes = dict(source="/data/other", resolution=64, channels=3, resize="center-crop", fraction=0.5, seed=1)
    uris = {"base": default_uri(DataConfig(**base), ROOT)}
    for key, value in changes.items():
        uris[key] = default_uri(DataConfig(**{**base, key: value}), ROOT)
    assert len(set(uris.values())) == len(uris), uris
    name = uris["base"].rsplit("/", 1)[1]
    assert uris["base"].startswith(f"{ROOT}/datasets/my-faces-32px-"), uris["base"]
    assert len(name.rsplit("-", 1)[1]) == 8  # the options' digest
    assert uris["resolution"].rsplit("/", 1)[1].startswith("my-faces-64px-")
    # settings that do not change the prepared images (they act when reading) keep the name
    same = DataConfig(**base, hflip=True, bad_records="skip")
    assert default_uri(same, ROOT) == uris["base"]
    assert default_uri(DataConfig(**base), ROOT) == uris["base"]  # deterministic
