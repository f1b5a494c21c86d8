"""Submit a sweep to a Ray cluster as a Ray job, and list, follow and stop jobs.

A submission is the spec's folder (or ``--working-dir``) uploaded as the job's working
directory, the entrypoint ``python -m gensweep.cli run <spec> --address auto --experiment
<id>``, and a runtime env with a few environment variables and, on request, pip packages or
the local gensweep source. The spec is validated here first: a bad spec submits nothing.

Nothing secret goes into the runtime env: environment variables whose names look like
credentials are refused, and the cluster's nodes reach S3 with their own credentials
(instance profile, service account, or their own ``~/.aws``).
"""
from __future__ import annotations

import asyncio
import datetime as _dt
import os
import re
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, TextIO

from gensweep.cluster.auth import HOW_TO_AUTHENTICATE, auth_headers
from gensweep.cluster.templates import job_entrypoint
from gensweep.platform.storage.names import experiment_name_problem

DEFAULT_ADDRESS = "http://127.0.0.1:8265"
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})

# Uploading these would be slow or wrong: results, environments, caches, VCS data.
DEFAULT_EXCLUDES = (
    ".git", ".venv", "venv", ".env", "__pycache__", "*.pyc", ".pytest_cache", ".mypy_cache",
    "*.egg-info", ".ipynb_checkpoints", "node_modules", "gensweep_results", "ray_results", ".aws",
)
# Train V2 polls worker health every 2 s and each report waits for a poll (see runner.py);
# in a job these must reach every worker process, so they travel in the runtime env.
DEFAULT_ENV_VARS = {"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.1", "RAY_DEDUP_LOGS": "0"}
_SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSW|CREDENTIAL|ACCESS_KEY|PRIVATE_KEY|API_KEY", re.IGNORECASE)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SubmitError(ValueError):
    """A submission that cannot work; nothing was sent."""


class ClusterError(RuntimeError):
    """The cluster could not be reached or refused a request."""


@dataclass
class Submission:
    entrypoint: str
    runtime_env: dict[str, Any]
    metadata: dict[str, str]
    submission_id: str
    experiment: str
    results_root: str
    notes: list[str] = field(default_factory=list)

    def as_kwargs(self) -> dict[str, Any]:
        return {"entrypoint": self.entrypoint, "runtime_env": self.runtime_env, "metadata": self.metadata,
                "submission_id": self.submission_id}


def parse_env(items: Iterable[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings to a dict; credential-like names are refused."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not _ENV_NAME.match(key):
            raise SubmitError(f"--env {item!r}: expected KEY=VALUE")
        if _SECRET_NAME.search(key):
            raise SubmitError(
                f"--env {key}: looks like a credential; credentials never go in a job's runtime env "
                "(the cluster's nodes must get them from their own environment, profile or role)"
            )
        out[key] = value
    return out


def _is_url(path: str) -> bool:
    return "://" in path


def prepare_submission(
    spec_path: str | Path,
    *,
    working_dir: Optional[str | Path] = None,
    pip: Iterable[str] = (),
    with_gensweep: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    excludes: Iterable[str] = (),
    experiment: Optional[str] = None,
    results_root: Optional[str] = None,
    submission_id: Optional[str] = None,
) -> Submission:
    """Validate the spec and build the job: entrypoint, runtime env, metadata. Sends nothing.

    ``with_gensweep``: None (the cluster image has gensweep), ``"pip"`` (add
    ``gensweep==<this version>`` to the job's pip packages) or ``"ship"`` (upload this
    installation's ``gensweep`` package with the job, as a ``py_modules`` entry).
    """
    from gensweep.platform.spec import load_spec
    from gensweep.platform.sweep.setup import experiment_id

    spec_path = Path(spec_path)
    spec = load_spec(spec_path)  # SpecError: nothing submitted
    if results_root:
        spec = spec.model_copy(update={"results": spec.results.model_copy(update={"root": results_root})})
    root = spec.results.root
    notes: list[str] = []
    if not _is_url(root) and not Path(root).expanduser().is_absolute():
        raise SubmitError(
            f"results.root {root!r} is a relative path: in a job it would land in the job's temporary "
            "working directory on the head node and be lost. Use s3://bucket/prefix (or an absolute path "
            "on storage every node mounts), in the spec or with --results-root."
        )
    if not _is_url(root):
        notes.append(f"results.root {root} is a local path: every node of the cluster must see the same "
                     "folder there (a shared file system); otherwise use s3://")
    if spec.data.uri and not _is_url(spec.data.uri) and not Path(spec.data.uri).expanduser().is_absolute():
        raise SubmitError(f"data.uri {spec.data.uri!r} is a relative path; use s3:// or an absolute shared path")

    wd = Path(working_dir).expanduser().resolve() if working_dir else spec_path.resolve().parent
    if not wd.is_dir():
        raise SubmitError(f"--working-dir {wd} is not a folder")
    try:
        rel_spec = spec_path.resolve().relative_to(wd).as_posix()
    except ValueError:
        raise SubmitError(f"the spec {spec_path} must be inside the working directory {wd} "
                          "(it is uploaded with it); move it there or pick another --working-dir") from None

    exclude = list(DEFAULT_EXCLUDES) + list(excludes)
    if not _is_url(root):
        try:
            exclude.append("/" + Path(root).expanduser().resolve().relative_to(wd).as_posix())
        except ValueError:
            pass
    secrets_file = spec.data.storage.secrets_file if spec.data.storage else None
    if secrets_file:
        exclude += _secrets_excludes(secrets_file, wd)
        notes.append(f"data.storage.secrets_file {secrets_file} is not uploaded (credentials never travel in a job):"
                     " the cluster's nodes read it at that path if they have it, else use their own credentials")

    env_vars = dict(DEFAULT_ENV_VARS)
    for key in env or {}:
        parse_env([f"{key}={env[key]}"])  # same checks as the command line
    env_vars.update(env or {})

    runtime_env: dict[str, Any] = {"working_dir": str(wd), "excludes": exclude, "env_vars": env_vars}
    pip = [p for p in pip if p]
    if with_gensweep == "pip":
        pip.append(f"gensweep=={_gensweep_version()}")
    elif with_gensweep == "ship":
        import gensweep

        runtime_env["py_modules"] = [str(Path(gensweep.__file__).resolve().parent)]
    elif with_gensweep is not None:
        raise SubmitError(f"with_gensweep must be None, 'pip' or 'ship', got {with_gensweep!r}")
    if pip:
        runtime_env["pip"] = pip

    experiment = experiment or experiment_id(spec)
    problem = experiment_name_problem(experiment)
    if problem:
        raise SubmitError(problem)
    submission_id = submission_id or f"gensweep-{experiment}-{secrets.token_hex(3)}"
    entrypoint = job_entrypoint(rel_spec, results_root=results_root, experiment=experiment)
    metadata = {"gensweep_spec": spec.name, "gensweep_experiment": experiment, "gensweep_results_root": root}
    return Submission(entrypoint, runtime_env, metadata, submission_id, experiment, root, notes)


def _secrets_excludes(secrets_file: str, wd: Path) -> list[str]:
    """Upload patterns that leave the secrets file out, however its path is read: as given, from
    here, and from the job's working directory (where a relative path lands on the cluster)."""
    given = Path(secrets_file).expanduser()
    candidates = [given] if given.is_absolute() else [Path.cwd() / given, wd / given]
    out = []
    for path in candidates:
        try:
            out.append("/" + path.resolve().relative_to(wd).as_posix())
        except ValueError:  # outside the working directory: never uploaded
            pass
    return sorted(set(out))


def _gensweep_version() -> str:
    import importlib.metadata

    return importlib.metadata.version("gensweep")


# -- the client --------------------------------------------------------------------------


def resolve_address(address: Optional[str]) -> str:
    addr = address or os.environ.get("RAY_API_SERVER_ADDRESS") or DEFAULT_ADDRESS
    return addr if "://" in addr else f"http://{addr}"


def connect(address: Optional[str] = None, token_file: Optional[str] = None):
    """A ``JobSubmissionClient`` for the dashboard at ``address``, with the auth header if any."""
    from ray.job_submission import JobSubmissionClient

    from gensweep.cluster.auth import TokenError

    addr = resolve_address(address)
    try:
        headers = auth_headers(addr, token_file)
    except TokenError as e:
        raise ClusterError(str(e)) from None
    _forget_cached_ray_token()
    try:
        return JobSubmissionClient(addr, headers=headers or None)
    except Exception as e:  # noqa: BLE001 - Ray raises several types; map them to one message
        raise _cluster_error(e, addr) from None


def _forget_cached_ray_token() -> None:
    """Ray's client adds the token its process first loaded when we send none; after an earlier
    ``ray.init`` in this process that is another cluster's token. Make it re-read the sources now."""
    try:
        from ray._raylet import AuthenticationTokenLoader
    except ImportError:  # a Ray without token auth: nothing is cached
        return
    AuthenticationTokenLoader.instance().reset_cache()


def _cluster_error(e: Exception, address: str) -> ClusterError:
    text = str(e)
    if text.startswith("Authentication failed") or "Forbidden" in text:  # HTTP 403
        return ClusterError(f"{address}: the Ray auth token was refused (wrong token for this cluster)")
    if type(e).__name__ == "AuthenticationError" or "Unauthorized" in text:  # HTTP 401
        return ClusterError(f"{address}: {HOW_TO_AUTHENTICATE}")
    first = text.strip().splitlines()[0] if text.strip() else type(e).__name__
    return ClusterError(f"cannot use the Ray Jobs API at {address}: {first}")


def call(fn: Callable, *args: Any, address: str = "", **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001
        raise _cluster_error(e, address) from None


def dashboard_job_url(address: str, job_id: str) -> str:
    return f"{resolve_address(address).rstrip('/')}/#/jobs/{job_id}"


def submit(client: Any, submission: Submission, address: str = "") -> str:
    return call(client.submit_job, address=address, **submission.as_kwargs())


def wait_for_job(client: Any, job_id: str, *, timeout_s: Optional[float] = None, follow: bool = False,
                 out: Optional[TextIO] = None, poll_s: float = 1.0, address: str = "") -> str:
    """Wait for a terminal status (printing the log as it grows if ``follow``) and return it.

    Raises ``TimeoutError`` after ``timeout_s`` seconds (None: no limit).
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    if follow:
        try:
            asyncio.run(_tail(client, job_id, out or sys.stdout, deadline))
        except TimeoutError:
            raise
        except Exception:  # noqa: BLE001 - a broken stream: fall back to polling
            pass
    while True:
        status = str(call(client.get_job_status, job_id, address=address))
        if status in TERMINAL:
            return status
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"job {job_id} still {status} after {timeout_s:g}s")
        time.sleep(poll_s)


async def _tail(client: Any, job_id: str, out: TextIO, deadline: Optional[float]) -> None:
    async def pump() -> None:
        async for chunk in client.tail_job_logs(job_id):
            out.write(chunk)
            out.flush()

    if deadline is None:
        await pump()
        return
    try:
        await asyncio.wait_for(pump(), timeout=max(0.0, deadline - time.monotonic()))
    except asyncio.TimeoutError:
        raise TimeoutError(f"job {job_id} did not finish in time") from None


def stop_job(client: Any, job_id: str, *, wait: bool = True, timeout_s: float = 60.0, address: str = "") -> str:
    """Ask the job to stop; with ``wait``, return its terminal status (normally STOPPED)."""
    call(client.stop_job, job_id, address=address)
    if not wait:
        return str(call(client.get_job_status, job_id, address=address))
    return wait_for_job(client, job_id, timeout_s=timeout_s, address=address)


def job_rows(client: Any, address: str = "") -> list[dict[str, str]]:
    """One row per job, newest first: id, status, start time, experiment, entrypoint."""
    rows = []
    for job in call(client.list_jobs, address=address):
        meta = job.metadata or {}
        start = (_dt.datetime.fromtimestamp(job.start_time / 1000, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
                 if job.start_time else "")
        rows.append({
            "job": job.submission_id or job.job_id or "",
            "status": str(job.status),
            "started (UTC)": start,
            "experiment": meta.get("gensweep_experiment", ""),
            "entrypoint": job.entrypoint if len(job.entrypoint) <= 60 else job.entrypoint[:57] + "...",
            "_start": job.start_time or 0,
        })
    rows.sort(key=lambda r: r["_start"], reverse=True)
    for r in rows:
        del r["_start"]
    return rows


def format_rows(rows: list[dict[str, str]]) -> str:
    if not rows:
        return "(no jobs)"
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    lines = ["  ".join(c.ljust(widths[c]) for c in cols)]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in cols) for r in rows]
    return "\n".join(line.rstrip() for line in lines)
