"""Dataset preparation: sources, transforms, fingerprints, subsets, idempotency (no Ray)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from gensweep.platform.data import (
    DatasetExistsError,
    DatasetNotFoundError,
    SourceError,
    StorageOptions,
    ensure_mnist,
    load_manifest,
    prepare,
    read_arrays,
    resolve,
    short_fingerprint,
)
from gensweep.platform.data.prepare import record_permutation
from gensweep.platform.data.sources.mnist import mnist_arrays
from gensweep.platform.data.subset import class_quotas, stratified_indices

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def mnist_raw():
    images, labels = mnist_arrays()
    return images[..., 0], labels


# --------------------------------------------------------------------------- MNIST


def test_mnist_pad_to_32(tmp_path, mnist_raw):
    m = prepare("mnist", str(tmp_path / "m"), resolution=32)
    assert m.count == 5000 and m.resolution == 32 and m.channels == 1
    assert m.labels == list(range(10))
    assert m.shards == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert m.shard_counts == [2048, 2048, 904]
    assert m.fingerprint.startswith("sha256:") and len(m.fingerprint) == 7 + 64
    x, y = read_arrays(str(tmp_path / "m"))
    raw, raw_labels = mnist_raw
    assert x.shape == (5000, 32, 32, 1) and x.dtype == np.uint8
    np.testing.assert_array_equal(y, raw_labels)
    # exactly two rows/columns of zeros on each side, the digit untouched inside
    np.testing.assert_array_equal(x[:, 2:30, 2:30, 0], raw)
    assert not x[:, :2].any() and not x[:, 30:].any() and not x[:, :, :2].any() and not x[:, :, 30:].any()
    on_disk = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert on_disk["fingerprint"] == m.fingerprint and on_disk["count"] == 5000
    assert set(on_disk) >= {"format_version", "fingerprint", "count", "resolution", "channels", "labels",
                            "label_names", "shards", "source", "created", "fraction", "seed", "resize"}
    table = pq.read_table(tmp_path / "m" / "part-00001.parquet")
    assert table.column_names == ["image", "label", "index"]
    assert str(table.schema.field("image").type) == "binary"
    # the records lie in the seeded permutation across shards, not in (class-sorted) source order
    assert (on_disk["record_order"], on_disk["permutation_seed"]) == ("permuted", 0)
    assert table.column("index").to_pylist() == record_permutation(5000, 0)[2048:4096].tolist()


def test_fingerprint_independent_of_shards_and_destination(tmp_path):
    a = prepare("mnist", str(tmp_path / "a"), resolution=32)
    b = prepare("mnist", str(tmp_path / "b"), resolution=32, shard_rows=999)
    assert len(b.shards) == 6 and sum(b.shard_counts) == 5000
    assert a.fingerprint == b.fingerprint
    assert a.short_fingerprint == short_fingerprint(a.fingerprint) == a.fingerprint[7:19]
    c = prepare("mnist", str(tmp_path / "c"), resolution=28)  # native size: other pixels
    assert c.resolution == 28 and c.fingerprint != a.fingerprint
    d = prepare("mnist", str(tmp_path / "d"), resolution=32, channels=3)
    x1, _ = read_arrays(str(tmp_path / "a"), limit=10)
    x3, _ = read_arrays(str(tmp_path / "d"), limit=10)
    assert x3.shape == (10, 32, 32, 3) and d.fingerprint != a.fingerprint
    np.testing.assert_array_equal(x3, np.repeat(x1, 3, axis=-1))


def test_fraction_exact_count_balance_and_seed(tmp_path):
    m1 = prepare("mnist", str(tmp_path / "f1"), resolution=32, fraction=0.1, seed=3)
    m2 = prepare("mnist", str(tmp_path / "f2"), resolution=32, fraction=0.1, seed=3, shard_rows=128)
    m3 = prepare("mnist", str(tmp_path / "f3"), resolution=32, fraction=0.1, seed=4)
    assert m1.count == m3.count == 500
    _, y1, i1 = read_arrays(str(tmp_path / "f1"), return_index=True)
    _, _, i2 = read_arrays(str(tmp_path / "f2"), return_index=True)
    _, _, i3 = read_arrays(str(tmp_path / "f3"), return_index=True)
    assert np.bincount(y1).tolist() == [50] * 10
    np.testing.assert_array_equal(i1, i2)
    assert m1.fingerprint == m2.fingerprint
    assert not np.array_equal(i1, i3) and m1.fingerprint != m3.fingerprint
    assert np.all(np.diff(i1) > 0)  # index order
    assert m1.fraction == 0.1 and m1.seed == 3


def test_stratified_rounding_rule():
    labels = np.array([0] * 70 + [1] * 20 + [2] * 10)
    # n = 25: exact shares 17.5, 5, 2.5 -> floors 17, 5, 2; the spare slot goes to the
    # largest remainder, tie between labels 0 and 2 -> smaller label
    assert class_quotas(labels, 25) == {0: 18, 1: 5, 2: 2}
    picked = stratified_indices(labels, 0.25, seed=0)
    assert len(picked) == 25 and np.bincount(labels[picked]).tolist() == [18, 5, 2]
    assert len(stratified_indices(labels, 0.333, seed=0)) == 33  # round half up of 33.3
    assert len(stratified_indices(labels, 0.125, seed=0)) == 13  # 12.5 -> 13
    np.testing.assert_array_equal(stratified_indices(labels, 0.5, 7), stratified_indices(labels, 0.5, 7))
    for bad in (0.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError):
            stratified_indices(labels, bad, 0)
    with pytest.raises(ValueError, match="selects nothing"):
        stratified_indices(labels, 0.001, 0)


# --------------------------------------------------------------------------- image folder


def _make_folder(root: Path) -> None:
    (root / "dog").mkdir(parents=True)
    (root / "cat" / "nested").mkdir(parents=True)
    rgb = np.zeros((20, 30, 3), dtype=np.uint8)
    rgb[:, 5:25] = 255  # central 20x20 square white, sides black
    Image.fromarray(rgb).save(root / "dog" / "d0.png")
    Image.fromarray(rgb).save(root / "dog" / "d1.jpg", quality=100)
    Image.fromarray(np.full((16, 16), 200, dtype=np.uint8), "L").save(root / "cat" / "c0.png")
    Image.fromarray(np.full((16, 16), 100, dtype=np.uint8), "L").save(root / "cat" / "nested" / "c1.PNG")
    Image.fromarray(np.full((10, 10, 3), 50, dtype=np.uint8)).save(root / "loose.png")
    (root / "notes.txt").write_text("ignored")
    (root / ".hidden").mkdir()
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(root / ".hidden" / "x.png")


def test_image_folder_labels_and_modes(tmp_path):
    src = tmp_path / "imgs"
    _make_folder(src)
    m = prepare(str(src), str(tmp_path / "crop"), resolution=16, resize="center-crop")
    assert m.count == 5 and m.channels == 3  # mixed gray/RGB -> RGB
    assert m.labels == [-1, 0, 1] and m.label_names == {0: "cat", 1: "dog"}
    assert m.source == f"folder:{src.resolve()}"
    x, y = read_arrays(str(tmp_path / "crop"))
    # sorted relative paths: cat/c0.png, cat/nested/c1.PNG, dog/d0.png, dog/d1.jpg, loose.png
    assert y.tolist() == [0, 0, 1, 1, -1]
    assert x.shape == (5, 16, 16, 3)
    assert (x[0] == 200).all() and (x[1] == 100).all()
    assert (x[2] == 255).all()  # centre crop keeps only the white square
    assert (x[4] == 50).all()

    prepare(str(src), str(tmp_path / "pad"), resolution=32, resize="pad", channels=1)
    xp, _ = read_arrays(str(tmp_path / "pad"))
    assert xp.shape == (5, 32, 32, 1)
    assert (xp[0, 8:24, 8:24] == 200).all() and not xp[0, :8].any() and not xp[0, :, 24:].any()
    assert not xp[4, :11].any() and (xp[4, 11:21, 11:21] == 50).all()  # 10 -> 32: 11 above, 11 below

    prepare(str(src), str(tmp_path / "rs"), resolution=8, resize="resize")
    xr, _ = read_arrays(str(tmp_path / "rs"))
    assert xr.shape == (5, 8, 8, 3) and (xr[0] == 200).all()
    assert xr[2, :, 0].max() < 128 and (xr[2, :, 3:5] == 255).all()  # squashed: black edges remain

    with pytest.raises(SourceError, match="same square size"):
        prepare(str(src), str(tmp_path / "none"))


def test_image_folder_fingerprint_stable(tmp_path):
    src = tmp_path / "imgs"
    _make_folder(src)
    a = prepare(f"folder:{src}", str(tmp_path / "a"), resolution=16, shard_rows=2)
    b = prepare(str(src), str(tmp_path / "b"), resolution=16, shard_rows=100)
    assert len(a.shards) == 3 and len(b.shards) == 1 and a.fingerprint == b.fingerprint


# --------------------------------------------------------------------------- arrays


def test_npz_and_npy_sources(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(40, 8, 8, 3), dtype=np.uint8)
    y = np.repeat(np.arange(4), 10)
    np.savez(tmp_path / "a.npz", x=x, y=y)
    m = prepare(str(tmp_path / "a.npz"), str(tmp_path / "out_a"))
    assert (m.count, m.resolution, m.channels, m.labels) == (40, 8, 3, [0, 1, 2, 3])
    got_x, got_y = read_arrays(str(tmp_path / "out_a"))
    np.testing.assert_array_equal(got_x, x)
    np.testing.assert_array_equal(got_y, y)

    # same content under the other key names, NHW gray, float storage of integer values
    gray = x[..., 0]
    np.savez(tmp_path / "b.npz", images=gray.astype(np.float32), labels=y)
    np.save(tmp_path / "c.npy", gray)
    mb = prepare(str(tmp_path / "b.npz"), str(tmp_path / "out_b"), shard_rows=7)
    mc = prepare(str(tmp_path / "c.npy"), str(tmp_path / "out_c"))
    assert mb.channels == 1 and mc.labels == [-1]
    np.testing.assert_array_equal(read_arrays(str(tmp_path / "out_c"))[0][..., 0], gray)
    assert read_arrays(str(tmp_path / "out_c"))[1].tolist() == [-1] * 40
    assert mb.fingerprint != mc.fingerprint  # same pixels, different labels
    # stable across preparations and shard sizes
    assert prepare(str(tmp_path / "a.npz"), str(tmp_path / "out_a2"), shard_rows=3).fingerprint == m.fingerprint
    assert prepare(str(tmp_path / "c.npy"), str(tmp_path / "out_c2"), shard_rows=9).fingerprint == mc.fingerprint

    # RGB -> gray matches PIL's conversion
    mg = prepare(str(tmp_path / "a.npz"), str(tmp_path / "out_g"), channels=1)
    expect = np.stack([np.asarray(Image.fromarray(im).convert("L")) for im in x])
    np.testing.assert_array_equal(read_arrays(str(tmp_path / "out_g"))[0][..., 0], expect)
    assert mg.channels == 1

    np.save(tmp_path / "nchw.npy", rng.integers(0, 256, size=(5, 3, 8, 8), dtype=np.uint8))
    with pytest.raises(SourceError, match="NHWC"):
        prepare(str(tmp_path / "nchw.npy"), str(tmp_path / "bad"))
    np.savez(tmp_path / "nokey.npz", pixels=x)
    with pytest.raises(SourceError, match="no image array"):
        prepare(str(tmp_path / "nokey.npz"), str(tmp_path / "bad"))
    np.save(tmp_path / "frac.npy", np.full((3, 4, 4), 0.5))
    with pytest.raises(SourceError, match="not integers in 0..255"):
        prepare(str(tmp_path / "frac.npy"), str(tmp_path / "bad"))


def test_unknown_and_torchvision_sources(tmp_path):
    with pytest.raises(SourceError, match="cannot tell what kind"):
        prepare(str(tmp_path / "missing"), str(tmp_path / "o"))
    if "torchvision" in sys.modules or _has("torchvision"):
        pytest.skip("torchvision is installed here; the error path is for machines without it")
    with pytest.raises(SourceError, match="torchvision package, which is not installed"):
        prepare("torchvision:CIFAR10", str(tmp_path / "o"))


def _has(mod: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(mod) is not None


# --------------------------------------------------------------------------- idempotency & safety


def test_idempotent_conflict_and_overwrite(tmp_path):
    dest = tmp_path / "d"
    m1 = prepare("mnist", str(dest), resolution=32, fraction=0.2, shard_rows=256)
    mtimes = {p.name: p.stat().st_mtime_ns for p in dest.iterdir()}
    m2 = prepare("mnist", str(dest), resolution=32, fraction=0.2, shard_rows=512)
    assert m2 == m1  # returned as is, nothing rewritten
    assert {p.name: p.stat().st_mtime_ns for p in dest.iterdir()} == mtimes
    with pytest.raises(DatasetExistsError, match="different dataset"):
        prepare("mnist", str(dest), resolution=32, fraction=0.1)
    assert load_manifest(str(dest)) == m1
    m3 = prepare("mnist", str(dest), resolution=32, fraction=0.1, shard_rows=256, overwrite=True)
    assert m3.count == 500 and m3.fingerprint != m1.fingerprint
    parts = sorted(p.name for p in dest.glob("part-*.parquet"))
    assert parts == m3.shards == ["part-00000.parquet", "part-00001.parquet"]  # old extra shards gone


def test_manifest_written_last_and_stale_parts_replaced(tmp_path, monkeypatch):
    import importlib

    prepare_module = importlib.import_module("gensweep.platform.data.prepare")  # the package exports the function
    written = []
    real_write = prepare_module.pq.write_table

    def write_then_fail(table, where, **kwargs):
        if written:
            raise RuntimeError("disk on fire")
        written.append(where)
        real_write(table, where, **kwargs)

    x = np.zeros((30, 4, 4, 1), dtype=np.uint8)
    np.savez(tmp_path / "src.npz", x=x)
    dest = tmp_path / "d"
    monkeypatch.setattr(prepare_module.pq, "write_table", write_then_fail)
    with pytest.raises(RuntimeError, match="disk on fire"):
        prepare(str(tmp_path / "src.npz"), str(dest), shard_rows=10)
    monkeypatch.undo()
    assert (dest / "part-00000.parquet").exists() and not (dest / "manifest.json").exists()
    with pytest.raises(DatasetNotFoundError, match="manifest.json is missing"):
        load_manifest(str(dest))
    (dest / "part-00009.parquet").write_bytes(b"junk from an older run")
    np.savez(tmp_path / "ok.npz", x=x[:5])
    m = prepare(str(tmp_path / "ok.npz"), str(dest))
    assert sorted(p.name for p in dest.glob("part-*")) == m.shards == ["part-00000.parquet"]


def test_permutation_is_layout_not_content(tmp_path):
    """Another permutation seed lays the same records out again (no overwrite needed) under the same
    fingerprint; a manifest from before the permutation reads as source order and is laid out again."""
    x = np.arange(40, dtype=np.uint8).reshape(40, 1, 1, 1).repeat(4, 1).repeat(4, 2)
    np.savez(tmp_path / "src.npz", x=x, y=np.repeat(np.arange(4), 10))  # class-sorted, like MNIST
    dest = str(tmp_path / "d")
    a = prepare(str(tmp_path / "src.npz"), dest, shard_rows=10)
    first_shard = pq.read_table(tmp_path / "d" / "part-00000.parquet").column("label").to_pylist()
    assert len(set(first_shard)) > 1  # a class-sorted source no longer fills a shard with one class
    b = prepare(str(tmp_path / "src.npz"), dest, shard_rows=10, seed=5)
    assert b.fingerprint == a.fingerprint and (b.record_order, b.permutation_seed) == ("permuted", 5)
    assert pq.read_table(tmp_path / "d" / "part-00000.parquet").column("index").to_pylist() == \
        record_permutation(40, 5)[:10].tolist() != record_permutation(40, 0)[:10].tolist()
    got, labels = read_arrays(dest)
    np.testing.assert_array_equal(got, x)  # read back in source order
    assert read_arrays(dest, limit=3)[1].tolist() == [0, 0, 0]

    old = json.loads((tmp_path / "d" / "manifest.json").read_text())
    for key in ("record_order", "permutation_seed"):
        old.pop(key)
    (tmp_path / "d" / "manifest.json").write_text(json.dumps(old))
    assert load_manifest(dest).record_order == "source"
    c = prepare(str(tmp_path / "src.npz"), dest, shard_rows=10, seed=5)
    assert c.fingerprint == a.fingerprint and c.record_order == "permuted"


@pytest.mark.slow  # two fresh interpreters prepare MNIST (~26 s); out of mutation runs, which deselect slow tests
def test_ensure_mnist_two_processes(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from gensweep.platform.data import ensure_mnist, load_manifest
        uri = ensure_mnist({str(tmp_path)!r}, resolution=32)
        print(uri, load_manifest(uri).created)
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    lines = [o[0].strip().splitlines()[-1].split() for o in outs]
    assert lines[0] == lines[1]  # same URI, same (single) preparation
    uri = lines[0][0]
    assert uri == os.path.join(str(tmp_path), "datasets", "mnist-32")
    m = load_manifest(uri)
    assert m.count == 5000 and m.resolution == 32
    assert ensure_mnist(str(tmp_path)) == uri and load_manifest(uri).created == m.created


# --------------------------------------------------------------------------- storage options


def test_storage_options_and_resolve(tmp_path, monkeypatch):
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        StorageOptions(aws_secret_access_key="x")
    fs, path = resolve(str(tmp_path / "a"))
    assert type(fs).__name__ == "LocalFileSystem" and path == str(tmp_path / "a")
    assert resolve(f"file://{tmp_path}/b")[1] == f"{tmp_path}/b"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    fs, path = resolve("s3://bucket/some/prefix/")
    assert path == "bucket/some/prefix" and type(fs).__name__ == "PyFileSystem"
    assert fs.handler.fs.client_kwargs == {} and fs.handler.fs.endpoint_url == "http://127.0.0.1:1"
    explicit = resolve("s3://bucket/x", StorageOptions(endpoint_url="http://127.0.0.1:2", region="eu-west-1"))[0]
    assert explicit.handler.fs.endpoint_url == "http://127.0.0.1:2"
    assert explicit.handler.fs.client_kwargs == {"region_name": "eu-west-1"}
    with pytest.raises(ValueError, match="unsupported storage scheme"):
        resolve("gs://bucket/x")
    with pytest.raises(ValueError, match="without a bucket"):
        resolve("s3://")
