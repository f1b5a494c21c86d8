"""What the platform adds to each report of a training loop: cost so far, and the chosen sampling setting.

* ``gpu_hours`` / ``cpu_hours``: what the trial holds (``resources``) times the time its loop has
  run, summed over the runs of a resumed trial (the report saved with the checkpoint carries the
  hours before it); the work a resume repeats after that checkpoint is not counted again.
* With a ``sampling_grid``, the loop reports every setting's scores as ``<metric>/<tag>``; the
  report's plain metrics (``fid``, ``nfe``, ...) become those of the setting best on the search's
  primary objective at this evaluation, and ``sampling`` names it. Searchers and schedulers so see
  each training config at its best sampling setting; every setting's scores go to the store as
  rows of their own (:mod:`gensweep.platform.results.callback`).
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from gensweep.platform.spec.objectives import PLATFORM_COSTS

SAMPLING = "sampling"  # the tag of the setting a report's plain metrics are from


def compute_hours(held: Mapping[str, float], seconds: float, before: Mapping[str, Any] | None = None) -> dict[str, float]:
    """``gpu_hours`` and ``cpu_hours`` of ``seconds`` holding ``held``, plus the hours ``before`` reported."""
    before = before or {}
    out = {}
    for name, resource in zip(PLATFORM_COSTS, ("GPU", "CPU")):
        prior = before.get(name)
        prior = float(prior) if isinstance(prior, (int, float)) and math.isfinite(prior) else 0.0
        out[name] = prior + float(held.get(resource, 0.0)) * seconds / 3600.0
    return out


def best_setting(metrics: Mapping[str, Any], tags: Sequence[str], metric: str, mode: str) -> str | None:
    """The tag whose ``<metric>/<tag>`` is best (ties: the first listed); None when none is finite."""
    best, best_value = None, math.nan
    for tag in tags:
        value = metrics.get(f"{metric}/{tag}")
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        if best is None or (value < best_value if mode == "min" else value > best_value):
            best, best_value = tag, float(value)
    return best


def with_setting(metrics: Mapping[str, Any], tag: str) -> dict[str, Any]:
    """``metrics`` with every ``<name>/<tag>`` value also as plain ``<name>``, and ``sampling: tag``."""
    suffix = f"/{tag}"
    chosen = {k[: -len(suffix)]: v for k, v in metrics.items() if k.endswith(suffix)}
    return {**metrics, **chosen, SAMPLING: tag}
