"""A sweep refuses a Ray cluster without the State API instead of hanging later."""
from __future__ import annotations

import pytest

from gensweep.platform.runner import ClusterNotReady, require_state_api
from gensweep.platform.spec import SpecError

pytestmark = pytest.mark.slow


def test_refuses_a_cluster_without_its_dashboard():
    import ray

    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=1, include_dashboard=False)
    try:
        with pytest.raises(ClusterNotReady, match="State API is unreachable.*include-dashboard") as info:
            require_state_api()
        assert isinstance(info.value, SpecError)  # the CLI reports it as a preflight failure (exit 2)
    finally:
        ray.shutdown()


def test_accepts_a_cluster_with_its_dashboard():
    import ray

    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=1, include_dashboard=True, dashboard_host="127.0.0.1")
    try:
        require_state_api()
    finally:
        ray.shutdown()


def test_checks_its_own_instance_when_another_runs_on_the_machine():
    """Another Ray instance on the same machine (e.g. another user's sweep) must not confuse the check."""
    import subprocess
    import sys

    import ray

    other = subprocess.Popen(
        [sys.executable, "-c", "import ray, sys, time; ray.init(num_cpus=1, include_dashboard=False);"
         " print('up', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "up"
        if ray.is_initialized():
            ray.shutdown()
        ray.init(num_cpus=1, include_dashboard=True, dashboard_host="127.0.0.1")
        try:
            require_state_api()
        finally:
            ray.shutdown()
    finally:
        other.stdin.close()  # the other driver exits when its stdin closes
        try:
            other.wait(timeout=60)
        except subprocess.TimeoutExpired:
            other.kill()
            other.wait(timeout=30)
