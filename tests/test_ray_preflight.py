"""A sweep refuses a Ray cluster without the State API instead of hanging later."""
from __future__ import annotations

import contextlib
import subprocess
import sys

import pytest

from gensweep.platform.sweep.setup import ClusterNotReady, require_state_api
from gensweep.platform.spec import SpecError

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def local_ray(dashboard: bool):
    import ray

    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=1, include_dashboard=dashboard, dashboard_host="127.0.0.1")
    try:
        yield
    finally:
        ray.shutdown()


def test_refuses_a_cluster_without_its_dashboard():
    with local_ray(dashboard=False):
        with pytest.raises(ClusterNotReady, match="State API is unreachable.*include-dashboard") as info:
            require_state_api()
        assert isinstance(info.value, SpecError)  # the CLI reports it as a preflight failure (exit 2)


def test_accepts_a_cluster_with_its_dashboard():
    with local_ray(dashboard=True):
        require_state_api()


def test_checks_its_own_instance_when_another_runs_on_the_machine():
    """Another Ray instance on the same machine (e.g. another user's sweep) must not confuse the check."""
    other = subprocess.Popen(
        [sys.executable, "-c", "import ray, sys; ray.init(num_cpus=1, include_dashboard=False);"
         " print('up', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "up"
        with local_ray(dashboard=True):
            require_state_api()
    finally:
        other.stdin.close()  # the other driver exits when its stdin closes
        try:
            other.wait(timeout=60)
        except subprocess.TimeoutExpired:
            other.kill()
            other.wait(timeout=30)
