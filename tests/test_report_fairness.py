"""Issue 16: the report compares arms fairly -- equal budget, n per level, no interval from
n < 3, unsampled levels listed, numeric parameters as numbers, the FID floor beside the
scores, the backbone and N on the metric axis."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from gensweep.platform.report import build_report
from gensweep.platform.report.labels import eval_protocol, short_number
from gensweep.platform.report.stats import factor_effects
from gensweep.platform.results import ResultsStore
from tests.report_support import EXPERIMENT, Page, make_store

EXP = "fair-20250101-000000"
SPEC = """name: fair
family: gan
trainable: {steps: 450, eval_every: 150}
space:
  loss: [ns, hinge, lsgan]
  lr: {type: loguniform, low: 1.0e-5, high: 1.0e-2}
search: {algorithm: optuna-tpe, num_trials: 6}
scheduler: {kind: asha}
"""


def _store(tmp_path, trials, spec=SPEC, **extra) -> str:
    """``trials``: (trial id, loss, lr, {step: fid}); metrics and trials rows through the store."""
    root = str(tmp_path / "results")
    store = ResultsStore.open(root)
    store.log_experiment(EXP, spec=spec, status="completed")
    metrics, rows = [], []
    for tid, loss, lr, series in trials:
        config = {"config/loss": loss, "config/lr": lr}
        for step, fid in series.items():
            metrics.append({"experiment": EXP, "trial_id": tid, "step": step, "fid": fid, **config, **extra})
        rows.append({"experiment": EXP, "trial_id": tid, "status": "completed" if max(series) == 450 else "stopped",
                     "wall_time_s": float(max(series)), **config})
    store.write("metrics", metrics)
    store.write("trials", rows)
    return root


def _asha_trials():
    # hinge: stopped at step 150, FID 30-32 there; ns: 40-42 at step 150, 20-22 at the end (450).
    # Pooled "best over training" says ns is better (21 vs 31); at equal budget hinge is (31 vs 41).
    out = []
    for i in range(3):
        out.append((f"h{i}", "hinge", 1e-4, {150: 30.0 + i}))
        out.append((f"n{i}", "ns", 1e-4 * (i + 2), {150: 40.0 + i, 300: 30.0 + i, 450: 20.0 + i}))
    return out


def _effects(page: Page, factor_index: int = 0) -> dict[str, list[str]]:
    return {r[0]: r for r in page.tables[f"effect-table-{factor_index}"][1:]}


def test_equal_budget_does_not_pool_stopped_trials(tmp_path):
    root = _store(tmp_path, _asha_trials())
    text = build_report(root, EXP, n_boot=200)
    page = Page(text)
    loss = _effects(page)
    assert float(loss["hinge"][2]) == pytest.approx(31.0) and float(loss["ns"][2]) == pytest.approx(41.0)
    assert page.tables["effect-table-0"][0][2] == "mean best fid to step 150"
    assert "the last step every scored trial reached" in text
    final = Page(text := build_report(root, EXP, n_boot=200, budget="final"))
    loss = _effects(final)
    assert set(loss) == {"ns"} and float(loss["ns"][2]) == pytest.approx(21.0)
    assert "3 trials stopped earlier are left out" in text


def test_level_with_fewer_than_three_trials_has_no_interval(tmp_path):
    trials = [(f"h{i}", "hinge", 1e-4, {150: 30.0 + i, 300: 20.0 + i, 450: 10.0 + i}) for i in range(4)]
    trials += [("n0", "ns", 1e-4, {150: 40.0, 300: 35.0, 450: 30.0}),
               ("l0", "lsgan", 1e-4, {150: 50.0, 300: 45.0, 450: 41.0}),
               ("l1", "lsgan", 1e-4, {150: 52.0, 300: 46.0, 450: 43.0})]
    page = Page(build_report(_store(tmp_path, trials), EXP, n_boot=200))
    loss = _effects(page)
    assert [loss[lv][1] for lv in ("hinge", "ns", "lsgan")] == ["4", "1", "2"]  # n per level
    for level in ("ns", "lsgan"):
        assert loss[level][3] == loss[level][4] == "not estimable (n < 3)"
    assert float(loss["hinge"][3]) < float(loss["hinge"][2]) < float(loss["hinge"][4])
    df = pd.DataFrame({"trial_id": ["a", "b", "c", "d"], "f": ["x", "y", "y", "y"], "v": [1.0, 2.0, 3.0, 4.0]})
    eff = factor_effects(df, "f", "v").set_index("level")
    assert not eff.loc["x", "estimable"] and math.isnan(eff.loc["x", "ci_low"]) and eff.loc["x", "mean"] == 1.0
    assert eff.loc["y", "estimable"] and eff.loc["y", "ci_low"] < eff.loc["y", "ci_high"]


def test_unsampled_levels_of_the_space_are_listed(tmp_path):
    page = Page(text := build_report(_store(tmp_path, _asha_trials()), EXP, n_boot=200))
    rows = {r[0]: r for r in page.tables["coverage-table"][1:]}
    assert rows["loss"][2].startswith("2 of 3 levels") and rows["loss"][3] == "lsgan"
    assert rows["lr"][1] == "loguniform [1e-5, 0.01]" and rows["lr"][3] == ""
    assert "Never sampled: levels of loss" in text


def test_numeric_parameter_is_a_number_not_six_levels(tmp_path):
    lrs = list(np.logspace(-5, -2, 6))
    df = pd.DataFrame({"trial_id": [f"t{i}" for i in range(6)], "lr": lrs, "v": [10.0 + i for i in range(6)]})
    eff = factor_effects(df, "lr", "v")
    assert list(eff["n"]) == [3, 3] and all(str(lv).startswith("[") for lv in eff["level"])
    trials = [(f"t{i}", "hinge" if i % 2 else "ns", lr, {150: 40.0 + i, 450: 20.0 + i}) for i, lr in enumerate(lrs)]
    page = Page(text := build_report(_store(tmp_path, trials), EXP, n_boot=200))
    lr_rows = page.tables["effect-table-1"][1:]
    assert len(lr_rows) == 2 and lr_rows[0][0] == "[1e-5, 4e-4]"
    assert "<h3>lr (numeric)</h3>" in text


def test_fid_floor_is_printed_beside_the_scores(tmp_path):
    page = Page(text := build_report(_store(tmp_path, _asha_trials(), fid_floor=2.5), EXP, n_boot=200))
    assert page.tables["leaderboard-table"][0][3] == "best fid (floor 2.5)"
    assert "dashed: the real-vs-real floor 2.5" in text and "real-vs-real floor: 2.5" in text


def test_metric_axis_names_backbone_and_n(tmp_path):
    make_store(str(tmp_path / "results"), str(tmp_path / "grids"))
    text = build_report(str(tmp_path / "results"), EXPERIMENT, n_boot=200)
    assert "Axis: FID (mnist-lenet, N=1000)." in text
    ladder = pd.DataFrame({"fid": [1.0, 2.0, None], "backbone": ["inception-v3-tf"] * 3, "eval_n": [250, 1000, 50]})
    assert eval_protocol(ladder, "fid") == "inception-v3-tf, N=250-1000"
    assert [short_number(v) for v in (1e-4, 3.16227e-4, 0.05, 0.25, 128, 2.5e5, 1.5)] == \
        ["1e-4", "3.2e-4", "0.05", "0.25", "128", "2.5e5", "1.5"]
