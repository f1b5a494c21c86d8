"""The report reads well: a real-data grid beside the generated ones, caveats where effects rest
on few trials. (Axis labels in a browser: tests/test_report_browser.py.)"""
from __future__ import annotations

import base64
import io
import re

import numpy as np

from gensweep.platform.data import read_arrays
from gensweep.platform.data.prepare import prepare
from gensweep.platform.report import build_report, render_report
from gensweep.platform.report.real_data import GRID_SIDE, PAD
from tests.report_support import EXPERIMENT, Page, make_store, synthetic_report_data


def test_real_data_grid_shows_the_first_records_of_the_sweeps_dataset(tmp_path):
    from PIL import Image

    from gensweep.platform.data.ensure import dataset_uri
    from gensweep.platform.spec.experiment import DataConfig

    root = str(tmp_path / "results")
    store = make_store(root, str(tmp_path / "grids"))
    rng = np.random.default_rng(0)
    source = tmp_path / "digits.npz"
    np.savez(source, images=rng.integers(0, 256, size=(20, 8, 8), dtype=np.uint8), labels=np.arange(20))
    data = {"source": str(source), "resolution": 8}
    prepare(str(source), dataset_uri(DataConfig(**data), root), resolution=8, channels=1)
    store.log_experiment(EXPERIMENT, spec=f"name: ablation\ndata:\n  source: {source}\n  resolution: 8\n",
                         status="completed", seed=0)

    page = Page(build_report(root, EXPERIMENT, n_boot=200))
    src = page.images["real-data-grid"]
    grid = np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))))
    assert grid.shape == (GRID_SIDE * (8 + PAD) + PAD,) * 2
    first, _ = read_arrays(dataset_uri(DataConfig(**data), root), limit=GRID_SIDE * GRID_SIDE)
    for k in (0, 5, 15):
        r, c = divmod(k, GRID_SIDE)
        y, x = PAD + r * (8 + PAD), PAD + c * (8 + PAD)
        assert np.array_equal(grid[y:y + 8, x:x + 8], first[k][..., 0]), k


def test_without_the_dataset_the_report_says_why(tmp_path):
    root = str(tmp_path / "results")
    make_store(root, str(tmp_path / "grids"))  # its spec has no data section: MNIST, never prepared here
    text = build_report(root, EXPERIMENT, n_boot=200)
    assert "real-data-grid" not in Page(text).images
    assert "No real-data grid: the dataset is not at" in text and "mnist-32" in text


def test_effects_resting_on_few_trials_carry_a_caveat():
    text = render_report(synthetic_report_data(9), n_boot=200).html
    # 9 trials over 4 loss levels: every level has fewer than 5
    caveat = re.search(r"Caveat: (\d) of (\d) levels of loss rest on fewer than 5 trials: ([^.]*)\.", text)
    assert caveat and caveat.group(1) == caveat.group(2) == "4"
    assert sum(int(n) for n in re.findall(r"\(n=(\d+)\)", caveat.group(3))) == 9  # every level, with its n
    assert "cells rest on fewer than 5 trials" in text

    many = render_report(synthetic_report_data(200), n_boot=200).html
    assert "levels of loss rest on fewer" not in many and "levels of width rest on fewer" not in many
