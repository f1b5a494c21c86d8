"""A single-host SLURM for tests: munged, slurmctld and slurmd on 127.0.0.1, with their own
slurm.conf, key, state folders (under a temp dir) and free ports; stopped by PID.

Needs Debian's ``slurm-wlm`` and ``munge`` packages and root (slurmd starts jobs as any user);
``.ci/run`` installs them, and without them the tests using this fail, never skip.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

from gensweep.cluster.localcluster import free_ports

NODE = "gsnode"
BINARIES = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo", "srun")


def _which(name: str) -> str:
    for folder in ("/usr/sbin", "/usr/bin", *os.environ.get("PATH", "").split(os.pathsep)):
        path = Path(folder) / name
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    raise RuntimeError(f"{name} not found: install Debian's slurm-wlm and munge (see .ci/run)")


def processes_mentioning(mark: str) -> list[int]:
    """PIDs of the processes (other than this one) with ``mark`` in their command line or environment."""
    needle = mark.encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f, open(f"/proc/{entry}/environ", "rb") as g:
                    if needle in f.read() or needle in g.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


class SlurmCluster:
    """``with SlurmCluster(cpus=2) as slurm: slurm.run(["sbatch", ...])``."""

    def __init__(self, cpus: int = 2, start_timeout_s: float = 60.0):
        self.bin = {name: _which(name) for name in BINARIES}
        if os.geteuid() != 0:
            raise RuntimeError("a test SLURM needs root (slurmd starts each job as its user)")
        self.dir = Path(tempfile.mkdtemp(prefix="gsslurm-", dir="/tmp"))
        self.dir.chmod(0o755)  # munged wants its socket folder reachable by every user
        self.cpus = cpus
        self.start_timeout_s = start_timeout_s
        self.procs: dict[str, subprocess.Popen] = {}
        self.conf = self.dir / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def _write_conf(self) -> None:
        ctld_port, d_port = free_ports(2)
        d = self.dir
        for sub in ("ctld", "spool", "log"):
            (d / sub).mkdir()
        self.conf.write_text(f"""\
ClusterName=gstest
SlurmctldHost={socket.gethostname()}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={d}/munge.sock
StateSaveLocation={d}/ctld
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/ctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
KillWait=10
MinJobAge=600
NodeName={NODE} NodeHostname={socket.gethostname()} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
""")

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.dir / "log" / f"{name}.out", "wb")
        self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                            start_new_session=True)

    def start(self) -> "SlurmCluster":
        self._write_conf()
        d = self.dir
        key = d / "munge.key"
        subprocess.run([self.bin["mungekey"], "--create", f"--keyfile={key}"], check=True, timeout=30)
        os.chmod(key, 0o600)
        self._spawn("munged", [self.bin["munged"], "-F", "-f", f"--socket={d}/munge.sock", f"--key-file={key}",
                               f"--pid-file={d}/munged.pid", f"--seed-file={d}/munged.seed",
                               f"--log-file={d}/log/munged.log"])
        self._wait(lambda: (d / "munge.sock").exists(), "munged's socket")
        self._spawn("slurmctld", [self.bin["slurmctld"], "-D", "-i", "-f", str(self.conf)])
        self._wait(lambda: self.run(["scontrol", "ping"], check=False).returncode == 0, "slurmctld")
        self._spawn("slurmd", [self.bin["slurmd"], "-D", "-f", str(self.conf), "-N", NODE])
        self._wait(lambda: "idle" in self.run(["sinfo", "-h", "-o", "%T"], check=False).stdout, "an idle node")
        return self

    def _wait(self, ready, what: str) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{', '.join(dead)} exited while waiting for {what}:\n{self.logs()}")
            if ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"no {what} within {self.start_timeout_s:.0f} s:\n{self.logs()}")

    def run(self, argv: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
        argv = [self.bin.get(argv[0], argv[0]), *argv[1:]]
        return subprocess.run(argv, capture_output=True, text=True, env=kw.pop("env", self.env), check=check,
                              timeout=kw.pop("timeout", 30), **kw)

    def job_state(self, job_id: str) -> tuple[str, int, Optional[int]]:
        """(state, restart count, exit status) of a job, from ``scontrol show job``."""
        out = self.run(["scontrol", "-o", "show", "job", job_id]).stdout
        fields = dict(part.split("=", 1) for part in out.split() if "=" in part)
        code = fields.get("ExitCode", "")
        return fields.get("JobState", ""), int(fields.get("Restarts", 0)), int(code.split(":")[0]) if code else None

    def node_state(self) -> str:
        """The node's state as ``sinfo`` gives it ("idle", "mixed", "completing", ...)."""
        return self.run(["sinfo", "-h", "-n", NODE, "-o", "%T"], check=False).stdout.strip()

    def processes(self) -> list[int]:
        """PIDs of processes this cluster started: slurmstepd and job scripts (``slurm_script`` under
        its spool folder) carry its folder in their command line or environment (``SLURM_CONF``)."""
        return processes_mentioning(str(self.dir))

    def logs(self) -> str:
        out = []
        for f in sorted((self.dir / "log").glob("*")):
            out.append(f"--- {f.name}\n{f.read_text(errors='replace')[-2000:]}")
        return "\n".join(out)

    def stop(self) -> None:
        if all(self.procs.get(n) is not None and self.procs[n].poll() is None for n in ("slurmctld", "slurmd")):
            # end the jobs first: slurmstepd kills each job's processes (Ray's among them)
            jobs = self.run(["squeue", "-h", "-o", "%i"], check=False).stdout.split()
            if jobs:
                self.run(["scancel", "--full", *jobs], check=False)
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and self.run(["squeue", "-h"], check=False).stdout.strip():
                    time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            p = self.procs.get(name)
            if p is None or p.poll() is not None:
                continue
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        # a job slurmd could not end (it stopped first, or a step would not die) leaves its
        # slurmstepd and slurm_script behind, orphaned: end them by PID
        for pid in self.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "SlurmCluster":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
