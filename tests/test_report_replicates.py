"""report/replicates.py: configurations summarised over their seeds (one config_id each)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from gensweep.platform.report.replicates import config_summary, t_interval


def test_t_interval_is_students_and_needs_three_values():
    vals = np.array([10.0, 12.5, 11.0, 13.0])
    mean, low, high, sd = t_interval(vals)
    ref_low, ref_high = stats.t.interval(0.95, df=3, loc=vals.mean(), scale=stats.sem(vals))
    assert (mean, low, high, sd) == pytest.approx((vals.mean(), ref_low, ref_high, vals.std(ddof=1)))
    mean2, low2, high2, sd2 = t_interval(np.array([1.0, 2.0]))
    assert mean2 == 1.5 and math.isnan(low2) and math.isnan(high2) and sd2 == pytest.approx(math.sqrt(0.5))
    assert math.isnan(t_interval(np.array([4.0]))[3])


def _frame():
    return pd.DataFrame({
        "trial_id": ["a0", "a1", "a2", "b0", "b1", "c0", "d0"],
        "config_id": ["cfg-a", "cfg-a", "cfg-a", "cfg-b", "cfg-b", "cfg-c", None],
        "seed": [0, 1, 2, 0, 1, 0, 0],
        "loss": ["ns", "ns", "ns", "hinge", "hinge", "lsgan", "ns"],
        "value": [30.0, 34.0, 29.0, 33.0, np.nan, 25.0, 1.0],
    })


def test_config_summary_groups_by_config_id_and_ranks_by_mean():
    out = config_summary(_frame(), "value", ["loss"], mode="min")
    # cfg-b keeps its one scored seed; d0 has no config_id and is left out
    assert list(out["config_id"]) == ["cfg-c", "cfg-a", "cfg-b"]
    a = out.set_index("config_id").loc["cfg-a"]
    assert a["n"] == 3 and a["seeds"] == [0, 1, 2] and a["loss"] == "ns" and a["best"] == 29.0
    assert a["mean"] == pytest.approx(31.0) and a["ci_high"] - a["mean"] == pytest.approx(
        stats.t.ppf(0.975, 2) * np.std([30.0, 34.0, 29.0], ddof=1) / math.sqrt(3))
    b = out.set_index("config_id").loc["cfg-b"]
    assert b["n"] == 1 and math.isnan(b["ci_low"]) and b["trials"] == ["b0"]


def test_config_summary_for_a_maximised_metric_and_without_config_ids():
    out = config_summary(_frame(), "value", ["loss"], mode="max")
    assert list(out["config_id"]) == ["cfg-b", "cfg-a", "cfg-c"] and out.loc[1, "best"] == 34.0
    assert config_summary(_frame().drop(columns="config_id"), "value", ["loss"]).empty
