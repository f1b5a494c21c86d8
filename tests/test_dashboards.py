"""Dashboards: optuna-dashboard on a sweep's study (live, over HTTP) and TensorBoard log locations."""
from __future__ import annotations

import json
import urllib.request

import pytest

from gensweep.platform.sweep import dashboards
from gensweep.platform.sweep.dashboards import (
    optuna_dashboard_command,
    optuna_storage_url,
    start_optuna_dashboard,
    tensorboard_command,
    tensorboard_logdir,
)

EXPERIMENT = "mnist-gan-quick-20250301-120000"


def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=30) as resp:
        assert resp.status == 200
        return json.loads(resp.read())


def test_commands_and_locations(tmp_path):
    url = "sqlite:////data/results/optuna.db"
    assert optuna_dashboard_command(url) == ["optuna-dashboard", url, "--host", "127.0.0.1", "--port", "8080"]
    assert optuna_dashboard_command(url, port=9000)[-1] == "9000"
    assert tensorboard_command("/r/ray/x") == ["tensorboard", "--logdir", "/r/ray/x", "--host", "127.0.0.1",
                                               "--port", "6006"]
    root = tmp_path / "results"
    # the runner's storage: sqlite:///<absolute results root>/optuna.db
    assert optuna_storage_url(str(root)) == f"sqlite:///{root}/optuna.db"
    with pytest.raises(ValueError):
        optuna_storage_url("s3://bucket/results")
    # Tune's storage path is <root>/ray, its run folder is named after the experiment
    assert tensorboard_logdir(str(root), EXPERIMENT) == f"{root}/ray/{EXPERIMENT}"
    for run in ("mnist-gan-quick-20250101-000000", EXPERIMENT, "mnist-gan-quicker-20260101-000000"):
        (root / "ray" / run).mkdir(parents=True)
    assert tensorboard_logdir(str(root), "mnist-gan-quick") == f"{root}/ray/{EXPERIMENT}"  # latest run
    # the event files Tune's TBXLoggerCallback writes, one folder per trial
    trial = root / "ray" / EXPERIMENT / "run_trial_abc_00000_0"
    trial.mkdir()
    (trial / "events.out.tfevents.1700000000.host").write_bytes(b"")
    (trial / "progress.csv").write_text("")
    assert dashboards.tensorboard_event_files(tensorboard_logdir(str(root), EXPERIMENT)) == \
        [str(trial / "events.out.tfevents.1700000000.host")]


# Loopback as /proc/net/tcp{,6} write it: 127.0.0.0/8 (little-endian, first byte last) and ::1.
_IPV6_LOOPBACK = "00000000000000000000000001000000"


def _listen_addresses(port: int) -> list[str]:
    """Local addresses (hex, as in /proc/net/tcp and /proc/net/tcp6) of the sockets listening on ``port``."""
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as handle:  # Linux only, like the rest of these tests; a missing table is a failure
            lines = handle.read().splitlines()[1:]
        for line in lines:
            fields = line.split()
            addr, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                out.append(addr)
    return out


def _on_loopback_only(addresses: list[str]) -> bool:
    """Something listens, and only on loopback addresses (IPv4 or IPv6)."""
    return bool(addresses) and all(
        (len(a) == 8 and a.endswith("7F")) or a == _IPV6_LOOPBACK for a in addresses)


@pytest.mark.parametrize("family,host,expected", [
    ("AF_INET", "127.0.0.1", True), ("AF_INET6", "::1", True),
    ("AF_INET", "0.0.0.0", False), ("AF_INET6", "::", False),
])
def test_the_loopback_check_sees_every_address_family(family, host, expected):
    """The check above would pass a server bound to :: if it read /proc/net/tcp only."""
    import socket

    sock = socket.socket(getattr(socket, family), socket.SOCK_STREAM)
    try:
        sock.bind((host, 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        assert _on_loopback_only(_listen_addresses(port)) is expected, _listen_addresses(port)
    finally:
        sock.close()


def _make_sweep_study(storage_url: str, study_name: str, n_trials: int) -> None:
    """What a finished optuna-tpe sweep leaves in its RDB storage (OptunaSearch with a study name)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=optuna.storages.RDBStorage(storage_url), study_name=study_name,
                                direction="minimize", sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial):
        loss = trial.suggest_categorical("loss", ["hinge", "ns"])
        lr = trial.suggest_float("lr", 1e-5, 1e-2, log=True)
        return (20.0 if loss == "hinge" else 40.0) + 1000 * lr

    study.optimize(objective, n_trials=n_trials)


def test_optuna_dashboard_serves_the_sweep_study(tmp_path):
    root = tmp_path / "results"
    root.mkdir()
    url = optuna_storage_url(str(root))
    _make_sweep_study(url, EXPERIMENT, n_trials=4)
    _make_sweep_study(url, "other-20250101-000000", n_trials=2)

    server = start_optuna_dashboard(url, timeout_s=120, log_path=str(tmp_path / "dashboard.log"))
    try:
        assert server.url.startswith("http://127.0.0.1:")
        assert server.command[1:] == [url, "--host", "127.0.0.1", "--port", str(server.port)]
        studies = {s["study_name"]: s for s in _get_json(server.url + "/api/studies")["study_summaries"]}
        assert set(studies) == {EXPERIMENT, "other-20250101-000000"}
        assert studies[EXPERIMENT]["directions"] == ["minimize"]
        detail = _get_json(f"{server.url}/api/studies/{studies[EXPERIMENT]['study_id']}")
        assert detail["name"] == EXPERIMENT
        assert [t["state"] for t in detail["trials"]] == ["Complete"] * 4
        assert {p["name"] for t in detail["trials"] for p in t["params"]} == {"loss", "lr"}
        assert len(detail["best_trials"]) == 1
        # it listens on loopback only
        listening = _listen_addresses(server.port)
        assert _on_loopback_only(listening), listening
    finally:
        server.stop(timeout_s=15)
    assert server.proc.returncode is not None  # stopped, by its PID
    with pytest.raises(OSError):
        urllib.request.urlopen(server.url + "/api/studies", timeout=5)


def test_start_fails_fast_on_a_bad_storage(tmp_path):
    with pytest.raises(RuntimeError, match="exited"):
        start_optuna_dashboard("notadb:///nowhere", timeout_s=120, log_path=str(tmp_path / "bad.log"))


def test_stop_pid_ends_only_that_process(tmp_path):
    import subprocess
    import sys

    a = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    b = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dashboards.stop_pid(a.pid, timeout_s=10, proc=a)
        assert a.returncode is not None and b.poll() is None
    finally:
        b.kill()
        b.wait()
