"""Configurations over seeds: the replicates of one sampled configuration (``search.seeds``, one
``config_id``) summarised together, so that arms are ranked by their mean over seeds rather than
by their luckiest seed.

Each configuration's value is the mean of its trials' equal-budget values with a Student-t 95 %
interval (``mean ± t(0.975, n-1) · sd / sqrt(n)``, sd with ``ddof=1``); a configuration with fewer
than :data:`~gensweep.platform.report.stats.MIN_N` scored seeds gets no interval, as everywhere in
the report.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as sps

from . import html as H
from .analysis import Analysis
from .stats import MIN_N

CONFIG_ID = "config_id"
COLUMNS = ["config_id", "n", "seeds", "mean", "ci_low", "ci_high", "sd", "best", "trials"]


def t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float, float]:
    """``(mean, low, high, sd)`` of ``values``; the bounds (and sd for one value) are NaN
    below ``MIN_N`` values."""
    n = values.size
    mean = float(values.mean())
    sd = float(values.std(ddof=1)) if n > 1 else math.nan
    if n < MIN_N:
        return mean, math.nan, math.nan, sd
    half = float(sps.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return mean, mean - half, mean + half, sd


def config_summary(frame: pd.DataFrame, value_col: str, factors: list[str], mode: str = "min",
                   level: float = 0.95) -> pd.DataFrame:
    """One row per ``config_id`` holding a finite value: its factor values, ``n`` (scored seeds),
    ``seeds``, ``mean`` with ``ci_low``/``ci_high`` (t-interval, NaN below ``MIN_N``), ``sd``,
    ``best`` (min for ``mode="min"``) and ``trials``; best mean first."""
    if CONFIG_ID not in frame.columns:
        return pd.DataFrame(columns=COLUMNS + factors)
    values = pd.to_numeric(frame[value_col], errors="coerce")
    scored = frame[np.isfinite(values.to_numpy(dtype=float)) & frame[CONFIG_ID].notna()]
    rows = []
    for cid, group in scored.groupby(scored[CONFIG_ID].astype(str), sort=False):
        vals = pd.to_numeric(group[value_col]).to_numpy(dtype=float)
        mean, low, high, sd = t_interval(vals, level)
        seeds = sorted(group["seed"].dropna().tolist()) if "seed" in group.columns else []
        rows.append({"config_id": cid, "n": int(vals.size), "seeds": seeds, "mean": mean, "ci_low": low,
                     "ci_high": high, "sd": sd, "best": float(vals.min() if mode == "min" else vals.max()),
                     "trials": group["trial_id"].astype(str).tolist(),
                     **{f: group[f].iloc[0] for f in factors}})
    out = pd.DataFrame(rows, columns=COLUMNS + factors)
    return out.sort_values("mean", ascending=(mode == "min"), kind="stable").reset_index(drop=True)


def section(a: Analysis) -> str:
    """The page section: the table when some configuration ran with two seeds or more."""
    summary = config_summary(a.compared(), a.value_col, a.data.factors, a.data.mode)
    if summary.empty or int(summary["n"].max()) < 2:
        return H.note("No configuration ran with more than one seed, so arms can only be compared trial by "
                      "trial. Set search.seeds (e.g. [0, 1, 2]) to run every sampled configuration once per "
                      "seed; this section then ranks configurations by their mean over seeds.")
    columns = ["rank", *a.data.factors, "n seeds", "mean", "95% interval", "sd", "best seed", "seeds"]
    rows = []
    for rank, r in enumerate(summary.itertuples(index=False), start=1):
        interval = ("not estimable (n < %d)" % MIN_N if math.isnan(r.ci_low)
                    else f"{H.fmt(r.ci_low)} to {H.fmt(r.ci_high)}")
        rows.append([rank, *[getattr(r, f) for f in a.data.factors], r.n, r.mean, interval, r.sd, r.best,
                     ", ".join(str(s) for s in r.seeds)])
    numeric = [True, *[False] * len(a.data.factors), True, True, False, True, True, False]
    return (H.table(columns, rows, table_id="replicates-table", numeric=numeric)
            + H.method(f"Each configuration's trials share one config_id (the searched parameters, seed "
                       f"excluded). Value per trial: {a.value_label()} ({a.protocol or 'protocol not recorded'})."
                       f" Mean over its scored seeds with a Student-t 95% interval (mean ± t·sd/√n); fewer than "
                       f"{MIN_N} seeds: no interval. Ranked by mean ({a.data.mode}imize)."))
