"""Compare trials at equal budget.

An early-stopping scheduler (ASHA) ends weak trials after a few evaluations, so "each
trial's best value over training" pools trials that ran 150 steps with trials that ran
450.  The factor effects, importance and interaction of the report use one value per
trial taken at the same budget instead, by one of two policies:

* ``common`` (default): each trial's best value at or before the *common step*, the last
  step every scored trial reached (the smallest of their last evaluated steps).  Every
  trial counts, at the budget all of them had.
* ``final``: only the trials that reached the *final step* (the largest last evaluated
  step), each with its best value over training.  Trials stopped earlier are left out.

When every scored trial reached the same last step the two agree with the best value
over training.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

POLICIES = ("common", "final")


@dataclass
class Budget:
    policy: str
    step: float | None  # the common or final step; None without evaluations
    values: pd.Series  # value per trial id at that budget (NaN: not compared)
    equal_runs: bool  # every scored trial reached the same last step
    n_compared: int
    n_left_out: int  # scored trials without a value at this budget

    def column(self, metric: str) -> str:
        return f"{metric}_at_budget"

    def label(self, metric: str) -> str:
        """Short name of the compared value, e.g. ``best fid to step 150``."""
        if self.equal_runs or self.step is None:
            return f"best {metric}"
        if self.policy == "common":
            return f"best {metric} to step {_step(self.step)}"
        return f"best {metric} (trials that reached step {_step(self.step)})"

    def description(self, metric: str) -> str:
        """What the page says about the comparison."""
        if self.step is None:
            return f"No trial reported a {metric}."
        if self.equal_runs:
            return (f"Equal budget: every scored trial was evaluated up to step {_step(self.step)}, so each trial's "
                    f"value is its best {metric} over training ({self.n_compared} trials).")
        if self.policy == "common":
            return (f"Equal budget: trials ran for different numbers of steps (an early-stopping scheduler), so each "
                    f"trial's value is its best {metric} at or before step {_step(self.step)}, the last step every "
                    f"scored trial reached ({self.n_compared} trials; policy 'common'; "
                    f"gensweep report --budget final compares only the trials that ran to the end).")
        return (f"Equal budget: only the {self.n_compared} trials that reached the final step {_step(self.step)} "
                f"are compared, each by its best {metric} over training; {self.n_left_out} trials stopped earlier "
                f"are left out (policy 'final'; --budget common compares every trial at a common step).")


def _step(step: float) -> str:
    return str(int(step)) if float(step).is_integer() else format(step, "g")


def equal_budget(metrics: pd.DataFrame, metric: str, mode: str = "min", policy: str = "common") -> Budget:
    """Each trial's value of ``metric`` at equal budget (see the module doc), from the
    metrics rows (``trial_id``, ``step``, ``metric``) in one grouped pass."""
    if policy not in POLICIES:
        raise ValueError(f"budget policy must be one of {', '.join(POLICIES)}, not {policy!r}")
    empty = Budget(policy, None, pd.Series(dtype=float), True, 0, 0)
    if metrics.empty or metric not in metrics.columns:
        return empty
    df = pd.DataFrame({"trial_id": metrics["trial_id"].astype(str),
                       "step": pd.to_numeric(metrics["step"], errors="coerce"),
                       "value": pd.to_numeric(metrics[metric], errors="coerce")})
    df = df[np.isfinite(df["value"]) & np.isfinite(df["step"])]
    if df.empty:
        return empty
    last = df.groupby("trial_id", sort=False)["step"].max()
    common, final = float(last.min()), float(last.max())
    equal = common == final
    if policy == "common":
        step = common
        kept = df[df["step"] <= common]
    else:
        step = final
        kept = df[df["trial_id"].map(last) == final]
    grouped = kept.groupby("trial_id", sort=False)["value"]
    best = grouped.min() if mode == "min" else grouped.max()
    values = best.reindex(last.index)
    n = int(values.notna().sum())
    return Budget(policy, step, values, equal, n, len(last) - n)
