"""What an experiment was run with, recorded in its ``experiments`` row: the spec, the seed,
the git commit of the driver's checkout and the versions of Python and key packages."""
from __future__ import annotations

import datetime as _dt
import importlib.metadata
import os
import subprocess
from typing import Any, Mapping

from .schema import to_json

_VERSION_PACKAGES = ("ray", "torch", "pyarrow", "pandas", "numpy", "gensweep")


def runtime_versions() -> dict[str, str]:
    """Python and key package versions (not importing anything heavy)."""
    import platform
    import sys

    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in _VERSION_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def git_commit(path: str | None = None) -> str | None:
    """``HEAD`` of the git checkout at ``path`` (cwd by default), or None."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=path or os.getcwd(),
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else None


def experiment_row(
    experiment: str,
    status: str,
    *,
    spec: Mapping[str, Any] | str | None,
    versions: Mapping[str, str] | None,
    git_commit_sha: str | None,
    seed: int | None,
    started_at: _dt.datetime | None,
    **extra: Any,
) -> dict[str, Any]:
    """An ``experiments`` row (``status``: ``running`` at setup, ``completed`` at the end).

    ``spec`` is stored as JSON when it is a mapping, as given when it is text; ``versions``
    default to :func:`runtime_versions`.
    """
    if isinstance(spec, Mapping):
        spec = to_json(spec)
    return {
        "experiment": experiment,
        "spec": spec,
        "versions": to_json(versions if versions is not None else runtime_versions()),
        "git_commit": git_commit_sha,
        "seed": seed,
        "started_at": started_at,
        "ended_at": None,
        "status": status,
        **extra,
    }
