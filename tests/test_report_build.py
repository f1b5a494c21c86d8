"""`gensweep report` / build_report on a synthetic 12-trial store (2 x 2 grid x 3 seeds)."""
from __future__ import annotations

import base64
import io
import os
import re

import pytest

from gensweep.cli import main
from gensweep.platform.report import SECTIONS, build_report
from gensweep.platform.results import ResultsStore
import numpy as np

from tests.report_support import EXPERIMENT, LOSS_EFFECT, LR_EFFECT, SEED_EFFECT, Page as _Page, make_store


def _png(src: str):
    from PIL import Image

    assert src.startswith("data:image/png;base64,")
    data = base64.b64decode(src.split(",", 1)[1])
    return data, Image.open(io.BytesIO(data))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    base = tmp_path_factory.mktemp("report")
    root, grids = str(base / "results"), str(base / "grids")
    store = make_store(root, grids)
    store.log_experiment("ablation-20250101-000000", status="completed")  # an older run of the same spec
    out = str(base / "out" / "report.html")
    # The CLI with a spec name: its latest run.
    assert main(["report", "ablation", "--root", root, "-o", out, "--bootstrap", "1000"]) == 0
    with open(out, encoding="utf-8") as handle:
        text = handle.read()
    return {"root": root, "grids": grids, "html": text, "page": _Page(text), "out": out}


def test_report_has_every_section_and_is_self_contained(built):
    page, text = built["page"], built["html"]
    assert page.sections == list(SECTIONS)
    assert EXPERIMENT in text
    assert not {"script", "link", "iframe"} & page.tags
    # nothing is fetched: every src is a data URI, no http(s) reference anywhere
    assert all(src.startswith("data:image/") for src in page.images.values())
    assert not re.search(r"(src|href)=\"(https?:|//|file:)", text)
    expected = {"plot-fid-curves", "plot-effect-0", "plot-effect-1", "plot-importance", "plot-interaction",
                "plot-pareto", "sample-grid-1", "sample-grid-2", "sample-grid-3"}
    assert set(page.images) == expected
    for image_id in expected:
        _, im = _png(page.images[image_id])
        assert im.size[0] >= 64 and im.size[1] >= 64


def test_leaderboard_table(built):
    rows = built["page"].tables["leaderboard-table"]
    header, body = rows[0], rows[1:]
    assert header[:4] == ["rank", "trial", "status", "best fid"] and "loss" in header and "lr" in header
    assert len(body) == 12
    assert [r[1] for r in body[:3]] == ["t02", "t00", "t01"]
    assert [float(r[3]) for r in body[:3]] == [19.6, 20.0, 20.6]
    assert body[0][4] == "400"  # t02's best is at step 400, before its last evaluation


def test_configurations_over_seeds_match_a_t_interval_computed_by_hand(built):
    from scipy import stats

    rows = built["page"].tables["replicates-table"]
    header, body = rows[0], rows[1:]
    assert header == ["rank", "loss", "lr", "n seeds", "mean", "95% interval", "sd", "best seed", "seeds"]
    seeds = np.array([SEED_EFFECT[s] for s in (0, 1, 2)])
    expected = sorted(((LOSS_EFFECT[loss] + LR_EFFECT[lr] + seeds, loss, lr) for loss in LOSS_EFFECT
                       for lr in LR_EFFECT), key=lambda e: e[0].mean())
    assert len(body) == 4
    for rank, (row, (vals, loss, lr)) in enumerate(zip(body, expected), start=1):
        low, high = stats.t.interval(0.95, df=2, loc=vals.mean(), scale=stats.sem(vals))
        assert row[:4] == [str(rank), loss, f"{lr:.4g}", "3"]
        assert float(row[4]) == pytest.approx(vals.mean(), rel=1e-3)
        lo_text, hi_text = row[5].split(" to ")
        assert float(lo_text) == pytest.approx(low, rel=1e-3) and float(hi_text) == pytest.approx(high, rel=1e-3)
        assert float(row[6]) == pytest.approx(vals.std(ddof=1), rel=1e-3)
        assert float(row[7]) == pytest.approx(vals.min(), rel=1e-3) and row[8] == "0, 1, 2"


def test_factor_effects_match_hand_computation(built):
    tables = built["page"].tables
    header, *rows = tables["effect-table-0"]  # loss
    assert header == ["level", "trials", "mean best fid", "95% CI low", "95% CI high", "best fid"]
    by_level = {r[0]: r for r in rows}
    hinge = [20.0, 20.6, 19.6, 21.5, 22.1, 21.1]  # 20 + lr (0 | 1.5) + seed (0, .6, -.4)
    assert by_level["hinge"][1] == "6"
    assert float(by_level["hinge"][2]) == pytest.approx(sum(hinge) / 6, abs=5e-3)
    assert float(by_level["hinge"][5]) == pytest.approx(19.6)
    assert float(by_level["ns"][2]) == pytest.approx(sum(hinge) / 6 + 20, abs=5e-3)
    for r, vals in ((by_level["hinge"], hinge), (by_level["ns"], [v + 20 for v in hinge])):
        lo, mean, hi = float(r[3]), float(r[2]), float(r[4])
        assert min(vals) <= lo < mean < hi <= max(vals)
    _, *lr_rows = tables["effect-table-1"]
    lr = {r[0]: r for r in lr_rows}
    assert float(lr["0.0001"][2]) == pytest.approx((20 + 20.6 + 19.6 + 40 + 40.6 + 39.6) / 6, abs=5e-3)
    assert float(lr["0.001"][5]) == pytest.approx(21.1)


def test_importance_interaction_pareto_and_samples(built):
    page = built["page"]
    imp = page.tables["importance-table"][1:]
    assert imp[0][0] == "loss" and float(imp[0][1]) > 0.8
    assert page.tables["interaction-table"][0] == ["loss \\ lr", "0.0001", "0.001"]
    # cpu_hours: t00 0.10 (FID 20), t01 0.11 (20.6), t02 0.12 (19.6, the best); every other trial
    # costs more and is worse, so the front is t00 then t02.
    assert [r[0] for r in page.tables["pareto-table"][1:]] == ["t00", "t02"]
    assert "CPU-hours (trials.cpu_hours)" in built["html"]
    # best three trials' grids, each taken at its best step
    expected = [("t02", 400), ("t00", 500), ("t01", 500)]
    for rank, (trial, step) in enumerate(expected, start=1):
        data, _ = _png(page.images[f"sample-grid-{rank}"])
        with open(os.path.join(built["grids"], trial, f"samples_{step:06d}.png"), "rb") as handle:
            assert data == handle.read()


def test_cost_falls_back_to_wall_time_times_workers(tmp_path):
    root = str(tmp_path / "results")
    make_store(root, str(tmp_path / "grids"), with_costs=False, workers=2)
    text = build_report(root, EXPERIMENT, n_boot=200)
    page = _Page(text)
    assert "worker-hours (wall_time_s x 2 workers / 3600)" in text  # the spec's resources.workers
    front = {r[0]: float(r[1]) for r in page.tables["pareto-table"][1:]}
    assert front["t00"] == pytest.approx(600.0 * 2 / 3600, rel=1e-3)


def test_one_factor_and_missing_images_give_notes(tmp_path):
    root = str(tmp_path / "results")
    store = ResultsStore.open(root)
    exp = "single-20250101-000000"
    rows = []
    for i, lr in enumerate([1e-4, 1e-4, 1e-3, 1e-3, 1e-2]):
        for step in (10, 20):
            rows.append({"experiment": exp, "trial_id": f"s{i}", "step": step, "fid": 50.0 - step + i,
                         "config/lr": lr, "config/arch": "dcgan",
                         "sample_grid": str(tmp_path / "missing.png")})
    store.write("metrics", rows)
    page = _Page(text := build_report(root, "single"))
    assert page.sections == list(SECTIONS)
    assert "at least 2 searched factors; found 1 (lr)" in text
    assert "interaction heatmap needs two searched factors" in text
    assert "cannot read" in text and "missing.png" in text
    assert "No trial has both a fid and a cost" in text  # no trials rows, no time_total_s
    assert set(page.images) == {"plot-fid-curves", "plot-effect-0"}
    assert "arch" not in page.tables["leaderboard-table"][0]  # a constant config column is no factor


def test_cli_unknown_experiment(tmp_path, capsys):
    root = str(tmp_path / "results")
    ResultsStore.open(root).log_experiment("other-20250101-000000")
    assert main(["report", "nope", "--root", root, "-o", str(tmp_path / "r.html")]) == 2
    assert "no experiment 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()
