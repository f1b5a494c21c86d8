"""Statistics of an ablation: factor effects with bootstrap CIs, interactions, Pareto.

All take the per-trial frame of :mod:`.data` (one row per trial, its value of the
metric (at equal budget, see :mod:`.budget`) and its factor values).  Parameter
importance lives in :mod:`.importance` (re-exported here).

Factor effects: for each level of a factor, the trials run at that level (all
other factors and all seeds pooled) give one value each, their best metric value
over training.  The level's effect is the mean of those values; its 95%
confidence interval is a percentile bootstrap that resamples *trials* (so, in a
grid sweep, seeds x cells of the other factors) with replacement within the
level, from a ``numpy`` generator seeded with ``seed`` (same data and seed, same
interval).  The best (min or max) value of the level is shown next to it.  A level
with fewer than ``MIN_N`` trials gets no interval (``estimable`` False): a bootstrap of
one or two values says nothing about the spread.

Numeric factors are numbers, not categories: a factor is cut into quantile ranges (each
holding about ``MIN_N`` trials or more, at most ``N_BINS`` of them) unless it looks like
a set of levels -- at most ``MAX_LEVELS`` distinct values, each run by two or more trials,
as in a grid -- or the spec's search space says it is one (categorical, or an int range
with at most ``MAX_LEVELS`` values).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from gensweep.platform.results.query import is_missing

from .importance import (  # noqa: F401 - re-exported: the report's statistics in one place
    Importance,
    build_study,
    infer_distribution,
    param_importances,
)
from .labels import range_label

MAX_LEVELS = 8  # numeric factors with more distinct values are always binned into quantile ranges
N_BINS = 4
MIN_N = 3  # fewest trials for a confidence interval
LEVELS, NUMERIC = "levels", "numeric"
BOOT_CHUNK = 4_000_000  # resampled values held at once by the bootstrap


# ---------------------------------------------------------------- bootstrap
def bootstrap_ci(
    values: Sequence[float],
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    statistic: Callable[[np.ndarray], Any] = np.mean,
) -> tuple[float, float, float]:
    """``(estimate, low, high)``: percentile bootstrap CI of ``statistic`` of ``values``.

    Resamples the values with replacement ``n_boot`` times (``numpy`` generator
    seeded with ``seed``).  One value gives the estimate and no interval (NaN bounds: a
    zero-width interval would claim certainty); none gives NaNs.  Large inputs are
    resampled in chunks of at most ``BOOT_CHUNK`` values, so memory stays bounded.
    """
    x = np.asarray([v for v in values if v is not None and not math.isnan(float(v))], dtype=float)
    if x.size == 0:
        return math.nan, math.nan, math.nan
    estimate = float(statistic(x))
    if x.size == 1:
        return estimate, math.nan, math.nan
    rng = np.random.default_rng(seed)
    rows = max(1, BOOT_CHUNK // x.size)
    parts = []
    for start in range(0, int(n_boot), rows):
        idx = rng.integers(0, x.size, size=(min(rows, int(n_boot) - start), x.size))
        parts.append(np.asarray(statistic(x[idx], axis=1), dtype=float) if statistic in (np.mean, np.median)
                     else np.array([statistic(x[i]) for i in idx], dtype=float))
    samples = np.concatenate(parts)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(samples, [alpha, 1.0 - alpha])
    return estimate, float(low), float(high)


# ------------------------------------------------------------------- levels
def _sort_key(value: Any) -> tuple:
    if isinstance(value, bool):
        return (0, int(value), "")
    if isinstance(value, (int, float)):
        return (1, float(value), "")
    return (2, 0.0, str(value))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def factor_kind(values: Sequence[Any], param: Any = None) -> str:
    """``NUMERIC`` (analysed as a number: binned, drawn as a scatter) or ``LEVELS``.

    ``param``: the factor's parameter in the spec's search space, when known (a
    ``Uniform`` is numeric, a ``Categorical`` has levels, an ``Integer`` has levels when
    its range holds at most ``MAX_LEVELS`` values).  Otherwise numeric values are levels
    only when there are at most ``MAX_LEVELS`` distinct ones, each shared by two or more
    trials (a grid), and numbers otherwise (the continuous samples of a Bayesian search).
    """
    present = [v for v in values if not is_missing(v)]
    if not present or not all(_is_number(v) for v in present):
        return LEVELS
    kind = getattr(param, "type", None)
    if kind in ("uniform", "loguniform"):
        return NUMERIC
    if kind == "categorical":
        return LEVELS
    if kind == "int":
        return LEVELS if len(range(param.low, param.high + 1, param.step)) <= MAX_LEVELS else NUMERIC
    counts = pd.Series([float(v) for v in present]).value_counts()
    return LEVELS if len(counts) <= MAX_LEVELS and int(counts.min()) >= 2 else NUMERIC


def level_labels(values: Sequence[Any], max_levels: int = MAX_LEVELS, n_bins: int = N_BINS,
                 kind: str | None = None) -> tuple[list[Any], list[Any]]:
    """Map each value to a level label; returns ``(labels per value, ordered levels)``.

    Factors of kind ``LEVELS`` (see :func:`factor_kind`, which decides when ``kind`` is
    None) keep their values as levels (missing -> ``None``, not a level); ``NUMERIC``
    ones are cut into at most ``n_bins`` quantile ranges of about ``MIN_N`` or more trials
    each, labelled ``"[lo, hi]"`` (short numbers).
    """
    values = [None if is_missing(v) else v for v in values]
    present = [v for v in values if v is not None]
    distinct = sorted({v for v in present}, key=_sort_key)
    kind = kind or factor_kind(present)
    if kind == LEVELS or not present or not all(_is_number(v) for v in present):
        return list(values), distinct
    series = pd.Series([float(v) if v is not None else np.nan for v in values])
    bins = max(1, min(n_bins, len(present) // MIN_N, len(distinct)))
    if bins == 1:
        label = range_label(series.min(), series.max())
        return [None if v is None else label for v in values], [label]
    cats = pd.qcut(series, q=bins, duplicates="drop")
    levels = [range_label(max(interval.left, series.min()), interval.right) for interval in cats.cat.categories]
    lookup = dict(zip(cats.cat.categories, levels))
    labels = [None if (isinstance(c, float) and math.isnan(c)) else lookup[c] for c in cats]
    return labels, levels


def factor_effects(
    per_trial: pd.DataFrame,
    factor: str,
    value_col: str,
    *,
    mode: str = "min",
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    kind: str | None = None,
) -> pd.DataFrame:
    """One row per level of ``factor``: ``level``, ``n`` (trials), ``mean`` of their
    values with ``ci_low``/``ci_high`` (bootstrap over trials, see module doc; NaN and
    ``estimable`` False below ``MIN_N`` trials), ``best`` (min for ``mode="min"``) and
    ``trials`` (ids).  ``kind``: :func:`factor_kind`'s answer (inferred when None)."""
    df = per_trial[[factor, value_col, "trial_id"]].copy()
    df[value_col] = pd.to_numeric(df[value_col], errors="coerce")
    df = df[np.isfinite(df[value_col])]
    labels, levels = level_labels(df[factor].tolist(), kind=kind)
    df["__level"] = pd.Series(labels, index=df.index, dtype=object)
    groups = {key: group for key, group in df.dropna(subset=["__level"]).groupby("__level", sort=False)}
    rows = []
    for lv in levels:
        group = groups.get(lv)
        if group is None or group.empty:
            continue
        vals = group[value_col].to_numpy(dtype=float)
        mean, low, high = bootstrap_ci(vals, n_boot=n_boot, level=level, seed=seed)
        estimable = vals.size >= MIN_N
        rows.append({
            "factor": factor,
            "level": lv,
            "n": int(vals.size),
            "mean": mean,
            "ci_low": low if estimable else math.nan,
            "ci_high": high if estimable else math.nan,
            "estimable": estimable,
            "best": float(vals.min() if mode == "min" else vals.max()),
            "trials": group["trial_id"].astype(str).tolist(),
        })
    return pd.DataFrame(rows, columns=["factor", "level", "n", "mean", "ci_low", "ci_high", "estimable", "best",
                                       "trials"])


# -------------------------------------------------------------- interaction
def interaction_table(
    per_trial: pd.DataFrame, f1: str, f2: str, value_col: str, kinds: tuple[str | None, str | None] = (None, None)
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(means, counts)``: mean best value per (``f1`` level, ``f2`` level) cell;
    rows are ``f1`` levels, columns ``f2`` levels (binned like :func:`level_labels`)."""
    df = per_trial[[f1, f2, value_col]].copy()
    df[value_col] = pd.to_numeric(df[value_col], errors="coerce")
    df = df[np.isfinite(df[value_col])]
    l1, levels1 = level_labels(df[f1].tolist(), kind=kinds[0])
    l2, levels2 = level_labels(df[f2].tolist(), kind=kinds[1])
    df["__a"], df["__b"] = [str(x) if x is not None else None for x in l1], [str(x) if x is not None else None for x in l2]
    df = df.dropna(subset=["__a", "__b"])
    rows = [str(x) for x in levels1]
    cols = [str(x) for x in levels2]
    means = df.pivot_table(index="__a", columns="__b", values=value_col, aggfunc="mean").reindex(index=rows, columns=cols)
    counts = df.pivot_table(index="__a", columns="__b", values=value_col, aggfunc="count").reindex(index=rows, columns=cols)
    means.index.name, means.columns.name = f1, f2
    counts.index.name, counts.columns.name = f1, f2
    return means, counts.fillna(0).astype(int)


# ------------------------------------------------------------------- pareto
def pareto_front(costs: Sequence[float], values: Sequence[float], mode: str = "min") -> np.ndarray:
    """Boolean mask of the points no other point dominates (lower cost and better value).

    A point is dominated when another has cost <= and value at least as good, one of
    them strictly better.  Points with a missing cost or value are never on the front.
    """
    c = np.asarray(costs, dtype=float)
    v = np.asarray(values, dtype=float)
    if mode == "max":
        v = -v
    mask = np.zeros(c.size, dtype=bool)
    ok = np.flatnonzero(np.isfinite(c) & np.isfinite(v))
    if ok.size == 0:
        return mask
    # Sorted by (cost, value), a point is dominated exactly when some point before it -- other
    # than an identical one -- has a value <= its own: O(n log n).
    order = ok[np.lexsort((v[ok], c[ok]))]
    cs, vs = c[order], v[order]
    new = np.r_[True, (cs[1:] != cs[:-1]) | (vs[1:] != vs[:-1])]
    first = np.maximum.accumulate(np.where(new, np.arange(order.size), 0))
    best_before = np.r_[np.inf, np.minimum.accumulate(vs)[:-1]]
    mask[order] = ~(best_before[first] <= vs)
    return mask
