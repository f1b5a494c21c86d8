"""A real driver stops gracefully on SIGUSR1 and its sweep finishes later with nothing repeated or lost.

``gensweep run`` runs in a subprocess with a tiny 2-trial grid; once a trial has its first checkpoint,
the driver alone gets SIGUSR1 (what SLURM's ``--signal=B:USR1@LEAD`` delivers through the sbatch
script). It must exit 75 ("interrupted, resumable") after every running trial checkpointed at the
step it was at; then ``gensweep run --or-resume`` with the same experiment id resumes and finishes it.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest
import yaml

from gensweep.platform.sweep.interrupt import EXIT_RESUMABLE
from tests.sweep_interrupt_support import check_finished_after_stop, clean_env, has_checkpoint, tiny_spec

pytestmark = pytest.mark.slow

EXP = "stop-usr1"


@pytest.fixture
def ray_tmp():
    d = tempfile.mkdtemp(prefix="gsi-", dir="/tmp")  # short: Ray's socket paths must fit
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _tail(path, n=4000):
    return path.read_text(errors="replace")[-n:]


def test_sigusr1_checkpoints_flushes_exits_resumable_then_resumes(tmp_path, ray_tmp):
    root = tmp_path / "results"
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(tiny_spec(root)))
    env = clean_env(tmp_path, ray_tmp)
    cmd = [sys.executable, "-m", "gensweep.cli", "run", str(spec), "--experiment", EXP, "--num-cpus", "2",
           "--or-resume"]
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and proc.poll() is None and not has_checkpoint(root, EXP):
                time.sleep(0.05)
            assert proc.poll() is None and has_checkpoint(root, EXP), _tail(log)
            os.kill(proc.pid, signal.SIGUSR1)
            rc = proc.wait(timeout=180)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
    text = _tail(log, 20000)
    assert rc == EXIT_RESUMABLE, text
    assert "checkpointed; stopping" in text and f"gensweep resume {EXP}" in text

    log2 = tmp_path / "resume.log"
    with open(log2, "wb") as out:
        rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=300,
                            start_new_session=True).returncode
    assert rc == 0, _tail(log2)
    assert f"{EXP} is in" in log2.read_text()  # --or-resume found it
    stopped = check_finished_after_stop(root, EXP)
    assert stopped, "no trial checkpointed at the stop: the signal did not reach the trials"
