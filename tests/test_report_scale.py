"""Issue 21: a report designed for 10 to 10,000 trials -- quantile bands instead of one line
per trial, a bounded leaderboard with the full table as CSV, the Pareto front found in
O(n log n), importance on a seeded subsample.  Timing targets live in
benchmarks/bench_report_scale.py, not here."""
from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest

from gensweep.platform.report import render_report, write_report
from gensweep.platform.report.curves import curves
from gensweep.platform.report.importance import param_importances
from gensweep.platform.report.stats import pareto_front
from tests.report_support import EXPERIMENT, Page, make_store, synthetic_report_data


def test_report_renders_10000_trials():
    data = synthetic_report_data(10_000, 10)
    rendered = render_report(data, n_boot=100, importance_trials=100, csv_name="r-leaderboard.csv")
    page = Page(rendered.html)
    assert len(page.tables["leaderboard-table"]) == 1 + 50
    assert len(rendered.leaderboard) == 10_000 and rendered.leaderboard["rank"].tolist()[:3] == [1, 2, 3]
    assert "The best 50 of 10000 trials." in rendered.html and 'href="r-leaderboard.csv"' in rendered.html
    assert "a seeded random subsample of 100 of the 10000 scored trials" in rendered.html
    assert set(page.images) >= {"plot-fid-curves", "plot-importance", "plot-interaction", "plot-pareto"}
    # half the trials were stopped after 3 of 10 evaluations: compared at step 135
    assert "mean best fid to step 135" in page.tables["effect-table-0"][0]
    assert len(rendered.html) < 1_500_000  # the old page held every row (3.3 MB at this size)


def test_curve_bands_are_per_step_quantiles_in_one_pass():
    rng = np.random.default_rng(1)
    m = pd.DataFrame({"trial_id": np.repeat([f"t{i}" for i in range(40)], 3), "step": np.tile([10, 20, 30], 40),
                      "fid": rng.normal(50, 10, 120)})
    m = m[~((m["step"] == 30) & (m.index % 2 == 0))]  # some trials stopped before step 30
    levels = pd.Series({f"t{i}": "a" if i < 10 else "b" for i in range(40)})
    c = curves(m, "fid", ["t5", "t7", "t1", "t2"], top=3, levels=levels, factor="loss")
    at20 = m.loc[m["step"] == 20, "fid"]
    row = c.bands.set_index("step").loc[20]
    assert row["n"] == 40 and row["median"] == pytest.approx(at20.median())
    assert row["q10"] == pytest.approx(at20.quantile(0.1)) and row["q90"] == pytest.approx(at20.quantile(0.9))
    assert c.bands.set_index("step").loc[30, "n"] == (m["step"] == 30).sum()
    a = c.by_level[(c.by_level["level"] == "a") & (c.by_level["step"] == 10)].iloc[0]
    assert a["n"] == 10 and a["median"] == pytest.approx(m[(m["step"] == 10) & m["trial_id"].map(levels).eq("a")]
                                                         ["fid"].median())
    assert list(c.top) == ["t5", "t7", "t1"] and c.top["t5"]["step"].tolist() == sorted(c.top["t5"]["step"])
    assert c.n_trials == 40


def test_pareto_front_equals_the_pairwise_definition():
    rng = np.random.default_rng(3)
    c = rng.integers(0, 30, 400).astype(float)
    v = np.round(300.0 / (c + 1.0)) + rng.integers(0, 4, 400)  # a trade-off, with ties
    c[::37] = np.nan
    brute = np.zeros(c.size, dtype=bool)
    for i in range(c.size):
        if np.isfinite(c[i]) and np.isfinite(v[i]):
            dom = (c <= c[i]) & (v <= v[i]) & ((c < c[i]) | (v < v[i]))
            brute[i] = not dom.any()
    assert pareto_front(c, v).tolist() == brute.tolist() and brute.sum() > 5
    assert pareto_front(c, -v, mode="max").tolist() == brute.tolist()


def test_importance_uses_a_seeded_subsample():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"trial_id": [f"t{i}" for i in range(120)], "loss": rng.choice(["a", "b"], 120),
                       "lr": rng.uniform(0.0, 1.0, 120)})
    df["v"] = np.where(df["loss"] == "a", 10.0, 30.0) + rng.normal(0, 1, 120)
    one = param_importances(df, ["loss", "lr"], "v", max_trials=40, seed=5)
    assert (one.n_trials, one.n_used) == (120, 40) and list(one.values)[0] == "loss"
    assert param_importances(df, ["loss", "lr"], "v", max_trials=40, seed=5).values == one.values
    assert param_importances(df, ["loss", "lr"], "v", max_trials=500).n_used == 120


def test_write_report_puts_the_full_leaderboard_beside_the_page(tmp_path):
    root = str(tmp_path / "results")
    make_store(root, str(tmp_path / "grids"))
    out = str(tmp_path / "out" / "ablation.html")
    write_report(root, EXPERIMENT, out, n_boot=100, board_rows=5)
    page = Page(text := open(out, encoding="utf-8").read())
    assert len(page.tables["leaderboard-table"]) == 1 + 5
    assert 'href="ablation-leaderboard.csv"' in text and "The best 5 of 12 trials." in text
    with open(tmp_path / "out" / "ablation-leaderboard.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 12 and [r["trial"] for r in rows[:3]] == ["t02", "t00", "t01"]
    assert float(rows[0]["best fid"]) == pytest.approx(19.6) and rows[0]["loss"] == "hinge"
