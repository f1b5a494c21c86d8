"""Contract tests of the results store, run against local disk and loopback S3: both backends
inherit gensweep.testing's results-backend suite (the backend contract and the store on top)."""
from __future__ import annotations

import pickle

import pytest

from gensweep.platform.results import (
    LocalBackend,
    ResultsStore,
    S3Backend,
    backend_for_uri,
)
from gensweep.testing.results import ResultsBackendSuite


class TestLocalBackend(ResultsBackendSuite):
    @pytest.fixture
    def backend_root(self, tmp_path):
        return LocalBackend(), str(tmp_path / "results")


class TestS3Backend(ResultsBackendSuite):
    @pytest.fixture
    def backend_root(self, s3_bucket):
        """A fresh bucket on the loopback S3 server (tests/s3_server.py); the endpoint comes from the environment."""
        return S3Backend(), f"{s3_bucket}/results"


def test_uri_schemes_and_pickling(tmp_path, monkeypatch):
    backend, root = backend_for_uri(str(tmp_path / "r"))
    assert isinstance(backend, LocalBackend) and root == str(tmp_path / "r")
    backend, root = backend_for_uri(f"file://{tmp_path}/r")
    assert isinstance(backend, LocalBackend) and root == str(tmp_path / "r")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    store = ResultsStore.open("s3://bkt/some/prefix/")
    assert isinstance(store.backend, S3Backend)
    assert store.root == "bkt/some/prefix" and store.uri == "s3://bkt/some/prefix"
    assert store.backend.endpoint_url == "http://127.0.0.1:9"
    assert store.backend.region_name == "eu-west-3"
    explicit = ResultsStore.open("s3://bkt", endpoint_url="http://10.0.0.1:1", region_name="us-west-2")
    assert explicit.backend.endpoint_url == "http://10.0.0.1:1"
    clone = pickle.loads(pickle.dumps(store))
    assert clone.uri == store.uri and clone.backend._fs is None
    # credentials are never part of the backend's options
    assert not any("key" in k or "secret" in k for k in store.backend.storage_options())
    with pytest.raises(ValueError, match="no results-store backend"):
        ResultsStore.open("gopher://x/y")
    with pytest.raises(ValueError, match="names no bucket"):
        ResultsStore.open("s3:///just-a-path")
