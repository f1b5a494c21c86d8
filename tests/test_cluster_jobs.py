"""Ray jobs and multi-node sweeps on a real two-node Ray cluster on this machine.

The cluster is two `ray start` nodes (head: 2 CPUs + {"gs_head": 1}; worker: 2 CPUs +
{"gs_worker": 1}) with token auth, its own temp dirs and free ports, the dashboard on
127.0.0.1; it is stopped by PID at the end (see gensweep.cluster.localcluster). Trials use
1.5 CPUs per Train worker (``launcher: train``: the multi-node test checks where Ray Train placed
each trial's worker), so two concurrent trials cannot share a node.

The worker node runs with its own HOME, TMPDIR and caches (as another machine would), so a
driver-local path (``~/.cache/gensweep``) is not where its trials look. Both nodes still see this
machine's disk: a local results root stands in for shared storage (NFS); the s3:// sweep uses the
loopback S3 server, whose endpoint and fake keys every node gets in its environment.
"""
from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from gensweep.cli import main as cli_main
from gensweep.cluster import jobs
from gensweep.cluster.localcluster import LocalCluster
from gensweep.platform.metrics.refstats import RefStatsRegistry
from gensweep.platform.results import ResultsStore

pytestmark = pytest.mark.slow

TINY = {
    "trainable": {"steps": 30, "eval_every": 15, "width": 8, "z_dim": 16, "batch_size": 32, "num_classes": 0},
    "space": {"loss": ["ns", "hinge"], "lr": {"type": "loguniform", "low": 1e-4, "high": 1e-3}},
    "search": {"algorithm": "optuna-tpe", "num_trials": 2, "max_concurrent": 2},
    "scheduler": {"kind": "asha", "grace_period": 2},
    "resources": {"workers": 1, "cpus_per_worker": 1.5, "launcher": "train"},
    "eval": {"num_samples": 200, "ref_samples": 1000, "metrics": ["fid"]},
}
JOB_TIMEOUT_S = 420


@pytest.fixture(scope="module")
def cluster(s3_server):
    c = LocalCluster(env={"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.1", **s3_server.env()})
    try:
        c.start_head(2, {"gs_head": 1})
        c.add_node(2, {"gs_worker": 1})
        c.wait_for_nodes(timeout_s=120)
        yield c
    finally:
        left = c.stop()
        assert not left, f"cluster processes left running: {left}"


@pytest.fixture(scope="module")
def results_root(tmp_path_factory):
    # shared by the sweeps of this module: the dataset and reference statistics are prepared once
    return tmp_path_factory.mktemp("cluster-results")


@pytest.fixture
def address(cluster, monkeypatch):
    """The dashboard URL, with this cluster's token where a client finds it ($RAY_AUTH_TOKEN)."""
    monkeypatch.setenv("RAY_AUTH_TOKEN", cluster.token)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    return cluster.dashboard_url


def write_spec(folder: Path, name: str, root: Path, **overrides) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump({"name": name, **TINY, **overrides, "results": {"root": str(root)}}))
    return path


def submitted_id(out: str) -> str:
    m = re.search(r"submitted job (\S+)", out)
    assert m, out
    return m.group(1)


def test_clients_need_the_token(cluster, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ray/auth_token to fall back on
    for var in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
        monkeypatch.delenv(var, raising=False)
    assert cli_main(["jobs", "list", "--address", cluster.dashboard_url]) == 2
    assert "requires a Ray auth token" in capsys.readouterr().err
    bad = tmp_path / "wrong-token"
    bad.write_text("0" * 48)
    assert cli_main(["jobs", "list", "--address", cluster.dashboard_url, "--token-file", str(bad)]) == 2
    assert "refused" in capsys.readouterr().err
    good = tmp_path / "token"
    good.write_text(cluster.token)
    assert cli_main(["jobs", "list", "--address", cluster.dashboard_url, "--token-file", str(good)]) == 0


def test_bad_spec_is_not_submitted(address, tmp_path, capsys):
    before = {r["job"] for r in jobs.job_rows(jobs.connect(address))}
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: bad\nscheduler: {kind: bohb}\nresults: {root: /tmp/x}\n")
    assert cli_main(["submit", str(spec), "--address", address, "--timeout", "120"]) == 2  # bounded if submitted
    assert "scheduler.kind" in capsys.readouterr().err
    assert {r["job"] for r in jobs.job_rows(jobs.connect(address))} == before


def test_stop_a_running_sweep_job(address, tmp_path, capsys):
    long = {**TINY["trainable"], "steps": 100_000, "eval_every": 50_000}
    spec = write_spec(tmp_path / "long", "long", tmp_path / "results", trainable=long)
    assert cli_main(["submit", str(spec), "--address", address, "--experiment", "stopme", "--no-wait"]) == 0
    job_id = submitted_id(capsys.readouterr().out)

    client = jobs.connect(address)
    deadline = time.monotonic() + 120
    while (status := str(client.get_job_status(job_id))) == "PENDING" and time.monotonic() < deadline:
        time.sleep(1)
    assert status == "RUNNING"

    assert cli_main(["jobs", "stop", job_id, "--address", address, "--timeout", "90"]) == 0
    assert capsys.readouterr().out.strip() == f"{job_id}: STOPPED"
    assert cli_main(["jobs", "status", job_id, "--address", address]) == 0
    assert capsys.readouterr().out.startswith(f"{job_id}: STOPPED")
    assert cli_main(["jobs", "list", "--address", address]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(job_id))
    assert "STOPPED" in row and "stopme" in row


def test_submitted_sweep_succeeds_and_writes_the_store(address, tmp_path, results_root, capsys):
    spec = write_spec(tmp_path / "proj", "jobsweep", results_root)
    t0 = time.monotonic()
    rc = cli_main(["submit", str(spec), "--address", address, "--experiment", "jobsweep",
                   "--timeout", str(JOB_TIMEOUT_S)])
    out = capsys.readouterr().out
    print(f"job sweep: {time.monotonic() - t0:.0f}s")
    job_id = submitted_id(out)
    assert rc == 0, out[-5000:]
    assert f"[gensweep] dashboard: {address}/#/jobs/{job_id}" in out
    assert f"[gensweep] job {job_id}: SUCCEEDED" in out
    assert "[gensweep] experiment jobsweep" in out  # the driver's log, followed while it ran

    store = ResultsStore.open(str(results_root))
    metrics = store.read("metrics", "jobsweep")
    assert metrics["trial_id"].nunique() == 2
    for _, rows in metrics.groupby("trial_id"):
        assert sorted(rows["step"]) == [15, 30] and (rows["fid"] > 0).all()
    assert sorted(store.read("trials", "jobsweep")["status"]) == ["completed", "completed"]

    assert cli_main(["jobs", "logs", job_id, "--address", address]) == 0
    assert "[gensweep] experiment jobsweep" in capsys.readouterr().out


def test_shipped_gensweep_is_what_the_job_imports(address, tmp_path):
    spec = write_spec(tmp_path / "ship", "ship", tmp_path / "results")
    sub = jobs.prepare_submission(spec, with_gensweep="ship", experiment="ship")
    client = jobs.connect(address)
    job_id = client.submit_job(entrypoint="python -c 'import gensweep; print(\"FROM\", gensweep.__file__)'",
                               runtime_env=sub.runtime_env)
    assert jobs.wait_for_job(client, job_id, timeout_s=180) == "SUCCEEDED", client.get_job_logs(job_id)
    line = next(x for x in client.get_job_logs(job_id).splitlines() if x.startswith("FROM "))
    assert "/runtime_resources/py_modules_files/" in line  # the uploaded copy, not the installed one


DRIVER = r"""
import json, sys
import ray
from ray.util.state import list_actors
from gensweep.platform.sweep.runner import run_sweep
from gensweep.platform.spec import load_spec

spec, address, experiment = load_spec(sys.argv[1]), sys.argv[2], sys.argv[3]
outcome = run_sweep(spec, address=address, experiment=experiment, verbose=0)
job_id = ray.get_runtime_context().get_job_id()
workers = list_actors(filters=[("class_name", "=", "RayTrainWorker"), ("job_id", "=", job_id)],
                      detail=True, limit=1000, raise_on_missing_output=False)
nodes = {n["NodeID"]: sorted(k for k in n["Resources"] if k.startswith("gs_")) for n in ray.nodes()}
print("RESULT " + json.dumps({"errors": outcome.num_errors, "worker_nodes": [w.node_id for w in workers],
                              "nodes": nodes}), flush=True)
"""


def run_driver(cluster: LocalCluster, spec: Path, experiment: str, **env: str) -> dict:
    """Run DRIVER's sweep on the cluster from a separate process; its RESULT line, checked for errors."""
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(spec), cluster.gcs_address, experiment],
                          env=cluster.client_env(**env), capture_output=True, text=True, timeout=JOB_TIMEOUT_S)
    print(f"{experiment} sweep: {time.monotonic() - t0:.0f}s")
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert proc.returncode == 0 and line, (proc.stdout[-3000:], proc.stderr[-5000:])
    result = json.loads(line[len("RESULT "):])
    assert result["errors"] == 0
    return result


def test_sweep_runs_trials_on_both_nodes(cluster, tmp_path, results_root):
    trainable = {**TINY["trainable"], "steps": 15}
    spec = write_spec(tmp_path / "multi", "multinode", results_root, trainable=trainable)
    result = run_driver(cluster, spec, "multinode")

    # each trial's Train worker ran on its own node: one on the head, one on the worker node
    kinds = sorted(tuple(result["nodes"][n]) for n in result["worker_nodes"])
    assert kinds == [("gs_head",), ("gs_worker",)], result

    metrics = ResultsStore.open(str(results_root)).read("metrics", "multinode")
    assert metrics["trial_id"].nunique() == 2 and set(metrics["step"]) == {15}


def test_s3_sweep_trials_on_the_second_node_find_the_reference_statistics(cluster, s3_server, tmp_path,
                                                                          monkeypatch):
    for key, value in s3_server.env().items():  # this process reads the store too
        monkeypatch.setenv(key, value)
    bucket = f"gensweep-{uuid.uuid4().hex[:10]}"
    s3_server.make_bucket(bucket)
    root = f"s3://{bucket}/results"
    trainable = {**TINY["trainable"], "steps": 15}
    spec = write_spec(tmp_path / "s3multi", "s3multi", root, trainable=trainable)
    driver_cache = tmp_path / "driver-cache"
    result = run_driver(cluster, spec, "s3multi", GENSWEEP_CACHE=str(driver_cache))
    kinds = sorted(tuple(result["nodes"][n]) for n in result["worker_nodes"])
    assert kinds == [("gs_head",), ("gs_worker",)], result  # one trial ran on the node with its own HOME

    metrics = ResultsStore.open(root).read("metrics", "s3multi")
    assert metrics["trial_id"].nunique() == 2 and (metrics["fid"] > 0).all()
    # the statistics are in the store, with their floor, and every row carries that floor
    registry = RefStatsRegistry(f"{root}/refstats")
    sidecars = [n for n in registry.folder.names() if n.endswith(".json")]
    assert [s[: -len(".json")] for s in sidecars] == list(set(metrics["refstats_key"]))
    floor = json.loads(registry.folder.read(sidecars[0]))["fid_floor"]
    assert math.isfinite(floor) and floor > 0 and (metrics["fid_floor"] == floor).all()
    assert not (driver_cache / "refstats").exists()  # nothing on the driver's own disk for the workers
