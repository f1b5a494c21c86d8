"""A multi-node Ray cluster on one machine, started with ``ray start``: for tests and demos.

Each node is a real ``ray start`` (head: GCS, dashboard with the Jobs API, raylet; others:
a raylet joining the head), so job submission, the state API and multi-node scheduling
behave as on a real cluster. The cluster keeps to itself:

* its own temp dir (``--temp-dir``, one per node): its session files and its
  ``ray_current_cluster`` address file stay there, so a plain ``ray.init()`` elsewhere on the
  machine never connects to it (``ray.cluster_utils.Cluster`` writes
  ``/tmp/ray/ray_current_cluster``), and nodes do not share runtime-env folders;
* ``RAY_ADDRESS`` set for its processes, so Ray code that auto-detects "the" local cluster
  finds this one even when other Ray instances run on the machine;
* fresh free ports for every service (no fixed default port like 8265, 10001 or 52365);
* the dashboard on 127.0.0.1; token auth with a random per-cluster token (Ray's GCS and
  raylets still listen on all interfaces: Ray has no option to bind them to loopback);
* :meth:`stop` ends exactly its own processes - those whose command line names its temp
  dir - by PID (never ``ray stop``, which ends every Ray process on the machine).

Every node other than the head runs with its own ``HOME``, ``TMPDIR``, ``XDG_CACHE_HOME`` and
``GENSWEEP_CACHE`` (folders in the cluster's temp dir), as a separate machine would: anything a
driver keeps in its home or cache (``~/.cache/gensweep``) is not where that node's trials look.
They still share this machine's disk, so an absolute local path (such as a local
``results.root``) stands in for the shared storage (NFS) a real multi-node cluster needs; use an
``s3://`` root (the loopback S3 server in tests) for what a cluster without one does.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping, Optional


def free_ports(n: int) -> list[int]:
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


class LocalCluster:
    def __init__(self, *, temp_root: str = "/tmp", env: Optional[Mapping[str, str]] = None,
                 start_timeout_s: float = 180.0):
        # Short path: Ray's Unix socket paths must stay under ~107 characters.
        self.temp_dir = tempfile.mkdtemp(prefix="gsray-", dir=temp_root)
        self.token = secrets.token_hex(24)
        self.start_timeout_s = start_timeout_s
        ray_bin = Path(sys.executable).parent
        self.env = {
            **os.environ,
            "PATH": f"{ray_bin}{os.pathsep}{os.environ.get('PATH', '')}",
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": self.token,
            "RAY_USAGE_STATS_ENABLED": "0",
            **(env or {}),
        }
        self.env.pop("RAY_ADDRESS", None)  # set by start_head
        self.gcs_address: Optional[str] = None
        self.dashboard_url: Optional[str] = None
        self.nodes: list[dict[str, Any]] = []
        self._ray = str(ray_bin / "ray")

    # -- environment for clients of this cluster ----------------------------------------
    def client_env(self, **extra: str) -> dict[str, str]:
        """Environment for a process that talks to this cluster (driver or job client)."""
        env = {k: v for k, v in self.env.items()}
        env.update(extra)
        return env

    # -- nodes ------------------------------------------------------------------------------
    def _common_args(self, num_cpus: float, resources: Optional[Mapping[str, float]],
                     ports: Optional[list[int]] = None) -> list[str]:
        """``ray start`` arguments every node takes; ``ports``: six free ports drawn together with
        the caller's own (ports drawn in separate calls may repeat: the first call's are released)."""
        agent, agent_grpc, runtime_env, metrics, node_manager, object_manager = ports or free_ports(6)
        args = [
            "--num-cpus", str(num_cpus), "--num-gpus", "0", "--disable-usage-stats",
            "--dashboard-agent-listen-port", str(agent), "--dashboard-agent-grpc-port", str(agent_grpc),
            "--runtime-env-agent-port", str(runtime_env), "--metrics-export-port", str(metrics),
            "--node-manager-port", str(node_manager), "--object-manager-port", str(object_manager),
            "--min-worker-port", "0", "--max-worker-port", "0",
            "--object-store-memory", str(200 * 1024**2),
        ]
        if resources:
            args += ["--resources", json.dumps(dict(resources))]
        return args

    def _run(self, args: list[str], env: Optional[Mapping[str, str]] = None) -> None:
        proc = subprocess.run([self._ray, "start", *args], env=dict(env or self.env), capture_output=True, text=True,
                              timeout=self.start_timeout_s)
        if proc.returncode != 0:
            raise RuntimeError(f"ray start failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")

    def start_head(self, num_cpus: float = 1, resources: Optional[Mapping[str, float]] = None) -> "LocalCluster":
        from ray._private.services import get_node_ip_address

        gcs, dashboard, client, *node_ports = free_ports(9)
        # Ray replaces a loopback node IP by the machine's address. Every process of this
        # cluster gets RAY_ADDRESS, so Ray code that looks for "the" local cluster (e.g. Train's
        # placement-group cleaner calling the state API) finds this one, not another on the machine.
        self.env["RAY_ADDRESS"] = f"{get_node_ip_address()}:{gcs}"
        self._run(["--head", "--node-ip-address", "127.0.0.1", "--port", str(gcs), "--temp-dir", self.temp_dir,
                   "--include-dashboard", "true", "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard),
                   "--ray-client-server-port", str(client), *self._common_args(num_cpus, resources, node_ports)])
        self.gcs_address = (Path(self.temp_dir) / "ray_current_cluster").read_text().strip()
        self.env["RAY_ADDRESS"] = self.gcs_address
        self.dashboard_url = f"http://127.0.0.1:{dashboard}"
        self.nodes.append({"head": True, "num_cpus": num_cpus, "resources": dict(resources or {})})
        return self

    def add_node(self, num_cpus: float = 1, resources: Optional[Mapping[str, float]] = None, *,
                 own_home: bool = True) -> "LocalCluster":
        """Start a node joining the head; with ``own_home`` (the default) its processes get a
        home, temp and cache folders of their own (see the module docstring)."""
        if not self.gcs_address:
            raise RuntimeError("start_head() first")
        # Its own temp dir: nodes on one machine must not share a session dir, or one node's
        # runtime-env agent replaces the job's unpacked working dir under another node's processes.
        index = len(self.nodes)
        temp_dir = os.path.join(self.temp_dir, f"n{index}")
        env = self.node_env(index) if own_home else self.env
        self._run(["--address", self.gcs_address, "--temp-dir", temp_dir, *self._common_args(num_cpus, resources)],
                  env=env)
        self.nodes.append({"head": False, "num_cpus": num_cpus, "resources": dict(resources or {}),
                           "home": env["HOME"] if own_home else None})
        return self

    def node_env(self, index: int) -> dict[str, str]:
        """The environment of node ``index`` as if it were another machine: its own HOME, TMPDIR and caches."""
        home = os.path.join(self.temp_dir, f"home{index}")
        folders = {"HOME": home, "TMPDIR": os.path.join(home, "tmp"), "XDG_CACHE_HOME": os.path.join(home, ".cache"),
                   "GENSWEEP_CACHE": os.path.join(home, ".cache", "gensweep")}
        for folder in folders.values():
            os.makedirs(folder, exist_ok=True)
        return {**self.env, **folders}

    def wait_for_nodes(self, timeout_s: float = 60.0, count: Optional[int] = None) -> None:
        """Wait until the dashboard reports every started node alive (or ``count`` nodes: some were killed)."""
        import urllib.request

        deadline = time.monotonic() + timeout_s
        want = len(self.nodes) if count is None else count
        last = None
        while time.monotonic() < deadline:
            try:
                req = urllib.request.Request(f"{self.dashboard_url}/nodes?view=summary",
                                             headers={"Authorization": f"Bearer {self.token}"})
                with urllib.request.urlopen(req, timeout=10) as r:
                    body = json.loads(r.read())
                summary = body["data"]["summary"]
                alive = [n for n in summary if n.get("raylet", {}).get("state") == "ALIVE"]
                if len(alive) >= want:
                    return
                last = f"{len(alive)} of {want} nodes alive"
            except Exception as e:  # noqa: BLE001 - dashboard still starting
                last = repr(e)
            time.sleep(1.0)
        raise TimeoutError(f"cluster nodes not ready after {timeout_s}s: {last}")

    # -- teardown ---------------------------------------------------------------------------
    def pids(self) -> list[int]:
        """PIDs of this cluster's processes: those whose command line names its temp dir, and
        their descendants (a job's driver runs under the job supervisor without that mark)."""
        mark = self.temp_dir.encode()
        marked, parent = set(), {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if mark in f.read():
                        marked.add(int(entry))
                with open(f"/proc/{entry}/stat") as f:
                    parent[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
        found = set(marked)
        changed = True
        while changed:
            changed = False
            for pid, ppid in parent.items():
                if ppid in found and pid not in found:
                    found.add(pid)
                    changed = True
        return sorted(found)

    def stop(self, grace_s: float = 5.0) -> list[int]:
        """End this cluster's processes (SIGTERM, then SIGKILL after ``grace_s``); return leftovers."""
        for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
            pids = self.pids()
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait
            while pids and time.monotonic() < deadline:
                pids = [p for p in pids if _alive(p)]
                time.sleep(0.2)
        left = self.pids()
        if not left:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
        return left

    def __enter__(self) -> "LocalCluster":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
