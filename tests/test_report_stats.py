"""Statistics of the ablation report: bootstrap CIs, factor effects, importance, interactions, Pareto."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from gensweep.platform.report import stats
from gensweep.platform.report.stats import (
    bootstrap_ci,
    factor_effects,
    infer_distribution,
    interaction_table,
    param_importances,
    pareto_front,
)
from tests.report_support import grid_trials


def per_trial(loss_effect=None, lr_effect=None) -> pd.DataFrame:
    rows = grid_trials(loss_effect, lr_effect)
    return pd.DataFrame({"trial_id": [r["trial_id"] for r in rows], "loss": [r["loss"] for r in rows],
                         "lr": [r["lr"] for r in rows], "seed": [r["seed"] for r in rows],
                         "best_fid": [r["best"] for r in rows]})


def test_bootstrap_two_values_by_hand():
    # Resampled means of {10, 20} are 10, 15 or 20 with probabilities 1/4, 1/2, 1/4, so the
    # 2.5% and 97.5% percentiles are exactly the two values.
    assert bootstrap_ci([10.0, 20.0], n_boot=4000, seed=0) == (15.0, 10.0, 20.0)
    # one value: the estimate and no interval (issue 16: no zero-width "interval")
    est, lo, hi = bootstrap_ci([7.0])
    assert est == 7.0 and math.isnan(lo) and math.isnan(hi)
    assert all(math.isnan(v) for v in bootstrap_ci([]))


def test_bootstrap_is_the_documented_procedure():
    values = np.array([3.0, 9.0, 4.0, 1.0, 7.5, 6.0])
    rng = np.random.default_rng(11)
    means = values[rng.integers(0, values.size, size=(500, values.size))].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    assert bootstrap_ci(values, n_boot=500, seed=11) == pytest.approx((values.mean(), low, high))
    assert bootstrap_ci(values, n_boot=500, seed=11) == bootstrap_ci(values, n_boot=500, seed=11)
    assert bootstrap_ci(values, n_boot=500, seed=11) != bootstrap_ci(values, n_boot=500, seed=12)
    est, lo, hi = bootstrap_ci(values, level=0.5, seed=0)
    _, lo95, hi95 = bootstrap_ci(values, level=0.95, seed=0)
    assert lo95 < lo < est < hi < hi95


def test_factor_effects_match_hand_computation():
    df = per_trial()
    loss = factor_effects(df, "loss", "best_fid", n_boot=1000, seed=0).set_index("level")
    # hinge trials: 20 + lr effect (0 | 1.5) + seed effect (0, .6, -.4)
    hinge = [20.0, 20.6, 19.6, 21.5, 22.1, 21.1]
    assert loss.loc["hinge", "n"] == 6
    assert loss.loc["hinge", "mean"] == pytest.approx(sum(hinge) / 6)  # 20.8167
    assert loss.loc["hinge", "best"] == pytest.approx(19.6)
    assert loss.loc["ns", "mean"] == pytest.approx(sum(hinge) / 6 + 20.0)
    assert loss.loc["ns", "best"] == pytest.approx(39.6)
    for level, vals in (("hinge", hinge), ("ns", [v + 20 for v in hinge])):
        lo, hi = loss.loc[level, "ci_low"], loss.loc[level, "ci_high"]
        assert min(vals) <= lo < loss.loc[level, "mean"] < hi <= max(vals)
        assert (lo, hi) == pytest.approx(bootstrap_ci(vals, n_boot=1000, seed=0)[1:])
    assert sorted(loss.loc["hinge", "trials"]) == ["t00", "t01", "t02", "t03", "t04", "t05"]

    lr = factor_effects(df, "lr", "best_fid").set_index("level")
    assert list(lr.index) == [1e-4, 1e-3]
    assert lr.loc[1e-4, "mean"] == pytest.approx((20 + 20.6 + 19.6 + 40 + 40.6 + 39.6) / 6)
    assert lr.loc[1e-3, "best"] == pytest.approx(21.1)
    # mode="max": best is the highest
    assert factor_effects(df, "loss", "best_fid", mode="max").set_index("level").loc["ns", "best"] == \
        pytest.approx(42.1)


def test_many_numeric_levels_are_binned():
    df = pd.DataFrame({"trial_id": [f"t{i}" for i in range(20)], "lr": list(np.logspace(-5, -2, 20)),
                       "best_fid": list(range(20, 40))})
    eff = factor_effects(df, "lr", "best_fid")
    assert len(eff) == stats.N_BINS and eff["n"].sum() == 20
    assert all(str(lv).startswith("[") for lv in eff["level"])
    assert eff["mean"].is_monotonic_increasing


def test_pareto_front_known_set():
    costs = [1, 2, 3, 4, 2, 5, 1, float("nan")]
    fids = [10, 8, 9, 5, 8, 5, 12, 1]
    assert pareto_front(costs, fids).tolist() == [True, True, False, True, True, False, False, False]
    # maximizing: (2, 5) is dominated by the cheaper and higher (1, 12)
    assert pareto_front([1, 2, 3], [12, 5, 13], mode="max").tolist() == [True, False, True]
    assert pareto_front([], []).tolist() == []


def test_infer_distribution():
    assert infer_distribution(["hinge", "ns", "hinge"]) == CategoricalDistribution(["hinge", "ns"])
    assert infer_distribution([True, False]) == CategoricalDistribution([False, True])
    assert infer_distribution([32, 64, 128]) == IntDistribution(32, 128)
    assert infer_distribution([1e-4, 3e-4, 1e-2]) == FloatDistribution(1e-4, 1e-2, log=True)
    assert infer_distribution([0.1, 0.5]) == FloatDistribution(0.1, 0.5, log=False)  # < 1 decade
    assert infer_distribution([-1.0, 100.0]) == FloatDistribution(-1.0, 100.0, log=False)
    assert isinstance(infer_distribution(["a", 1]), CategoricalDistribution)


def test_importance_finds_the_dominant_factor():
    imp = param_importances(per_trial(), ["loss", "lr"], "best_fid")
    assert imp.note is None and list(imp.values)[0] == "loss"
    assert imp.values["loss"] > 0.8 and sum(imp.values.values()) == pytest.approx(1.0)
    # the other way round: lr dominates, loss barely matters
    flipped = param_importances(per_trial({"hinge": 20.0, "ns": 20.2}, {1e-4: 0.0, 1e-3: 25.0}),
                                ["loss", "lr"], "best_fid")
    assert list(flipped.values)[0] == "lr" and flipped.values["lr"] > 0.8


def test_importance_notes_instead_of_crashing():
    df = per_trial()
    one = param_importances(df, ["loss"], "best_fid")
    assert one.values is None and "at least 2 searched factors" in one.note and "loss" in one.note
    few = param_importances(df.head(3), ["loss", "lr"], "best_fid")
    assert few.values is None and "at least 4 trials" in few.note and "found 3" in few.note
    flat = param_importances(df.assign(best_fid=30.0), ["loss", "lr"], "best_fid")
    assert flat.values is None and "same" in flat.note
    nan = df.copy()
    nan.loc[:, "best_fid"] = float("nan")
    assert param_importances(nan, ["loss", "lr"], "best_fid").values is None


def test_interaction_table_cell_means():
    means, counts = interaction_table(per_trial(), "loss", "lr", "best_fid")
    assert list(means.index) == ["hinge", "ns"] and list(means.columns) == ["0.0001", "0.001"]
    assert means.loc["hinge", "0.0001"] == pytest.approx((20 + 20.6 + 19.6) / 3)
    assert means.loc["ns", "0.001"] == pytest.approx((41.5 + 42.1 + 41.1) / 3)
    assert (counts.to_numpy() == 3).all()


def test_importance_names_conditional_factors_it_could_not_assess():
    df = per_trial()
    df["ema_decay"] = [0.99 + 0.001 * i if i % 2 else None for i in range(len(df))]  # set in half the trials
    imp = param_importances(df, ["loss", "lr", "ema_decay"], "best_fid")
    assert list(imp.values)[0] == "loss" and "ema_decay" not in imp.values
    assert "ema_decay" in imp.note
