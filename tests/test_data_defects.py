"""Data defects that each had a test failing on the old code: 16-bit PNGs stored as all-255,
a truncated PNG ending in a traceback, and a conditional model on unlabeled data crashing at step 1."""
from __future__ import annotations

import numpy as np
import pytest
import ray
import yaml
from PIL import Image

from gensweep.cli import main as cli_main
from gensweep.platform.data import prepare, read_arrays


def test_16bit_png_is_scaled_not_clipped(tmp_path):
    src = tmp_path / "deep"
    src.mkdir()
    values = np.array([[0, 257, 1000, 32768], [40000, 65535, 514, 12850]] * 2, dtype=np.uint16)
    Image.fromarray(values).save(src / "a.png")  # mode I;16: a 16-bit grayscale PNG
    assert Image.open(src / "a.png").mode.startswith("I")
    prepare(str(src), str(tmp_path / "out"), resolution=4, channels=1)
    x, _ = read_arrays(str(tmp_path / "out"))
    np.testing.assert_array_equal(x[0, ..., 0], np.round(values / 257.0).astype(np.uint8)[:4])


def _truncated_png(path):
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_truncated_png_is_a_clean_error_from_data_prepare(tmp_path, capsys):
    src = tmp_path / "imgs"
    src.mkdir()
    Image.fromarray(np.zeros((16, 16, 3), dtype=np.uint8)).save(src / "good.png")
    _truncated_png(src / "broken.png")
    rc = cli_main(["data", "prepare", str(src), str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert "broken.png" in err and "data.bad_records" in err


def test_conditional_model_on_unlabeled_folder_is_refused_before_ray(tmp_path, capsys):
    """The diffusion default num_classes: 10 on an unlabeled folder used to crash at step 1 (IndexError)."""
    src = tmp_path / "imgs"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8), "L").save(src / f"{i}.png")
    spec = {"name": "unlabeled", "family": "diffusion",
            "trainable": {"steps": 2, "eval_every": 2, "batch_size": 4, "width": 8, "channel_mult": [1], "attn_res": 0},
            "search": {"algorithm": "random", "num_trials": 1}, "scheduler": {"kind": "none"},
            "data": {"source": str(src), "resolution": 8, "channels": 1},
            "eval": {"num_samples": 8, "batch_size": 8},
            "results": {"root": str(tmp_path / "results")}}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert not ray.is_initialized()
    rc = cli_main(["run", str(path), "--num-cpus", "2"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "trainable.num_classes" in err and "unlabeled" in err
    assert not ray.is_initialized()


def _zero_byte_npz(tmp_path):
    (tmp_path / "empty.npz").write_bytes(b"")
    return str(tmp_path / "empty.npz"), "empty.npz"


def _truncated_png_folder(tmp_path):
    src = tmp_path / "imgs"
    src.mkdir()
    _truncated_png(src / "broken.png")
    Image.fromarray(np.zeros((16, 16, 3), dtype=np.uint8)).save(src / "good.png")
    return str(src), "broken.png"


@pytest.mark.parametrize("make", [_zero_byte_npz, _truncated_png_folder], ids=["zero-byte-npz", "truncated-png"])
def test_unreadable_data_stops_gensweep_run_cleanly(make, tmp_path, capsys):
    source, name = make(tmp_path)
    spec = {"name": "bad-data", "trainable": {"steps": 2, "eval_every": 2, "width": 8, "batch_size": 4, "num_classes": 0},
            "search": {"algorithm": "random", "num_trials": 1}, "scheduler": {"kind": "none"},
            "data": {"source": source, "resolution": 16, "channels": 3}, "results": {"root": str(tmp_path / "r")}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    rc = cli_main(["run", str(tmp_path / "spec.yaml"), "--num-cpus", "2"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert "data.source" in err and name in err
    assert not ray.is_initialized()
