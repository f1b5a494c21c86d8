"""Object storage goes away for 30 s mid-sweep; the sweep completes and no results row is lost.

The whole sweep lives on S3 (a loopback moto server of this module's own): results store,
artifacts (sample grids, resolved configs) and Tune/Train storage (experiment state and
checkpoints, through gensweep's retrying filesystem); only the prepared dataset and the
reference statistics are local. Clients reach moto through a TCP proxy on a port of their
own: the outage closes the proxy's listening socket and every open connection (connections
refused/reset, as when an endpoint goes down) and 30 s later listens again on the same port.
moto behind it keeps its state, as S3 does through an outage; restarting moto itself would
lose every object and test the emulator rather than the platform.

Checked: the sweep completes with no failed trial; the store holds exactly the results Tune
recorded (same (trial, step) pairs, no gap, no duplicate with different values), buffered and
retried writes included; writes really were retried during the outage; every sample grid is
on S3. The module also plants fake credentials (environment and a secrets file) and checks
they appear in no S3 object, no local file (data, cache, Ray logs) and no captured output.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from gensweep.platform.results import ResultsStore
from gensweep.platform.sweep.runner import run_sweep
from gensweep.platform.spec import parse_spec
from tests.ray_support import ray_local  # noqa: F401 - fixture
from tests.s3_server import S3Server, free_port

pytestmark = pytest.mark.slow

EXP = "s3-outage"
BUCKET = "gensweep-outage"
OUTAGE_S = 30.0
STEPS = [15, 30, 45]


class OutageProxy:
    """A loopback TCP proxy to ``backend_port`` that can go down and come back on its port."""

    def __init__(self, backend_port: int):
        self.backend_port = backend_port
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.downs: list[tuple[float, float]] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(128)
        s.settimeout(0.2)
        self._listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def down(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            conns, self._conns = self._conns, set()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def outage(self, seconds: float) -> None:
        t0 = time.time()
        self.down()
        time.sleep(seconds)
        self.up()
        self.downs.append((t0, time.time()))

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                backend = socket.create_connection(("127.0.0.1", self.backend_port), timeout=5)
            except OSError:
                client.close()
                continue
            backend.settimeout(None)
            client.settimeout(None)
            with self._lock:
                self._conns |= {client, backend}
            for a, b in ((client, backend), (backend, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            with self._lock:
                self._conns -= {src, dst}


@pytest.fixture(scope="module")
def s3_proxy(tmp_path_factory):
    """moto behind an outage proxy; the AWS environment points at the proxy."""
    import boto3

    tmp = tmp_path_factory.mktemp("s3outage")
    moto = S3Server(port=free_port()).start()
    proxy = OutageProxy(moto.port)
    proxy.up()
    moto.make_bucket(BUCKET)
    ray_tmp = tempfile.mkdtemp(prefix="gss-", dir="/tmp")
    planted = {"secret": "gsSECRET" + secrets.token_hex(12), "token": "gsTOKEN" + secrets.token_hex(12)}
    secrets_file = tmp / "creds.ini"
    secrets_file.write_text(f"[default]\naws_session_token = {planted['token']}\n")
    secrets_file.chmod(0o600)
    env = {
        "AWS_ENDPOINT_URL": proxy.endpoint,
        "AWS_ACCESS_KEY_ID": "AKIAGENSWEEPTEST",
        "AWS_SECRET_ACCESS_KEY": planted["secret"],
        "AWS_DEFAULT_REGION": "us-east-1",
        "RAY_TMPDIR": ray_tmp,
        "GENSWEEP_CACHE": str(tmp / "cache"),
        "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.1",
    }
    drop = ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "RAY_ADDRESS")
    saved = {k: os.environ.get(k) for k in (*env, *drop)}
    os.environ.update(env)
    for k in drop:
        os.environ.pop(k, None)
    direct = boto3.client("s3", endpoint_url=moto.endpoint, aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")
    try:
        yield {"tmp": tmp, "proxy": proxy, "planted": planted, "secrets_file": secrets_file, "s3": direct,
               "ray_tmp": ray_tmp}
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        proxy.down()
        moto.stop()
        shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def s3_world(s3_proxy, ray_local):
    """Ray started after the AWS environment points at the proxy: its workers inherit it."""
    return s3_proxy


class _Trial:
    def __init__(self, trial_id):
        self.trial_id, self.config, self.path = trial_id, {"loss": "ns"}, None


def test_results_callback_buffers_and_retries_through_an_outage(s3_proxy, caplog):
    """The driver side alone (no Ray): rows buffered before and during an outage all arrive once."""
    from gensweep.platform.results.callback import ResultsCallback

    caplog.set_level(logging.WARNING, logger="gensweep")
    proxy, root = s3_proxy["proxy"], f"s3://{BUCKET}/unit"
    cb = ResultsCallback(root, "unit", flush_every=1, flush_interval_s=0.0, deadline_s=2.0,
                         journal=s3_proxy["tmp"] / "unit-journal", record_experiment=False)
    t = _Trial("t1")
    cb.on_trial_start(0, [], t)
    cb.on_trial_result(0, [], t, {"step": 15, "fid": 15.0, "training_iteration": 1})
    assert len(ResultsStore.open(root).read("metrics", "unit")) == 1
    proxy.down()
    try:
        # a flush during the outage gives up after its deadline; the rows stay buffered, the sweep goes on
        cb.on_trial_result(0, [], t, {"step": 30, "fid": 30.0, "training_iteration": 2})
        assert cb._n_buffered == 1
        cb._pause_until = 0.0
        cb.on_trial_result(0, [], t, {"step": 45, "fid": 45.0, "training_iteration": 3})
        assert cb._n_buffered == 2
        # a flush that outlives the outage retries until the endpoint is back
        cb.deadline_s = 60.0
        cb._store = None
        threading.Timer(3.0, proxy.up).start()
        cb._pause_until = 0.0
        cb.on_trial_complete(0, [], t)
    finally:
        if proxy._listener is None:
            time.sleep(3.5)
    assert cb._n_buffered == 0
    store = ResultsStore.open(root)
    assert sorted(store.read("metrics", "unit", dedupe_rows=False)["step"]) == STEPS
    assert list(store.read("trials", "unit")["status"]) == ["completed"]
    assert any("retrying" in r.getMessage() for r in caplog.records)


def _keys(client, prefix: str) -> list[str]:
    """Object keys under ``prefix``, read straight from moto (not through the proxy)."""
    return [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]


def _objects(client, prefix: str = "") -> dict[str, bytes]:
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = client.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()
    return out


def test_results_survive_an_object_storage_outage(s3_world, caplog, capfd):
    caplog.set_level(logging.WARNING, logger="gensweep")
    tmp, proxy = s3_world["tmp"], s3_world["proxy"]
    root = f"s3://{BUCKET}/sweeps"
    spec = parse_spec({
        "name": "s3outage",
        "trainable": {"steps": 45, "eval_every": 15, "width": 8, "z_dim": 16, "batch_size": 32, "num_classes": 0,
                      "grid_size": 16},
        "space": {"loss": ["ns", "hinge"]},
        "search": {"algorithm": "random", "num_trials": 2, "max_concurrent": 2},
        "scheduler": {"kind": "none"},
        "resources": {"workers": 1, "cpus_per_worker": 0.9},
        "data": {"uri": str(tmp / "data" / "mnist-32"), "storage": {"secrets_file": str(s3_world["secrets_file"])}},
        "eval": {"num_samples": 200, "ref_samples": 1000, "metrics": ["fid"]},
        "results": {"root": root},
    })
    outage_error = []

    def cause_outage():  # as soon as a trial has its first checkpoint: two thirds of it still to run
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline:
            # Tune's trial folders (inline trials) or each trial's Train run (train trials)
            if any("/checkpoint_" in k for k in _keys(s3_world["s3"], f"sweeps/ray/{EXP}")):
                proxy.outage(OUTAGE_S)
                return
            time.sleep(0.3)
        outage_error.append("no checkpoint reached the bucket within the time limit")

    outage = threading.Thread(target=cause_outage, daemon=True)
    outage.start()
    outcome = run_sweep(spec, experiment=EXP, verbose=0)
    outage.join(timeout=OUTAGE_S + 30)
    assert not outage_error, outage_error
    assert proxy.downs, "the outage never happened"
    down_at, up_at = proxy.downs[0]

    assert outcome.num_errors == 0 and outcome.num_diverged == 0
    store = ResultsStore.open(root)
    trials = store.read("trials", EXP)
    assert sorted(trials["status"]) == ["completed", "completed"], trials[["trial_id", "status", "reason"]]

    # what Tune recorded (its own result.json of each trial, synced to S3) ...
    objects = _objects(s3_world["s3"])
    tune_rows = set()
    for key, body in objects.items():
        if key.startswith(f"sweeps/ray/{EXP}/") and key.endswith("/result.json"):
            for line in body.decode().splitlines():
                r = json.loads(line)
                tune_rows.add((r["trial_id"], r["step"]))
    assert len(tune_rows) == 2 * len(STEPS), sorted(tune_rows)
    # ... is exactly what the store holds
    metrics = store.read("metrics", EXP)
    assert set(zip(metrics["trial_id"], metrics["step"])) == tune_rows
    raw = store.read("metrics", EXP, dedupe_rows=False)
    for (tid, step), same in raw.groupby(["trial_id", "step"]):
        assert same["fid"].nunique() == 1, (tid, step)  # a re-sent row, never a different one
    # some of them were written after the outage began, i.e. buffered and retried through it
    written = metrics["written_at"].map(lambda t: t.timestamp())
    assert (written > down_at).any()
    # writes did fail during the outage and were retried (driver: log records; workers: their output)
    out = capfd.readouterr()
    retried = [r for r in caplog.records if "retrying" in r.getMessage()]
    retried += [ln for ln in (out.out + out.err).splitlines() if "failed (attempt" in ln and "retrying" in ln]
    assert retried, "no write was retried: the outage did not hit the sweep"
    # every sample grid made it to S3, outage or not
    for uri in metrics["sample_grid"]:
        assert objects[uri[len(f"s3://{BUCKET}/"):]][:8] == b"\x89PNG\r\n\x1a\n"

    # security: the planted credentials are nowhere
    needles = [v.encode() for v in s3_world["planted"].values()]
    hits = [f"s3://{BUCKET}/{k}" for k, body in objects.items() for n in needles if n in body]
    for base in (tmp, Path(s3_world["ray_tmp"])):
        for folder, _dirs, files in os.walk(base):
            if str(folder).startswith(str(s3_world["secrets_file"].parent)) and "creds.ini" in files:
                files = [f for f in files if f != "creds.ini"]  # the secrets file itself
            for name in files:
                try:
                    data = (Path(folder) / name).read_bytes()
                except OSError:
                    continue
                hits += [f"{folder}/{name}" for n in needles if n in data]
    hits += ["captured output" for n in needles if n.decode() in out.out + out.err]
    hits += ["log records" for n in needles for r in caplog.records if n.decode() in r.getMessage()]
    assert not hits, hits
