"""Plain checks the spec's validators delegate to (mutmut can mutate plain functions)."""
from __future__ import annotations

from typing import Any

from gensweep import search_spaces


def check_inline_single_worker(resources: Any) -> Any:
    """The inline launcher runs one worker (validators delegate to plain functions, which mutmut can mutate)."""
    if resources.launcher == "inline" and resources.workers != 1:
        raise ValueError(f"launcher: 'inline' runs one worker; resources.workers is {resources.workers}")
    return resources


def check_ladder(rungs: list[Any], full: int | None) -> list[Any]:
    """Rungs ascend in step and in samples, all below the full ``num_samples`` (None: not checked)."""
    for i in range(1, len(rungs)):
        prev, rung = rungs[i - 1], rungs[i]
        if rung.until_step <= prev.until_step:
            raise ValueError(f"rung {i}: until_step {rung.until_step} must be greater than rung {i - 1}'s"
                             f" {prev.until_step} (rungs ascend in step)")
        if rung.num_samples <= prev.num_samples:
            raise ValueError(f"rung {i}: num_samples {rung.num_samples} must be greater than rung {i - 1}'s"
                             f" {prev.num_samples} (later evaluations use more samples)")
    for i, rung in enumerate(rungs):
        if full is not None and rung.num_samples >= full:
            raise ValueError(f"rung {i}: num_samples {rung.num_samples} must be below eval.num_samples {full}"
                             " (the full N, used after the last rung)")
    return rungs


def load_space(v: Any) -> Any:
    """``space`` as a file name of :mod:`gensweep.search_spaces`, a bare ``{param: ...}`` or ``{"params": ...}``."""
    if isinstance(v, str):
        return {"params": search_spaces.load(v)["params"]}
    if isinstance(v, dict) and "params" not in v:
        return {"params": v}
    return v
