"""Statistics of an ablation: factor effects with bootstrap CIs, importance, interactions, Pareto.

All take the per-trial frame of :mod:`.data` (one row per trial, its best metric
value over training and its factor values).

Factor effects: for each level of a factor, the trials run at that level (all
other factors and all seeds pooled) give one value each, their best metric value
over training.  The level's effect is the mean of those values; its 95%
confidence interval is a percentile bootstrap that resamples *trials* (so, in a
grid sweep, seeds x cells of the other factors) with replacement within the
level, from a ``numpy`` generator seeded with ``seed`` (same data and seed, same
interval).  The best (min or max) value of the level is shown next to it.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from gensweep.platform.results.query import is_missing

MAX_LEVELS = 8  # numeric factors with more distinct values are binned into quantile ranges
N_BINS = 4


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
    seeded with ``seed``).  One value gives a zero-width interval; none gives NaNs.
    """
    x = np.asarray([v for v in values if v is not None and not math.isnan(float(v))], dtype=float)
    if x.size == 0:
        return math.nan, math.nan, math.nan
    estimate = float(statistic(x))
    if x.size == 1:
        return estimate, estimate, estimate
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(int(n_boot), x.size))
    samples = np.asarray(statistic(x[idx], axis=1), dtype=float) if statistic in (np.mean, np.median) \
        else np.array([statistic(x[i]) for i in idx], dtype=float)
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


def _fmt(value: float) -> str:
    return format(value, ".3g")


def level_labels(values: Sequence[Any], max_levels: int = MAX_LEVELS, n_bins: int = N_BINS) -> tuple[list[Any], list[Any]]:
    """Map each value to a level label; returns ``(labels per value, ordered levels)``.

    Strings, bools and numeric factors with at most ``max_levels`` distinct values
    keep their values as levels (missing -> ``None``, not a level); numeric factors
    with more values (continuous samples of a Bayesian search) are cut into
    ``n_bins`` quantile ranges labelled ``"[lo, hi]"``.
    """
    values = [None if is_missing(v) else v for v in values]
    present = [v for v in values if v is not None]
    distinct = sorted({v for v in present}, key=_sort_key)
    numeric = bool(present) and all(_is_number(v) for v in present)
    if not numeric or len(distinct) <= max_levels:
        return list(values), distinct
    series = pd.Series([float(v) if v is not None else np.nan for v in values])
    cats = pd.qcut(series, q=n_bins, duplicates="drop")
    labels, levels = [], []
    for interval in cats.cat.categories:
        levels.append(f"[{_fmt(max(interval.left, series.min()))}, {_fmt(interval.right)}]")
    lookup = dict(zip(cats.cat.categories, levels))
    for c in cats:
        labels.append(None if (isinstance(c, float) and math.isnan(c)) else lookup[c])
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
) -> pd.DataFrame:
    """One row per level of ``factor``: ``level``, ``n`` (trials), ``mean`` of their
    best values with ``ci_low``/``ci_high`` (bootstrap over trials, see module doc),
    ``best`` (min for ``mode="min"``) and ``trials`` (ids)."""
    df = per_trial[[factor, value_col, "trial_id"]].copy()
    df[value_col] = pd.to_numeric(df[value_col], errors="coerce")
    df = df[np.isfinite(df[value_col])]
    labels, levels = level_labels(df[factor].tolist())
    df["__level"] = labels
    rows = []
    for lv in levels:
        group = df[df["__level"].map(lambda x, lv=lv: x is not None and x == lv)]
        if group.empty:
            continue
        vals = group[value_col].to_numpy(dtype=float)
        mean, low, high = bootstrap_ci(vals, n_boot=n_boot, level=level, seed=seed)
        rows.append({
            "factor": factor,
            "level": lv,
            "n": int(vals.size),
            "mean": mean,
            "ci_low": low,
            "ci_high": high,
            "best": float(vals.min() if mode == "min" else vals.max()),
            "trials": group["trial_id"].astype(str).tolist(),
        })
    return pd.DataFrame(rows, columns=["factor", "level", "n", "mean", "ci_low", "ci_high", "best", "trials"])


# --------------------------------------------------------------- importance
@dataclass
class Importance:
    values: dict[str, float] | None
    evaluator: str
    note: str | None = None
    n_trials: int = 0


def infer_distribution(values: Sequence[Any]):
    """Optuna distribution of a column: categorical for strings/bools (or mixed types),
    int for ints, float for floats (log scale when positive and spanning > 1 decade)."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    present = [v for v in values if not is_missing(v)]
    if not present:
        raise ValueError("no values")
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in present):
        ints = [int(v) for v in present]
        return IntDistribution(min(ints), max(ints))
    if all(_is_number(v) for v in present):
        floats = [float(v) for v in present]
        low, high = min(floats), max(floats)
        return FloatDistribution(low, high, log=low > 0 and high / low > 10.0)
    if all(isinstance(v, (bool, np.bool_)) for v in present):
        return CategoricalDistribution(sorted({bool(v) for v in present}))
    return CategoricalDistribution(sorted({str(v) for v in present}))


def _param_value(dist, value: Any) -> Any:
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(dist, CategoricalDistribution):
        return bool(value) if all(isinstance(c, bool) for c in dist.choices) else str(value)
    if isinstance(dist, IntDistribution):
        return int(value)
    return float(value)


def build_study(per_trial: pd.DataFrame, factors: Sequence[str], value_col: str, mode: str = "min"):
    """An in-memory Optuna study with one completed trial per scored row."""
    import optuna

    df = per_trial.copy()
    df[value_col] = pd.to_numeric(df[value_col], errors="coerce")
    df = df[np.isfinite(df[value_col])]
    dists = {}
    for f in factors:
        present = [v for v in df[f].tolist() if not is_missing(v)]
        if present:
            dists[f] = infer_distribution(present)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize" if mode == "min" else "maximize")
    for _, row in df.iterrows():
        params, used = {}, {}
        for f, dist in dists.items():
            v = row[f]
            if is_missing(v):
                continue
            params[f] = _param_value(dist, v)
            used[f] = dist
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions=used, value=float(row[value_col]),
            user_attrs={"trial_id": str(row["trial_id"])},
        ))
    return study


def _evaluator(seed: int):
    import optuna

    try:
        import sklearn  # noqa: F401 - fANOVA fits a random forest

        return optuna.importance.FanovaImportanceEvaluator(seed=seed), f"fANOVA (FanovaImportanceEvaluator, seed {seed})"
    except ImportError:
        return (optuna.importance.PedAnovaImportanceEvaluator(),
                "PED-ANOVA (PedAnovaImportanceEvaluator; scikit-learn, which fANOVA needs, is not installed)")


def param_importances(
    per_trial: pd.DataFrame,
    factors: Sequence[str],
    value_col: str,
    *,
    mode: str = "min",
    seed: int = 0,
    min_trials: int = 4,
    evaluator: Any = None,
) -> Importance:
    """Optuna parameter importances of the searched factors for the best value per trial.

    Returns an :class:`Importance` whose ``values`` is None (and ``note`` says why)
    with fewer than 2 factors, fewer than ``min_trials`` scored trials, or when the
    evaluator cannot run (e.g. every trial has the same value).
    """
    import optuna

    if evaluator is None:
        evaluator, name = _evaluator(seed)
    else:
        name = type(evaluator).__name__
    values = pd.to_numeric(per_trial[value_col], errors="coerce") if value_col in per_trial else pd.Series(dtype=float)
    n = int(np.isfinite(values).sum())
    if len(factors) < 2:
        found = f"{len(factors)}" + (f" ({', '.join(factors)})" if factors else "")
        return Importance(None, name, f"Parameter importance needs at least 2 searched factors; found {found}.", n)
    if n < min_trials:
        return Importance(None, name, f"Parameter importance needs at least {min_trials} trials with a {value_col}; "
                                      f"found {n}.", n)
    if float(np.nanmax(values) - np.nanmin(values)) == 0.0:
        return Importance(None, name, f"Every trial has the same {value_col}: no factor explains any variation.", n)
    try:
        study = build_study(per_trial, factors, value_col, mode)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except Exception as exc:  # noqa: BLE001 - a report with a note beats no report
        return Importance(None, name, f"Parameter importance could not be computed: {type(exc).__name__}: {exc}", n)
    missing = [f for f in factors if f not in result]
    note = (f"Not assessed (the evaluator needs a value in every trial): {', '.join(missing)}."
            if missing else None)
    return Importance({k: float(v) for k, v in result.items()}, name, note, n)


# -------------------------------------------------------------- interaction
def interaction_table(
    per_trial: pd.DataFrame, f1: str, f2: str, value_col: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(means, counts)``: mean best value per (``f1`` level, ``f2`` level) cell;
    rows are ``f1`` levels, columns ``f2`` levels (binned like :func:`level_labels`)."""
    df = per_trial[[f1, f2, value_col]].copy()
    df[value_col] = pd.to_numeric(df[value_col], errors="coerce")
    df = df[np.isfinite(df[value_col])]
    l1, levels1 = level_labels(df[f1].tolist())
    l2, levels2 = level_labels(df[f2].tolist())
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
    ok = np.isfinite(c) & np.isfinite(v)
    mask = np.zeros(c.size, dtype=bool)
    for i in np.flatnonzero(ok):
        others = ok.copy()
        others[i] = False
        dominated = others & (c <= c[i]) & (v <= v[i]) & ((c < c[i]) | (v < v[i]))
        mask[i] = not dominated.any()
    return mask
