"""Parameter importance of the searched factors, at a cost bounded in the number of trials.

The per-trial frame becomes an in-memory Optuna study (one completed trial per scored
trial) and ``optuna.importance.get_param_importances`` ranks the factors.  fANOVA fits a
random forest and integrates every tree's marginals, which grows faster than linearly in
the number of trials; so at most ``max_trials`` trials enter the study, drawn at random
without replacement by a ``numpy`` generator seeded with ``seed`` (same data and seed, same
subsample), and the forest has ``N_TREES`` trees.  :class:`Importance` records both the
evaluator and how many of the scored trials it used, and the page says so.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from gensweep.platform.results.query import is_missing

MAX_TRIALS = 500  # trials entering the importance study (a seeded subsample beyond this)
N_TREES = 16  # fANOVA's forest (Optuna's default is 64; BENCHMARKS.md, Report rendering, compares)


@dataclass
class Importance:
    values: dict[str, float] | None
    evaluator: str
    note: str | None = None
    n_trials: int = 0  # scored trials
    n_used: int = 0  # of which entered the study (a seeded subsample when fewer)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


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
    columns = {f: df[f].tolist() for f in dists}
    for k, (tid, value) in enumerate(zip(df["trial_id"].astype(str), df[value_col].to_numpy(dtype=float))):
        params, used = {}, {}
        for f, dist in dists.items():
            v = columns[f][k]
            if is_missing(v):
                continue
            params[f] = _param_value(dist, v)
            used[f] = dist
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions=used, value=float(value), user_attrs={"trial_id": tid},
        ))
    return study


def _evaluator(seed: int):
    import optuna

    try:
        import sklearn  # noqa: F401 - fANOVA fits a random forest

        return (optuna.importance.FanovaImportanceEvaluator(n_trees=N_TREES, seed=seed),
                f"fANOVA (FanovaImportanceEvaluator, {N_TREES} trees, seed {seed})")
    except ImportError:
        return (optuna.importance.PedAnovaImportanceEvaluator(),
                "PED-ANOVA (PedAnovaImportanceEvaluator; scikit-learn, which fANOVA needs, is not installed)")


def subsample(frame: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    """At most ``max_rows`` rows of ``frame``, drawn without replacement by a numpy generator
    seeded with ``seed``, in their original order; the frame itself when it is small enough."""
    if len(frame) <= max_rows:
        return frame
    pick = np.sort(np.random.default_rng(seed).choice(len(frame), size=max_rows, replace=False))
    return frame.iloc[pick]


def param_importances(
    per_trial: pd.DataFrame,
    factors: Sequence[str],
    value_col: str,
    *,
    mode: str = "min",
    seed: int = 0,
    min_trials: int = 4,
    max_trials: int = MAX_TRIALS,
    evaluator: Any = None,
) -> Importance:
    """Optuna parameter importances of the searched factors for ``value_col`` per trial,
    from at most ``max_trials`` scored trials (a seeded subsample, see the module doc).

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
    finite = np.isfinite(values.to_numpy(dtype=float))
    n = int(finite.sum())
    if len(factors) < 2:
        found = f"{len(factors)}" + (f" ({', '.join(factors)})" if factors else "")
        return Importance(None, name, f"Parameter importance needs at least 2 searched factors; found {found}.", n)
    if n < min_trials:
        return Importance(None, name, f"Parameter importance needs at least {min_trials} trials with a {value_col}; "
                                      f"found {n}.", n)
    if float(np.nanmax(values) - np.nanmin(values)) == 0.0:
        return Importance(None, name, f"Every trial has the same {value_col}: no factor explains any variation.", n)
    used = subsample(per_trial[finite], max_trials, seed)
    try:
        study = build_study(used, factors, value_col, mode)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except Exception as exc:  # noqa: BLE001 - a report with a note beats no report
        return Importance(None, name, f"Parameter importance could not be computed: {type(exc).__name__}: {exc}",
                          n, len(used))
    missing = [f for f in factors if f not in result]
    note = (f"Not assessed (the evaluator needs a value in every trial): {', '.join(missing)}."
            if missing else None)
    return Importance({k: float(v) for k, v in result.items()}, name, note, n, len(used))
