"""The prepared dataset's labels against the model's classes, before Ray starts."""
from __future__ import annotations

import numpy as np
import ray
import yaml

from gensweep.cli import main as cli_main
from gensweep.platform.spec import parse_spec
from gensweep.platform.sweep.labels import label_problems

GAN = {"name": "g", "family": "gan", "trainable": {"steps": 2, "eval_every": 2, "width": 8, "batch_size": 4}}


def _spec(**changes):
    doc = yaml.safe_load(yaml.safe_dump(GAN))
    for key, value in changes.items():
        doc[key] = {**doc.get(key, {}), **value} if isinstance(value, dict) else value
    return parse_spec(doc)


def test_unconditional_models_take_any_labels():
    assert label_problems(_spec(), [-1], "folder:x") == []  # the GAN's conditioning is 'none'
    assert label_problems(_spec(trainable={"num_classes": 0}), [-1, 0, 50], "folder:x") == []
    diffusion = {"name": "d", "family": "diffusion", "trainable": {"steps": 2, "eval_every": 2, "num_classes": 0}}
    assert label_problems(parse_spec(diffusion), [-1], "folder:x") == []


def test_conditional_models_need_every_label_in_range():
    cond = _spec(trainable={"conditioning": "projection", "num_classes": 3})
    assert label_problems(cond, [0, 1, 2], "npz:x") == []
    [msg] = label_problems(cond, [0, 1, 4], "npz:x")
    assert msg.startswith("trainable.num_classes: 3") and "labels up to 4" in msg and "at least 5" in msg
    [msg] = label_problems(cond, [-1, 0], "folder:x")
    assert msg.startswith("trainable.num_classes: 3") and "unlabeled" in msg
    diffusion = parse_spec({"name": "d", "family": "diffusion", "trainable": {"steps": 2, "eval_every": 2}})
    [msg] = label_problems(diffusion, [-1], "folder:x")
    assert msg.startswith("trainable.num_classes (default): 10")


def test_a_searched_conditioning_level_is_named():
    spec = _spec(trainable={"num_classes": 2}, space={"conditioning": {"type": "categorical", "choices": ["none", "concat"]}})
    [msg] = label_problems(spec, [-1], "folder:x")
    assert msg.startswith("space.conditioning (level 'concat'): 2")


def test_labels_beyond_num_classes_stop_the_run_before_ray(tmp_path, capsys):
    x = np.random.default_rng(0).integers(0, 256, (8, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(8) % 5)
    spec = {**GAN, "trainable": {**GAN["trainable"], "conditioning": "projection", "num_classes": 3},
            "search": {"algorithm": "random", "num_trials": 1}, "scheduler": {"kind": "none"},
            "data": {"source": str(tmp_path / "d.npz"), "resolution": 8},
            "eval": {"num_samples": 8, "batch_size": 8}, "results": {"root": str(tmp_path / "results")}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
    assert cli_main(["run", str(tmp_path / "s.yaml"), "--num-cpus", "2"]) == 2
    err = capsys.readouterr().err
    assert "trainable.num_classes: 3" in err and "labels up to 4" in err and "Traceback" not in err
    assert not ray.is_initialized()
