"""Everything the report's sections share, computed once from :class:`ReportData`:
the equal-budget value per trial, each factor's kind (levels or a number), the
search-space coverage, parameter importance, the evaluation protocol and floor."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from . import stats
from .budget import Budget, equal_budget
from .coverage import Coverage, coverage
from .data import ReportData
from .importance import MAX_TRIALS, Importance, param_importances
from .labels import eval_protocol, metric_floor, metric_name


@dataclass
class Analysis:
    data: ReportData
    budget: Budget
    frame: pd.DataFrame  # per_trial plus the equal-budget value column
    value_col: str
    kinds: dict[str, str]  # factor -> stats.LEVELS | stats.NUMERIC
    coverage: Coverage
    importance: Importance
    protocol: str  # "mnist-lenet, N=1000" (may be empty)
    floor: tuple[float, float] | None
    n_boot: int
    seed: int

    @property
    def metric(self) -> str:
        return self.data.metric

    def value_label(self) -> str:
        """``best fid to step 150``: what each trial contributes to the comparisons."""
        return self.budget.label(self.metric)

    def axis(self, prefix: str = "", compared: bool = False) -> str:
        """An axis label naming the metric's backbone and N: ``best FID to step 150 (mnist-lenet,
        N=1000)`` for the ``compared`` value, else ``<prefix>FID (...)``."""
        name = metric_name(self.metric)
        text = self.budget.label(name) if compared else f"{prefix}{name}"
        return f"{text} ({self.protocol})" if self.protocol else text

    def compared(self) -> pd.DataFrame:
        """Trials with a finite value at the budget."""
        values = pd.to_numeric(self.frame[self.value_col], errors="coerce")
        return self.frame[values.notna()]


def analyse(data: ReportData, *, n_boot: int = 2000, seed: int = 0, budget: str = "common",
            importance_trials: int = MAX_TRIALS) -> Analysis:
    at_budget = equal_budget(data.metrics, data.metric, data.mode, budget)
    value_col = at_budget.column(data.metric)
    frame = data.per_trial.copy()
    frame[value_col] = frame["trial_id"].astype(str).map(at_budget.values).astype(float)
    cover = coverage(data.spec, data.board)
    kinds = {f: stats.factor_kind(frame[f].tolist(), cover.params.get(f)) for f in data.factors}
    importance = param_importances(frame, data.factors, value_col, mode=data.mode, seed=seed,
                                   max_trials=importance_trials)
    return Analysis(data, at_budget, frame, value_col, kinds, cover, importance,
                    eval_protocol(data.metrics, data.metric), metric_floor(data.metrics, data.metric), n_boot, seed)


def split_factor(a: Analysis) -> tuple[str | None, Any]:
    """The factor whose levels split the curves (the most important one with at most
    ``MAX_CURVE_LEVELS`` levels, else the first such) and its level per trial id."""
    from .curves import MAX_CURVE_LEVELS

    order = list(a.importance.values or {}) + [f for f in a.data.factors if f not in (a.importance.values or {})]
    pt = a.data.per_trial
    for factor in order:
        labels, levels = stats.level_labels(pt[factor].tolist(), kind=a.kinds.get(factor))
        if 2 <= len(levels) <= MAX_CURVE_LEVELS:
            mapping = pd.Series(labels, index=pt["trial_id"].astype(str).to_numpy(), dtype=object)
            return factor, (mapping, [str(lv) for lv in levels])
    return None, None
