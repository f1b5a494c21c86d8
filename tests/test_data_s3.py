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
