"""The local Ray instance of an all-inline sweep starts its worker processes with the trial modules
imported (gensweep.platform.runner.preload_modules / start_ray), and only that instance."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gensweep.platform import runner
from gensweep.platform.spec import parse_spec


def _spec(**resources):
    return parse_spec({"name": "p", "trainable": {"steps": 2, "eval_every": 2}, "resources": resources})


@pytest.mark.parametrize("resources, preload", [
    ({}, runner.TRIAL_MODULES),  # auto, one worker: inline
    ({"launcher": "inline"}, runner.TRIAL_MODULES),
    ({"launcher": "train"}, ()),  # Train controllers and workers would all pay the imports
    ({"workers": 2}, ()),  # auto, two workers: train
])
def test_only_sweeps_whose_trials_all_run_inline_preload(resources, preload):
    assert runner.preload_modules(_spec(**resources)) == preload


def test_preload_goes_to_a_local_instance_only(monkeypatch):
    import ray

    calls = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: calls.append(kw))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    runner.start_ray(num_cpus=1, preload=("torch",))
    assert calls[-1]["_system_config"] == {"preload_python_modules": ["torch"]}
    runner.start_ray(address="ray://10.0.0.1:10001", preload=("torch",))  # a cluster: started by its owner
    assert calls[-1] == {"address": "ray://10.0.0.1:10001"}


PROBE = textwrap.dedent("""
    import json, os, sys, time
    import ray
    from gensweep.platform.runner import TRIAL_MODULES, start_ray

    start_ray(num_cpus=1, preload=TRIAL_MODULES if sys.argv[1] == "on" else ())

    @ray.remote(num_cpus=1)
    class Trial:
        def __init__(self):  # what the process had imported before the actor ran any code of its own
            self.seen = {m: m in sys.modules for m in TRIAL_MODULES}

        def seen_modules(self):
            return self.seen

    print(json.dumps(ray.get(Trial.remote().seen_modules.remote(), timeout=120)))
    ray.shutdown()
""")


@pytest.mark.slow
@pytest.mark.parametrize("preload", ["on", "off"])
def test_a_trial_actor_starts_with_the_modules_imported_only_with_preload(tmp_path, preload):
    """A real local Ray instance of its own (a subprocess, beside the tests' shared instance)."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH")]))
    out = subprocess.run([sys.executable, "-c", PROBE, preload], capture_output=True, text=True, timeout=240,
                         env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen == {m: preload == "on" for m in runner.TRIAL_MODULES}
