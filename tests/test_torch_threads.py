"""A trial's torch uses the thread count Ray gave its process (gensweep.platform.trial.context.match_torch_threads),
even when torch was imported before Ray set it, as on a cluster whose Ray preloads torch."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from gensweep.platform.trial.context import match_torch_threads


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("env, expected", [("1", 1), ("3", 3)])
def test_torch_takes_the_thread_count_ray_set(monkeypatch, restore_threads, env, expected):
    torch.set_num_threads(2)
    monkeypatch.setenv("OMP_NUM_THREADS", env)
    assert match_torch_threads() == expected == torch.get_num_threads()


@pytest.mark.parametrize("env", [None, "", "0", "four"])
def test_no_usable_setting_leaves_torch_alone(monkeypatch, restore_threads, env):
    torch.set_num_threads(2)
    if env is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", env)
    assert match_torch_threads() == 2 == torch.get_num_threads()


PROBE = textwrap.dedent("""
    import json, os
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False,
             _system_config={"preload_python_modules": ["torch"]})

    @ray.remote(num_cpus=1)
    class Trial:
        def threads(self):
            import torch
            from gensweep.platform.trial.context import match_torch_threads
            before = torch.get_num_threads()
            return {"omp": os.environ.get("OMP_NUM_THREADS"), "before": before, "after": match_torch_threads()}

    print(json.dumps(ray.get(Trial.remote().threads.remote(), timeout=120)))
    ray.shutdown()
""")


@pytest.mark.slow
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="torch defaults to one thread on one core: nothing to correct")
def test_a_trial_on_a_torch_preloading_ray_worker_gets_its_share(tmp_path):
    """A real local Ray instance of its own (a subprocess, beside the tests' shared instance)."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "OMP_NUM_THREADS")}
    repo = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [repo, env.get("PYTHONPATH")]))
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=240,
                         env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    # torch came up before Ray gave the actor its one CPU, with more threads than that
    assert seen["omp"] == "1" and seen["before"] > 1, seen
    assert seen["after"] == 1, seen
