"""One summary row per experiment, in the ``experiments`` table, so that listing experiments
reads that table alone (never the trials or metrics of every experiment).

The results callback keeps the row current during a sweep (``n_trials``, ``n_finished``,
``n_errored``, ``n_reports``, ``best_<metric>`` for its summary metrics, ``updated_at``) and
writes the final one, computed from the store, at the experiment's end.
"""
from __future__ import annotations

import datetime as _dt
import math
from typing import Any, Sequence

import pandas as pd

from .schema import REEVAL, SAMPLING_ROW
from .status import TrialStatus
from .store import ResultsStore

SUMMARY_COUNTS = ("n_trials", "n_finished", "n_reports")


def best_column(metric: str) -> str:
    return f"best_{metric}"


def _minimum(values: Any) -> float:
    numbers = pd.to_numeric(pd.Series(values), errors="coerce")
    return float(numbers.min()) if numbers.notna().any() else math.nan


class RunningSummary:
    """What the callback has seen of a running experiment."""

    def __init__(self, metrics: Sequence[str]):
        self.metrics = tuple(metrics)
        self.n_trials = 0
        self.finished: set[str] = set()
        self.n_reports = 0
        self.best: dict[str, float] = {m: math.nan for m in self.metrics}
        self.changed = False

    def observe_trials(self, trials: Sequence[Any], ended: str | None = None) -> None:
        """Tune's list of the experiment's trials (its length is the count); ``ended``: the id of
        a trial that just ended."""
        finished = len(self.finished)
        if ended is not None:
            self.finished.add(ended)
        if len(trials) > self.n_trials or len(self.finished) != finished:
            self.n_trials = max(self.n_trials, len(trials))
            self.changed = True

    def observe_result(self, row: dict[str, Any]) -> None:
        self.n_reports += 1
        self.changed = True
        for metric in self.metrics:
            value = row.get(metric)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
                    and not value >= self.best[metric]:
                self.best[metric] = float(value)

    def fields(self) -> dict[str, Any]:
        self.changed = False
        return {"n_trials": self.n_trials, "n_finished": len(self.finished), "n_reports": self.n_reports,
                "updated_at": _dt.datetime.now(_dt.timezone.utc),
                **{best_column(m): v for m, v in self.best.items()}}


def summarize(store: ResultsStore, experiment: str, metrics: Sequence[str]) -> dict[str, Any]:
    """The summary fields of ``experiment`` computed from its trials and metrics (only the
    columns they need); training reports only, re-evaluations and sampling-setting rows left out."""
    trials = store.read("trials", experiment, columns=["trial_id", "status"])
    scores = store.read("metrics", experiment, columns=["trial_id", REEVAL, SAMPLING_ROW, *metrics])
    for flag in (REEVAL, SAMPLING_ROW):
        if flag in scores.columns:
            scores = scores[~scores[flag].eq(True)]
    ids = set(trials["trial_id"]) | set(scores["trial_id"]) if "trial_id" in scores.columns else set(trials["trial_id"])
    finished = trials[trials["status"].isin(TrialStatus.terminals())] if "status" in trials.columns else trials
    return {
        "n_trials": len(ids),
        "n_finished": int(finished["trial_id"].nunique()) if not finished.empty else 0,
        "n_reports": len(scores),
        "updated_at": _dt.datetime.now(_dt.timezone.utc),
        **{best_column(m): _minimum(scores[m]) if m in scores.columns else math.nan for m in metrics},
    }
