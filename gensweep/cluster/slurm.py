"""``gensweep cluster init slurm``: an sbatch script that runs (or resumes) one sweep on an allocation.

The script (``templates/slurm.sbatch``) starts Ray the way Ray's SLURM guide does, checks that
every node reaches the results root, runs ``gensweep run --or-resume``, passes SLURM's
``--signal=B:USR1@LEAD`` to the driver (a graceful, resumable stop:
:mod:`gensweep.platform.sweep.interrupt`) and requeues itself when the driver exits resumable.
"""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

_TIME = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$")  # sbatch --time: M, M:S, H:M:S, D-H, D-H:M:S
_WORD = re.compile(r"^[^\s\"'{}\\$`]+$")


class SlurmError(ValueError):
    """Options that cannot make a valid sbatch script."""


def slurm_values(*, spec_path: Optional[str], results_root: Optional[str] = None, name: Optional[str] = None,
                 nodes: Optional[int] = None, cpus_per_node: Optional[int] = None,
                 gpus_per_node: Optional[int] = None, time_limit: Optional[str] = None,
                 signal_lead: Optional[int] = None, partition: Optional[str] = None,
                 python: Optional[str] = None) -> dict[str, Any]:
    """The placeholders of the sbatch template, checked; the spec is validated first."""
    from gensweep.platform.spec import SpecError, load_spec

    if not spec_path:
        raise SlurmError("slurm: --spec SPEC.yaml is required (the sweep the job runs)")
    try:
        spec = load_spec(spec_path)
    except SpecError as e:
        raise SlurmError(f"--spec {spec_path}: {e}") from None
    root = results_root or spec.results.root
    if "://" not in root and not root.startswith("/"):
        raise SlurmError(f"results root {root!r}: every node must reach it; give an absolute path on a shared "
                         "filesystem or s3://... (--results-root)")
    values = {
        "name": name or "gensweep", "nodes": 1 if nodes is None else nodes,
        "cpus_per_node": 4 if cpus_per_node is None else cpus_per_node,
        "time_limit": time_limit or "4:00:00", "signal_lead": 300 if signal_lead is None else signal_lead,
        "python": python or sys.executable, "spec_name": spec.name,
        "spec_path": shlex.quote(str(Path(spec_path).resolve())), "results_root": shlex.quote(root),
    }
    for key in ("nodes", "cpus_per_node", "signal_lead"):
        if not isinstance(values[key], int) or values[key] < 1:
            raise SlurmError(f"{key}: must be a whole number >= 1, got {values[key]!r}")
    if not _TIME.match(values["time_limit"]):
        raise SlurmError(f"--time {values['time_limit']!r}: use sbatch's form, e.g. 30, 4:00:00 or 1-12:00:00")
    for key in ("name", "python", "spec_name"):
        if not _WORD.match(str(values[key])):
            raise SlurmError(f"{key}: {values[key]!r} must be one word without quotes, braces, '$' or spaces")
    extra = []
    if gpus_per_node:
        extra.append(f"#SBATCH --gpus-per-node={int(gpus_per_node)}")
    if partition:
        if not _WORD.match(partition):
            raise SlurmError(f"--partition {partition!r}: one word")
        extra.append(f"#SBATCH --partition={partition}")
    values["sbatch_extra"] = "\n".join(extra) or "#"
    return values


def check_script(text: str) -> None:
    """``bash -n``: the rendered script parses (a template bug fails here, not on the cluster)."""
    done = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:  # pragma: no cover - a template bug
        raise SlurmError(f"the slurm template did not render to a valid bash script: {done.stderr}")
