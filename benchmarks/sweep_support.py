"""What the sweep benchmarks share: a results root, one local Ray instance, markdown output."""
from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import tempfile
from typing import Any, Iterator

import pandas as pd


@contextlib.contextmanager
def results_root(root: str | None) -> Iterator[str]:
    """The given root (kept), or a temporary one removed at the end."""
    if root:
        yield root
        return
    with tempfile.TemporaryDirectory(prefix="gensweep-bench-") as tmp:
        yield tmp


@contextlib.contextmanager
def local_ray(num_cpus: int) -> Iterator[None]:
    """One local Ray instance (dashboard on loopback: the sweep needs the State API) for every sweep."""
    import ray

    from gensweep.platform.sweep.setup import start_ray

    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    start_ray(num_cpus=num_cpus)
    try:
        yield
    finally:
        ray.shutdown()


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    return f"{os.cpu_count()} CPUs ({cpu}), load average {os.getloadavg()[0]:.1f} at the end"


def sampled_config(row: pd.Series) -> dict[str, Any]:
    """The ``config/...`` values a leaderboard row holds (conditional parameters left out where unset)."""
    out = {}
    for col, value in row.items():
        if str(col).startswith("config/") and not _missing(value):
            out[str(col)[len("config/"):]] = value.item() if hasattr(value, "item") else value
    return out


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def markdown(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
