"""The bundled MNIST digits prepared on demand: ``ensure_mnist`` prepares each variant once, under
its own name, with its lock beside it, and accepts a copy from an older version only where its
pixels are those of the current one; ``target_spec`` names what is wrong with a source's size."""
from __future__ import annotations

import importlib
import json
import os
from types import SimpleNamespace

import pytest

from gensweep.platform.data import SourceError, ensure_mnist, load_manifest
from gensweep.platform.data.prepare import target_spec
from gensweep.platform.data.sources import MNIST_DESCRIPTION

prepare_module = importlib.import_module("gensweep.platform.data.prepare")  # the package exports the function


@pytest.fixture
def prepared(monkeypatch, tmp_path):
    """The calls of ``prepare`` that ``ensure_mnist`` makes (each still runs); the cwd is an empty folder."""
    calls = []
    real = prepare_module.prepare

    def recording(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(prepare_module, "prepare", recording)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    return calls


def _edit_manifest(uri: str, **fields) -> None:
    path = os.path.join(uri, "manifest.json")
    doc = json.loads(open(path).read())
    for key, value in fields.items():
        if value is None:
            doc.pop(key)
        else:
            doc[key] = value
    open(path, "w").write(json.dumps(doc))


def test_defaults_are_the_plain_32px_grey_padded_variant(tmp_path, prepared):
    uri = ensure_mnist(str(tmp_path / "root"))
    assert uri == os.path.join(str(tmp_path / "root"), "datasets", "mnist-32")
    m = load_manifest(uri)
    assert (m.count, m.resolution, m.channels, m.resize, m.resize_filter) == (5000, 32, 1, "pad", "bicubic")


def test_a_variant_is_prepared_once_under_its_name_with_its_lock_beside_it(tmp_path, prepared):
    root = str(tmp_path / "root")
    uri = ensure_mnist(root, 28, channels=3, resize="resize", resize_filter="bilinear")  # resize: stretch's old name
    assert uri == os.path.join(root, "datasets", "mnist-28-c3-stretch-bilinear")
    m = load_manifest(uri)
    assert (m.count, m.resolution, m.channels, m.resize, m.resize_filter, m.fraction, m.source, m.layout_key) == (
        5000, 28, 3, "stretch", "bilinear", 1.0, MNIST_DESCRIPTION, ("permuted", 0))
    assert len(prepared) == 1
    assert ensure_mnist(root, 28, channels=3, resize="stretch", resize_filter="bilinear") == uri
    assert len(prepared) == 1  # found, not prepared again
    assert os.listdir(".") == []  # nothing in the working directory
    assert sorted(os.listdir(os.path.join(root, "datasets"))) == [".mnist-28-c3-stretch-bilinear.lock",
                                                                  "mnist-28-c3-stretch-bilinear"]


def test_an_older_copy_without_a_filter_is_kept_only_where_nothing_was_resized(tmp_path, prepared):
    root = str(tmp_path / "root")
    unresized = ensure_mnist(root, 28)  # padding 28 px digits to 28 px: the pixels of every filter
    stretched = ensure_mnist(root, 28, resize="stretch")  # a resize (a no-op at 28 px, but not assumed)
    assert len(prepared) == 2
    _edit_manifest(unresized, resize_filter=None)
    _edit_manifest(stretched, resize_filter=None)
    assert load_manifest(unresized).resize_filter is None
    ensure_mnist(root, 28)
    assert len(prepared) == 2  # accepted as is
    ensure_mnist(root, 28, resize="stretch")
    assert len(prepared) == 3  # checked again by preparing (same pixels: left as it was)
    _edit_manifest(unresized, resize_filter="bilinear")  # another recorded filter is another variant
    ensure_mnist(root, 28)
    assert len(prepared) == 4


def test_target_spec_names_a_size_it_cannot_default_to():
    def source(shape):
        return SimpleNamespace(native_shape=shape, native_channels=3, description="src")

    spec = target_spec(source((6, 6)), None, None, "pad")
    assert (spec.resolution, spec.channels, spec.resize) == (6, 3, "pad")
    assert target_spec(source((4, 6)), 8, 1, "resize").resize == "stretch"
    with pytest.raises(SourceError) as info:
        target_spec(source((4, 6)), None, None, "pad")
    assert str(info.value) == "src: images are not all the same square size (4x6); pass resolution=..."
    with pytest.raises(SourceError) as info:
        target_spec(source(None), None, None, "pad")
    assert str(info.value) == "src: images are not all the same square size (mixed sizes); pass resolution=..."
