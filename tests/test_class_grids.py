"""Per-class sample grids: a conditional trial saves one beside its sample grid (row k: class k),
and the HTML report shows it beside the best trials' grids."""
from __future__ import annotations

import base64
import re

import numpy as np
import pytest
import torch
from PIL import Image

from gensweep.platform.report import build_report
from gensweep.platform.results import ResultsStore
from gensweep.trainables.context import LocalContext
from gensweep.trainables.export import model_from_state
from gensweep.trainables.loop import class_grid_labels
from gensweep.trainables.families import FAMILIES
from tests.report_support import Page

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_grid_layout_one_row_per_class():
    labels, columns = class_grid_labels(4, 16)
    assert columns == 4 and labels.tolist() == [k for k in range(4) for _ in range(4)]
    labels, columns = class_grid_labels(100, 16)  # many classes: the first 16, at least two samples each
    assert columns == 2 and labels.max() == 15 and len(labels) == 32


@pytest.mark.parametrize("family, settings", [
    ("gan", {"arch": "dcgan", "conditioning": "acgan", "width": 4, "z_dim": 8}),
    ("diffusion", {"width": 4, "channel_mult": [1], "attn_res": 0, "eval_samplers": ["ddim:2"], "eval_batch_size": 8}),
])
def test_a_conditional_trial_saves_a_class_grid(family, settings):
    g = torch.Generator().manual_seed(0)
    data = [{"image": torch.rand(4, 1, 8, 8, generator=g) * 2 - 1, "label": torch.randint(0, 3, (4,), generator=g)}]
    cfg = {**settings, "resolution": 8, "channels": 1, "num_classes": 3, "batch_size": 4, "steps": 2, "eval_every": 2,
           "grid_size": 6}
    ctx = LocalContext(cfg, lambda epoch: iter(data))
    FAMILIES.get(family).train(ctx)
    (step, grid), = ctx.named_samples["classes"]
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    assert step == 2 and torch.equal(grid, model_from_state(ctx.states[-1]).sample(6, 0, labels=labels))

    plain = LocalContext({**cfg, "num_classes": 0, **({"conditioning": "none"} if family == "gan" else {})},
                         lambda epoch: iter(data))
    FAMILIES.get(family).train(plain)
    assert plain.named_samples == {} and len(plain.samples) == 1


def _png(path, value: int) -> str:
    Image.fromarray(np.full((12, 12, 3), value, np.uint8)).save(path)
    return str(path)


def test_report_shows_the_class_grid_of_the_best_step(tmp_path):
    root = str(tmp_path / "results")
    exp = "cond-20250101-000000"
    rows = []
    for i in range(2):
        for step in (10, 20):
            grid = _png(tmp_path / f"s{i}-{step}.png", 10 * i + step)
            row = {"experiment": exp, "trial_id": f"t{i}", "step": step, "fid": 50.0 - step - 5 * i,
                   "config/lr": 10.0 ** -(3 + i), "config/loss": ["ns", "hinge"][i], "sample_grid": grid}
            if i == 1:  # only trial t1 is conditional
                row["class_grid"] = _png(tmp_path / f"c{i}-{step}.png", 200 + step)
            rows.append(row)
    ResultsStore.open(root).write("metrics", rows)
    page = Page(build_report(root, "cond"))
    assert {"sample-grid-1", "sample-grid-2", "class-grid-1"} <= set(page.images)
    assert "class-grid-2" not in page.images  # t0 has no per-class grid
    src = page.images["class-grid-1"]
    data = base64.b64decode(re.sub(r"^data:image/png;base64,", "", src))
    with open(tmp_path / "c1-20.png", "rb") as handle:  # the best trial t1, at its best step 20
        assert data == handle.read()
