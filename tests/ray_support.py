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
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        yield ray
    finally:
        ray.shutdown()
