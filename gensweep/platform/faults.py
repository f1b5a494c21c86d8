"""Fault-injection points for resilience tests and chaos drills; inert unless ``GENSWEEP_FAULTS`` is set.

``GENSWEEP_FAULTS`` is a comma-separated list of ``name=value`` items:

* ``pause_after_step=S:SECONDS`` -- after rank 0 of a worker group that started fresh (not
  from a checkpoint) reports step ``S``, it sleeps ``SECONDS``: a deterministic window in
  which a test (or an operator) can SIGKILL the worker, by the ``worker_pid`` it just
  reported, and watch Ray Train restart the group from that step's checkpoint.

Set it in the environment of the processes that run trials (for a local Ray instance: before
Ray starts).
"""
from __future__ import annotations

import os
import time
from typing import Optional

ENV = "GENSWEEP_FAULTS"


def _items() -> dict[str, str]:
    out = {}
    for item in os.environ.get(ENV, "").split(","):
        name, sep, value = item.strip().partition("=")
        if sep:
            out[name.strip()] = value.strip()
    return out


def after_report(step: int, rank: int, resumed_from: Optional[int]) -> None:
    spec = _items().get("pause_after_step")
    if not spec or rank != 0 or resumed_from is not None:
        return
    at, _, seconds = spec.partition(":")
    if int(at) == int(step):
        time.sleep(float(seconds or 30))
