"""Resolution policy: ``data.resize`` (pad, stretch, center-crop) with a named PIL filter (bicubic,
antialiased when shrinking, by default), recorded in the manifest and in the dataset's cache key."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gensweep.platform.data import load_manifest, prepare
from gensweep.platform.data.ensure import default_uri
from gensweep.platform.data.prepare import mnist_uri
from gensweep.platform.data.transforms import TargetSpec, transform_image
from gensweep.platform.spec.experiment import DataConfig

WIDE = np.zeros((8, 16, 1), dtype=np.uint8)
WIDE[:, 8:] = 200  # left half black, right half gray


def test_pad_stretch_and_center_crop_of_a_wide_image():
    crop = transform_image(WIDE, TargetSpec(8, 1, "center-crop"))
    assert not crop[:, :4].any() and (crop[:, 4:] == 200).all()  # the middle 8 columns, no resize
    pad = transform_image(WIDE, TargetSpec(16, 1, "pad"))
    assert not pad[:4].any() and not pad[12:].any()  # 4 black rows above and below, no resize
    np.testing.assert_array_equal(pad[4:12], WIDE)
    stretch = transform_image(WIDE, TargetSpec(8, 1, "stretch", "nearest"))
    assert not stretch[:, :4].any() and (stretch[:, 4:] == 200).all()  # squeezed to half the width


def test_bicubic_default_is_antialiased_where_nearest_aliases():
    checker = ((np.indices((32, 32)).sum(0) % 2) * 255).astype(np.uint8)[..., None]  # 1-pixel checkerboard
    assert TargetSpec(8, 1, "stretch").filter == "bicubic"
    smooth = transform_image(checker, TargetSpec(8, 1, "stretch"))
    assert np.abs(smooth.astype(int) - 128).max() <= 8  # the average gray, not a pattern
    aliased = transform_image(checker, TargetSpec(8, 1, "stretch", "nearest"))
    assert set(np.unique(aliased)) <= {0, 255}
    assert not np.array_equal(transform_image(checker[:, :20], TargetSpec(8, 1, "stretch", "lanczos")),
                              transform_image(checker[:, :20], TargetSpec(8, 1, "stretch", "bilinear")))


def test_old_name_resize_means_stretch_and_unknown_names_fail():
    assert TargetSpec(8, 1, "resize").resize == "stretch"
    assert DataConfig(resize="resize").resize == "stretch"
    with pytest.raises(ValueError, match="resize filter"):
        TargetSpec(8, 1, "pad", "cubic")


def test_manifest_and_cache_key_record_the_policy(tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (12, 20, 3), dtype=np.uint8)).save(src / "a.png")
    m = prepare(str(src), str(tmp_path / "out"), resolution=8, resize="resize", resize_filter="lanczos")
    assert (m.resize, m.resize_filter) == ("stretch", "lanczos")
    assert load_manifest(str(tmp_path / "out")).resize_filter == "lanczos"
    base = dict(source=str(src), resolution=8)
    uris = {f: default_uri(DataConfig(**base, resize_filter=f), "/r") for f in ("bicubic", "lanczos", "nearest")}
    assert len(set(uris.values())) == 3
    assert default_uri(DataConfig(**base, resize="resize"), "/r") == default_uri(DataConfig(**base, resize="stretch"), "/r")
    assert mnist_uri("/r", 16, resize_filter="lanczos") == "/r/datasets/mnist-16-lanczos"
    assert mnist_uri("/r", 16) == "/r/datasets/mnist-16"


def test_readme_data_examples_are_valid_and_cover_every_kind():
    import re
    from pathlib import Path

    import yaml

    from gensweep.platform.data.sources import SOURCE_KINDS

    section = (Path(__file__).resolve().parents[1] / "README.md").read_text().split("\n## Use your own data\n")[1]
    section = section.split("\n## ", 1)[0]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    examples = [yaml.safe_load(line)["data"] for line in block.splitlines() if line.strip()]
    assert len(examples) >= 10
    for example in examples:
        DataConfig(**example)
    kinds = {re.sub(r"[`:].*|`", "", row.split("|")[1].strip().strip("`")) for row in section.splitlines()
             if row.startswith("| ") and not row.startswith("| kind")}
    assert set(SOURCE_KINDS) - {"npy", "npz"} <= kinds | {"torchvision"}, kinds
