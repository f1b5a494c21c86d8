"""The sbatch script of ``gensweep cluster init slurm`` on a real single-host SLURM (tests/slurm_server.py).

The job runs a tiny 2-trial sweep. Mid-sweep, its batch shell gets USR1 the way the script's
``#SBATCH --signal=B:USR1@LEAD`` delivers it before the time limit (``scancel --signal=USR1
--batch``: the same signal to the same process, at a moment the test picks). The script passes it to
the driver, which checkpoints every running trial and exits 75; the script requeues the job; its
second run (``SLURM_RESTART_COUNT=1``, same job id, so the same experiment) resumes and finishes
every trial with no step trained twice and no row lost.
"""
from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from gensweep.cli import main as cli_main
from gensweep.cluster.localcluster import free_ports
from tests.slurm_server import SlurmCluster, processes_mentioning
from tests.sweep_interrupt_support import check_finished_after_stop, clean_env, has_checkpoint, tiny_spec

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def slurm():
    with SlurmCluster(cpus=2) as cluster:
        yield cluster


@pytest.fixture
def ray_tmp():
    d = tempfile.mkdtemp(prefix="gss-", dir="/tmp")  # short: Ray's socket paths must fit
    yield d
    for pid in _processes_of(d):  # a job's Ray left behind by a failed test: by PID
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    shutil.rmtree(d, ignore_errors=True)


def _processes_of(ray_tmp: str) -> list[int]:
    """PIDs of the processes of the job's Ray: its temp dir in their command line or environment."""
    return processes_mentioning(ray_tmp)


def _ray_env(tmp: Path, ray_tmp: str) -> dict[str, str]:
    """The job's environment: this Python's packages, and Ray on free ports in its own temp dir."""
    gcs, dash, client, agent, agent_grpc, runtime_env, metrics, node_manager, object_manager = free_ports(9)
    env = clean_env(tmp, ray_tmp)
    env.update(
        PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
        GENSWEEP_PYTHON=sys.executable,
        GENSWEEP_RAY_PORT=str(gcs),
        GENSWEEP_RAY_START_ARGS=" ".join([
            f"--temp-dir={ray_tmp}", "--include-dashboard=true", f"--dashboard-port={dash}",
            f"--ray-client-server-port={client}", f"--dashboard-agent-listen-port={agent}",
            f"--dashboard-agent-grpc-port={agent_grpc}", f"--runtime-env-agent-port={runtime_env}",
            f"--metrics-export-port={metrics}", f"--node-manager-port={node_manager}",
            f"--object-manager-port={object_manager}", f"--object-store-memory={200 * 1024**2}"]),
    )
    return env


def _wait(slurm, job_id, until, timeout_s, log):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = slurm.job_state(job_id)
        if until(state):
            return state
        time.sleep(0.5)
    raise AssertionError(f"job {job_id}: {slurm.job_state(job_id)} after {timeout_s} s\n"
                         f"{log.read_text(errors='replace')[-6000:] if log.exists() else ''}\n{slurm.logs()}")


def _release_requeued(slurm, job_id, log):
    """Start a requeued job now instead of after SLURM's hold, once what the hold waits for is past.

    SLURM holds a requeued job for the job credential's lifetime: until then slurmd refuses a new
    launch whose credential is no newer (whole seconds) than the one it revoked at the requeue
    ("already killed"), or while a step of the first run is still ending ("already running"),
    and the job ends FAILED without running. So: the node idle again (every step of the first run
    gone, its epilog done), then a new second, then the release."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and slurm.node_state() != "idle":
        time.sleep(0.5)
    assert slurm.node_state() == "idle", f"{slurm.node_state()}\n{log.read_text(errors='replace')[-3000:]}"
    time.sleep(2.0)
    slurm.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"])


def test_time_limit_signal_requeues_and_the_next_run_finishes_every_trial(slurm, tmp_path, ray_tmp):
    root = tmp_path / "results"
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(tiny_spec(root, name="slurmsweep")))
    script = tmp_path / "sweep.sbatch"
    assert cli_main(["cluster", "init", "slurm", str(script), "--spec", str(spec), "--cpus-per-node", "2",
                     "--time", "30", "--signal-lead", "120", "--python", sys.executable]) == 0
    text = script.read_text()
    assert "#SBATCH --signal=B:USR1@120" in text and "#SBATCH --requeue" in text

    env = {**_ray_env(tmp_path, ray_tmp), "SLURM_CONF": slurm.env["SLURM_CONF"]}
    out = slurm.run(["sbatch", "--parsable", f"--chdir={tmp_path}", str(script)], env=env, check=False)
    assert out.returncode == 0, out.stderr
    job_id = out.stdout.strip().split(";")[0]
    log = tmp_path / f"gensweep-{job_id}.log"
    experiment = f"slurmsweep-slurm-{job_id}"

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not has_checkpoint(root, experiment):
        assert slurm.job_state(job_id)[0] in ("PENDING", "RUNNING"), log.read_text(errors="replace")[-6000:]
        time.sleep(0.2)
    assert has_checkpoint(root, experiment), log.read_text(errors="replace")[-6000:]
    slurm.run(["scancel", "--signal=USR1", "--batch", job_id])  # what --signal=B:USR1@LEAD sends

    # requeued: pending again, restarted once; skip SLURM's hold before a requeued job may start
    _wait(slurm, job_id, lambda s: s[1] >= 1 and s[0] == "PENDING", 180, log)
    _release_requeued(slurm, job_id, log)
    state = _wait(slurm, job_id, lambda s: s[0] not in ("PENDING", "RUNNING", "REQUEUED", "COMPLETING"), 400, log)
    text = log.read_text(errors="replace")
    assert state[:2] == ("COMPLETED", 1) and state[2] == 0, f"{state}\n{text[-6000:]}\n{slurm.logs()}"
    assert "driver exited with status 75" in text and f"requeued job {job_id}" in text, text[-6000:]
    assert f"{experiment} is in" in text  # the second run resumed the experiment
    stopped = check_finished_after_stop(root, experiment)
    assert stopped, "no trial checkpointed at the signal"
    assert not _processes_of(ray_tmp), "the job left Ray processes running"
