from __future__ import annotations

import uuid

import pytest

from tests.s3_server import S3Server, free_port


@pytest.fixture(scope="session")
def s3_server():
    server = S3Server(port=free_port()).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server, monkeypatch):
    """A fresh bucket on the loopback S3 server; the AWS environment points at it."""
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    name = f"gensweep-{uuid.uuid4().hex[:10]}"
    s3_server.make_bucket(name)
    return name


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one thread for a test module: the test machine's cores are shared, threads only contend."""
    import torch

    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)
