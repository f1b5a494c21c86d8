"""A sweep on a folder of color 64 px photos, end to end: prepare (center-crop from non-square
images), train two tiny conditional trials through Ray Tune, score FID against the folder's own
reference statistics, and write the store and the report."""
from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from gensweep.platform.data import load_manifest
from gensweep.platform.report import build_report
from gensweep.platform.results import ResultsStore
from gensweep.platform.spec import parse_spec
from gensweep.platform.sweep.runner import run_sweep
from tests.ray_support import ray_local  # noqa: F401 - fixture

pytestmark = pytest.mark.slow


def _photos(root, per_class: int = 40):
    """Two classes of 80x72 RGB images (not square, not 64 px): reddish disks and bluish bars."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:72, 0:80]
    for k, name in enumerate(("disks", "bars")):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            cy, cx, r = rng.integers(20, 52), rng.integers(20, 60), rng.integers(8, 18)
            mask = ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r) if k == 0 else (np.abs(xx - cx) < r // 2)
            img = rng.integers(0, 60, size=(72, 80, 3)).astype(np.uint8)
            img[mask] = (200, 60, 40) if k == 0 else (40, 80, 210)
            Image.fromarray(img).save(folder / f"{i:03d}.png")
    return root


def test_a_conditional_sweep_on_color_64px_photos_runs_end_to_end(tmp_path, ray_local):
    photos = _photos(tmp_path / "photos")
    root = tmp_path / "results"
    spec = parse_spec({
        "name": "color64",
        "seed": 0,
        "data": {"source": str(photos), "resolution": 64, "channels": 3, "resize": "center-crop"},
        "trainable": {"arch": "dcgan", "steps": 4, "eval_every": 4, "width": 4, "z_dim": 8, "batch_size": 8,
                      "num_classes": 2, "conditioning": "projection", "grid_size": 4},
        "space": {"lr": [2e-4, 5e-4]},
        "search": {"algorithm": "grid", "max_concurrent": 2},
        "scheduler": {"kind": "none"},
        "resources": {"launcher": "inline", "cpus_per_worker": 0.9},
        "eval": {"num_samples": 40, "ref_samples": 80, "metrics": ["fid"]},
        "results": {"root": str(root)},
    })
    outcome = run_sweep(spec, experiment="color64-run", verbose=0)
    assert outcome.num_errors == 0

    store = ResultsStore.open(str(root))
    metrics = store.read("metrics", "color64-run")
    assert sorted(metrics["step"]) == [4, 4] and all(math.isfinite(v) for v in metrics["fid"])
    dataset = metrics["refstats_key"].iloc[0].split("__")[0]
    manifests = list((root / "datasets").glob("*/manifest.json"))
    assert len(manifests) == 1
    manifest = load_manifest(str(manifests[0].parent))
    assert (manifest.resolution, manifest.channels, manifest.count, manifest.resize) == (64, 3, 80, "center-crop")
    assert sorted(set(manifest.labels)) == [0, 1]
    assert manifest.short_fingerprint == dataset  # FID against this folder's own reference statistics
    assert sorted(store.read("trials", "color64-run")["status"]) == ["completed", "completed"]
    page = build_report(str(root), "color64-run")
    assert "Sample grids" in page and "data:image/png;base64," in page
