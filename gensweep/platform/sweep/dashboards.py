"""Live dashboards of a sweep: optuna-dashboard, TensorBoard and the Ray dashboard.

* optuna-dashboard reads the sweep's Optuna study from the RDB storage the runner
  uses, ``sqlite:///<results root>/optuna.db``, one study per experiment (the study
  name is the experiment id).  :func:`optuna_dashboard_command` is the command line;
  :func:`start_optuna_dashboard` runs it on a free loopback port and returns once its
  HTTP API answers.
* TensorBoard: the sweep's ``TBXLoggerCallback`` (:mod:`.tensorboard`: scalars at the training
  step, sample grids as images) writes one ``events.out.tfevents.*``
  file per trial into the trial's directory under the run's storage path,
  ``<results root>/ray/<experiment>/<trial>/`` (see :func:`tensorboard_logdir`).
* The Ray dashboard of a local instance is served on 127.0.0.1:8265 while Ray runs
  (the runner prints its URL).

Everything binds to 127.0.0.1 only.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Optional, Sequence

from gensweep.platform.storage.layout import RootLayout

HOST = "127.0.0.1"
OPTUNA_DASHBOARD_PORT = 8080
TENSORBOARD_PORT = 6006
RAY_DASHBOARD_PORT = 8265


# ------------------------------------------------------------------- locations
def optuna_storage_url(results_root: str) -> str:
    """The Optuna storage URL the runner uses for a local results root."""
    url = RootLayout.of(results_root).optuna_url
    if url is None:
        raise ValueError(f"{results_root!r} is not a local results root; sweeps on it set "
                         "search.optuna_storage explicitly (pass that URL instead)")
    return url


def tensorboard_logdir(results_root: str, experiment: str) -> str:
    """Folder holding the TensorBoard event files of ``experiment``'s trials:
    ``<results root>/ray/<experiment>`` (one sub-folder per trial).

    ``experiment`` may also be a spec name: on a local root the latest run's folder
    (``<name>-<UTC time>``) is returned when no folder has that exact name.
    """
    base = RootLayout.of(results_root).ray
    path = f"{base}/{experiment}"
    if "://" not in base and not os.path.isdir(path) and os.path.isdir(base):
        runs = sorted(d for d in os.listdir(base)
                      if d.startswith(experiment + "-") and d[len(experiment) + 1:][:1].isdigit()
                      and os.path.isdir(os.path.join(base, d)))
        if runs:
            path = f"{base}/{runs[-1]}"
    return path


def tensorboard_event_files(logdir: str) -> list[str]:
    """The ``events.out.tfevents.*`` files under a local ``logdir``, sorted."""
    found = []
    for folder, _dirs, files in os.walk(logdir):
        found += [os.path.join(folder, f) for f in files if f.startswith("events.out.tfevents.")]
    return sorted(found)


# -------------------------------------------------------------------- commands
def optuna_dashboard_command(storage_url: str, port: int = OPTUNA_DASHBOARD_PORT, host: str = HOST) -> list[str]:
    """``optuna-dashboard <storage_url> --host 127.0.0.1 --port <port>``."""
    return ["optuna-dashboard", storage_url, "--host", host, "--port", str(int(port))]


def tensorboard_command(logdir: str, port: int = TENSORBOARD_PORT, host: str = HOST) -> list[str]:
    """``tensorboard --logdir <logdir> --host 127.0.0.1 --port <port>``."""
    return ["tensorboard", "--logdir", logdir, "--host", host, "--port", str(int(port))]


def ray_dashboard_url(host: str = HOST, port: int = RAY_DASHBOARD_PORT) -> str:
    return f"http://{host}:{port}"


def _executable(name: str) -> str:
    """``name`` on PATH, else next to this interpreter (a venv's bin/ that is not on PATH)."""
    found = shutil.which(name)
    if found:
        return found
    beside = os.path.join(os.path.dirname(sys.executable), name)
    if os.path.isfile(beside) and os.access(beside, os.X_OK):
        return beside
    raise FileNotFoundError(f"{name!r} is not installed (pip install 'gensweep[dashboard]')")


# ------------------------------------------------------------------- processes
def free_port(host: str = HOST) -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _tail(path: str, n: int = 4000) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - n))
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def stop_pid(pid: int, timeout_s: float = 10.0, proc: Optional[subprocess.Popen] = None) -> None:
    """SIGTERM ``pid``, wait up to ``timeout_s``, then SIGKILL it.  Only that one process."""
    def alive() -> bool:
        if proc is not None:
            return proc.poll() is None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    if not alive():
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        if proc is not None:
            proc.wait(timeout=timeout_s)


@dataclass
class DashboardProcess:
    """A dashboard server started by this module; stop it with :meth:`stop` (or ``with``)."""

    pid: int
    port: int
    url: str
    command: list[str]
    log_path: str
    proc: subprocess.Popen = field(repr=False)

    def stop(self, timeout_s: float = 10.0) -> Optional[int]:
        stop_pid(self.pid, timeout_s, self.proc)
        return self.proc.returncode

    def log(self) -> str:
        return _tail(self.log_path)

    def __enter__(self) -> "DashboardProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def wait_for_http(url: str, timeout_s: float, proc: Optional[subprocess.Popen] = None,
                  log_path: Optional[str] = None, interval_s: float = 0.25) -> bytes:
    """Poll ``url`` until it answers 200 (returns the body) or ``timeout_s`` passes
    (``TimeoutError``); ``RuntimeError`` as soon as ``proc`` exits."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before {url} answered:\n"
                               f"{_tail(log_path) if log_path else ''}")
        try:
            with urllib.request.urlopen(url, timeout=min(5.0, max(0.5, deadline - time.monotonic()))) as resp:
                if resp.status == 200:
                    return resp.read()
        except (urllib.error.URLError, ConnectionError, OSError) as exc:
            last = exc
        time.sleep(interval_s)
    raise TimeoutError(f"{url} did not answer within {timeout_s:.0f} s (last error: {last})")


def start_server(command: Sequence[str], port: int, ready_path: str, *, host: str = HOST,
                 timeout_s: float = 60.0, log_path: Optional[str] = None) -> DashboardProcess:
    """Start ``command`` (a server listening on ``host:port``) and wait until
    ``http://host:port<ready_path>`` answers 200.  On failure the process is stopped."""
    if log_path is None:
        fd, log_path = tempfile.mkstemp(prefix="gensweep-dashboard-", suffix=".log")
        os.close(fd)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(list(command), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://{host}:{port}"
    server = DashboardProcess(proc.pid, port, url, list(command), log_path, proc)
    try:
        wait_for_http(url + ready_path, timeout_s, proc, log_path)
    except BaseException:
        server.stop()
        raise
    return server


def start_optuna_dashboard(storage_url: str, port: Optional[int] = None, *, timeout_s: float = 60.0,
                           log_path: Optional[str] = None) -> DashboardProcess:
    """Run optuna-dashboard on ``storage_url`` at 127.0.0.1:``port`` (default: a free
    port) and return once ``/api/studies`` answers; ``.stop()`` ends it (by PID)."""
    port = port or free_port()
    command = optuna_dashboard_command(storage_url, port)
    command[0] = _executable(command[0])
    return start_server(command, port, "/api/studies", timeout_s=timeout_s, log_path=log_path)


def start_tensorboard(logdir: str, port: Optional[int] = None, *, timeout_s: float = 120.0,
                      log_path: Optional[str] = None) -> DashboardProcess:
    """Run TensorBoard on ``logdir`` at 127.0.0.1:``port`` and return once it answers."""
    port = port or free_port()
    command = tensorboard_command(logdir, port)
    command[0] = _executable(command[0])
    return start_server(command, port, "/data/logdir", timeout_s=timeout_s, log_path=log_path)
