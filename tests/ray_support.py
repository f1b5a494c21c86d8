"""Shared helpers for tests that run real Ray."""
from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="module")
def ray_local():
    import ray

    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.1")
    if ray.is_initialized():
        ray.shutdown()
    # The dashboard serves the State API that Ray Train needs to release finished trials'
    # placement groups (the sweep refuses to start without it); loopback only.
    ray.init(num_cpus=2, include_dashboard=True, dashboard_host="127.0.0.1")
    try:
        yield ray
    finally:
        ray.shutdown()
