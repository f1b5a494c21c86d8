"""Preparation to and reading from a real (loopback moto) S3 server, without Ray."""
from __future__ import annotations

import os
import pickle

import boto3
import numpy as np
import pytest

from gensweep.platform.data import (
    DatasetExistsError,
    StorageOptions,
    ensure_mnist,
    load_manifest,
    prepare,
    read_arrays,
    resolve,
)


def _keys(bucket: str, prefix: str) -> list[str]:
    client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    listing = client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for o in listing.get("Contents", []))


def test_prepare_to_s3_matches_local(s3_bucket, tmp_path):
    uri = f"s3://{s3_bucket}/data/mnist-frac"
    remote = prepare("mnist", uri, resolution=32, fraction=0.2, seed=5, shard_rows=300)
    local = prepare("mnist", str(tmp_path / "local"), resolution=32, fraction=0.2, seed=5)
    assert remote.fingerprint == local.fingerprint and remote.count == 1000
    assert _keys(s3_bucket, "data/mnist-frac/") == [f"data/mnist-frac/{n}" for n in
                                                     ["manifest.json"] + remote.shards]
    assert len(remote.shards) == 4
    assert load_manifest(uri) == remote
    xr, yr = read_arrays(uri)
    xl, yl = read_arrays(str(tmp_path / "local"))
    np.testing.assert_array_equal(xr, xl)
    np.testing.assert_array_equal(yr, yl)
    # credentials never end up in the manifest
    body = boto3.client("s3").get_object(Bucket=s3_bucket, Key="data/mnist-frac/manifest.json")["Body"].read()
    assert os.environ["AWS_SECRET_ACCESS_KEY"].encode() not in body


def test_s3_idempotent_and_conflict(s3_bucket):
    uri = f"s3://{s3_bucket}/ds"
    first = prepare("mnist", uri, resolution=32, fraction=0.05)
    again = prepare("mnist", uri, resolution=32, fraction=0.05, shard_rows=17)
    assert again == first  # same created timestamp: the manifest was not rewritten
    assert len(_keys(s3_bucket, "ds/")) == 1 + len(first.shards)
    with pytest.raises(DatasetExistsError):
        prepare("mnist", uri, resolution=28, fraction=0.05)
    replaced = prepare("mnist", uri, resolution=28, fraction=0.05, overwrite=True)
    assert replaced.resolution == 28 and load_manifest(uri).fingerprint == replaced.fingerprint


def test_explicit_endpoint_and_pickled_fs_has_no_secret(s3_bucket, s3_server, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    opts = StorageOptions(endpoint_url=s3_server.endpoint, region="us-east-1")
    uri = ensure_mnist(f"s3://{s3_bucket}/root", storage=opts)
    assert uri == f"s3://{s3_bucket}/root/datasets/mnist-32"
    assert load_manifest(uri, opts).count == 5000
    fs, path = resolve(uri, opts)
    blob = pickle.dumps(fs)
    assert os.environ["AWS_SECRET_ACCESS_KEY"].encode() not in blob
    assert os.environ["AWS_ACCESS_KEY_ID"].encode() not in blob
    assert pickle.loads(blob).get_file_info(f"{path}/manifest.json").size > 0


# --------------------------------------------------------------------------- sources in a bucket


def _upload_tree(bucket: str, prefix: str, root) -> None:
    client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    for path in sorted(root.rglob("*")):
        if path.is_file():
            client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(root).as_posix()}")


def _class_folder(root, rng) -> None:
    """Two classes of 8x8 images (gray PNG, RGB JPEG), a nested subfolder, a hidden file and a note."""
    from PIL import Image

    for cls, n in (("cat", 5), ("dog", 4)):
        (root / cls / "more").mkdir(parents=True)
        for i in range(n):
            where = root / cls / ("more" if i % 2 else "") / f"{cls}{i}.png"
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(where)
    Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8), "L").save(root / "loose.png")
    (root / ".hidden.png").write_bytes(b"not an image")
    (root / "notes.txt").write_text("ignored")


def test_sources_in_a_bucket_prepare_like_local_ones(s3_bucket, tmp_path):
    """An image folder with class subfolders and an .npz in the bucket give the records and the
    fingerprint of the same files prepared from local disk."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    _class_folder(folder, rng)
    _upload_tree(s3_bucket, "raw/images", folder)
    x = rng.integers(0, 256, size=(30, 6, 6, 3), dtype=np.uint8)
    np.savez(tmp_path / "digits.npz", x=x, y=np.arange(30) % 3)
    boto3.client("s3").upload_file(str(tmp_path / "digits.npz"), s3_bucket, "raw/digits.npz")

    cases = {"folder": (f"s3://{s3_bucket}/raw/images", str(folder), {"resolution": 8, "channels": 3}),
             "npz": (f"s3://{s3_bucket}/raw/digits.npz", str(tmp_path / "digits.npz"), {})}
    for name, (source, local, opts) in cases.items():
        remote_uri, local_uri = f"s3://{s3_bucket}/prepared/{name}", str(tmp_path / f"prepared-{name}")
        remote = prepare(source, remote_uri, shard_rows=4, **opts)
        here = prepare(local, local_uri, shard_rows=4, **opts)
        assert remote.fingerprint == here.fingerprint and remote.count == here.count
        assert (remote.labels, remote.label_names) == (here.labels, here.label_names)
        assert remote.source.endswith(source) and "testing" not in remote.source  # no credentials
        for a, b in zip(read_arrays(remote_uri, return_index=True), read_arrays(local_uri, return_index=True)):
            np.testing.assert_array_equal(a, b)
    folder_manifest = load_manifest(f"s3://{s3_bucket}/prepared/folder")
    assert folder_manifest.count == 10 and folder_manifest.labels == [-1, 0, 1]
    assert folder_manifest.label_names == {0: "cat", 1: "dog"}
    assert load_manifest(f"s3://{s3_bucket}/prepared/npz").labels == [0, 1, 2]


def test_missing_sources_in_a_bucket(s3_bucket, tmp_path):
    from gensweep.platform.data import SourceError

    with pytest.raises(SourceError, match="not an existing object"):
        prepare(f"s3://{s3_bucket}/nothing.npz", str(tmp_path / "a"))
    with pytest.raises(SourceError, match="holds no"):
        prepare(f"s3://{s3_bucket}/no-such-folder", str(tmp_path / "b"))


def test_preflight_accepts_an_s3_source_that_exists(s3_bucket, tmp_path):
    from gensweep.platform.spec import parse_spec
    from gensweep.platform.sweep.preflight import PreflightError, preflight

    np.savez(tmp_path / "d.npz", x=np.zeros((4, 8, 8), dtype=np.uint8))
    boto3.client("s3").upload_file(str(tmp_path / "d.npz"), s3_bucket, "raw/d.npz")

    def spec(source: str):
        return parse_spec({"name": "pre", "data": {"source": source}, "results": {"root": str(tmp_path / "r")}})

    preflight(spec(f"s3://{s3_bucket}/raw/d.npz"), num_cpus=2)
    preflight(spec(f"s3://{s3_bucket}/raw"), num_cpus=2)  # a folder: a prefix that holds objects
    with pytest.raises(PreflightError, match=r"data.source: s3://\S+/raw/missing.npz does not exist"):
        preflight(spec(f"s3://{s3_bucket}/raw/missing.npz"), num_cpus=2)
