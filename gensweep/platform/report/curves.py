"""The metric over training, summarised for 10 to 10,000 trials.

Instead of one line per trial (a grey band at a few thousand trials), each evaluation
step gets the median and quantile bands of the trials evaluated there -- overall and,
where a factor has few levels, per level -- and the best few trials are drawn on top.
Every summary is one grouped pass over the metrics rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
BAND_COLUMNS = ("q10", "q25", "median", "q75", "q90")
MAX_CURVE_LEVELS = 6  # a factor with more levels is not split into per-level curves


@dataclass
class Curves:
    bands: pd.DataFrame  # step, n, q10, q25, median, q75, q90
    by_level: pd.DataFrame | None  # level, step, n, q10, ... (None: no split)
    factor: str | None
    top: dict[str, pd.DataFrame]  # trial id -> its (step, value) rows, best first
    n_trials: int


def _values(metrics: pd.DataFrame, metric: str) -> pd.DataFrame:
    df = pd.DataFrame({"trial_id": metrics["trial_id"].astype(str),
                       "step": pd.to_numeric(metrics["step"], errors="coerce"),
                       "value": pd.to_numeric(metrics[metric], errors="coerce")})
    return df[np.isfinite(df["value"]) & np.isfinite(df["step"])]


def quantile_bands(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per group of ``keys``: ``n`` and the ``QUANTILES`` of ``value`` (one groupby)."""
    grouped = df.groupby(keys, sort=True)["value"]
    q = grouped.quantile(list(QUANTILES)).unstack()
    q.columns = list(BAND_COLUMNS)
    q.insert(0, "n", grouped.size())
    return q.reset_index()


def curves(metrics: pd.DataFrame, metric: str, ranked: Sequence[str], *, top: int = 3,
           levels: pd.Series | None = None, factor: str | None = None) -> Curves:
    """Bands of ``metric`` per step, per level of ``factor`` when ``levels`` (level label
    per trial id) is given, and the rows of the ``top`` best trials of ``ranked``."""
    df = _values(metrics, metric)
    bands = quantile_bands(df, ["step"]) if not df.empty else pd.DataFrame(columns=["step", "n", *BAND_COLUMNS])
    by_level = None
    if levels is not None and factor is not None and not df.empty:
        tagged = df.assign(level=df["trial_id"].map(levels)).dropna(subset=["level"])
        if not tagged.empty:
            tagged["level"] = tagged["level"].astype(str)
            by_level = quantile_bands(tagged, ["level", "step"])
    best = [str(t) for t in ranked[:top]]
    chosen = df[df["trial_id"].isin(best)].sort_values("step", kind="stable")
    per_trial = dict(tuple(chosen.groupby("trial_id", sort=False)))
    top_rows = {t: per_trial[t][["step", "value"]] for t in best if t in per_trial}
    return Curves(bands, by_level, factor if by_level is not None else None, top_rows, int(df["trial_id"].nunique()))
