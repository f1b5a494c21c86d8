"""Sampling a chosen class, `gensweep sample`, `gensweep export` and the platform-free loader."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gensweep.cli import main
from gensweep.platform.trial.checkpoints import INFO_KEYS, write_checkpoint_dir
from gensweep.trainables.context import LocalContext
from gensweep.trainables.export import ExportError, export_model, load_exported, model_from_state
from gensweep.trainables.families import FAMILIES

pytestmark = pytest.mark.usefixtures("one_torch_thread")

K = 4
CONFIGS = {
    "gan": {"arch": "dcgan", "conditioning": "projection", "width": 4, "z_dim": 8, "ema_beta": 0.9},
    "diffusion": {"width": 4, "channel_mult": [1, 2], "attn_res": 0, "eval_samplers": ["ddim:2"], "eval_batch_size": 3},
}


def train(family: str, **overrides) -> dict:
    g = torch.Generator().manual_seed(0)
    data = [{"image": torch.rand(4, 3, 8, 8, generator=g) * 2 - 1, "label": torch.randint(0, K, (4,), generator=g)}]
    cfg = {**CONFIGS[family], "resolution": 8, "channels": 3, "num_classes": K, "batch_size": 4, "steps": 3,
           "eval_every": 3, "grid_size": 2, **overrides}
    ctx = LocalContext(cfg, lambda epoch: iter(data))
    FAMILIES.get(family).train(ctx)
    return ctx.states[-1]


@pytest.fixture(scope="module")
def states() -> dict[str, dict]:
    return {family: train(family) for family in CONFIGS}


@pytest.fixture(scope="module")
def checkpoints(states, tmp_path_factory) -> dict[str, str]:
    out = {}
    for family, state in states.items():
        d = tmp_path_factory.mktemp(f"ckpt-{family}")
        info = {k: "" for k in INFO_KEYS} | {"experiment": "exp", "trial_id": f"t-{family}", "family": family,
                                               "storage": {}, "eval": {}, "reference": {}}
        write_checkpoint_dir(str(d), state, info)
        out[family] = str(d)
    return out


def test_gan_samples_the_chosen_class_from_the_same_latents(states):
    model = model_from_state(states["gan"])
    sample = model.sampler()
    g = torch.Generator().manual_seed(5)
    z = torch.randn(3, 8, generator=g)
    drawn = torch.randint(0, K, (3,), generator=g)
    with torch.no_grad():
        assert torch.equal(sample(3, 5), model.net(z, drawn).clamp(-1, 1))  # uniform labels: as before
        chosen = torch.tensor([2, 2, 2])
        assert torch.equal(sample(3, 5, labels=chosen), model.net(z, chosen).clamp(-1, 1))
    assert model.weights == "G_ema"


def test_diffusion_samples_the_chosen_class_with_the_same_noise(states):
    model = model_from_state(states["diffusion"])
    seen: list[torch.Tensor] = []
    model.net.register_forward_pre_hook(lambda module, args: seen.append(args[2].clone()))
    sample = model.sampler()
    drawn = torch.randint(0, K, (3,), generator=torch.Generator().manual_seed(5))
    assert torch.equal(sample(3, 5, labels=drawn), sample(3, 5))  # same labels, same noise: same images
    assert all(torch.equal(lab, drawn) for lab in seen)  # (guidance 1: no null-label pass)
    seen.clear()
    sample(3, 5, labels=torch.tensor([1, 1, 1]))
    assert seen and all(torch.equal(lab, torch.tensor([1, 1, 1])) for lab in seen)


@pytest.mark.parametrize("labels, error", [([K, 0], r"\[0, 4\)"), ([0], "1 labels for 2 samples")])
def test_chosen_labels_are_checked(states, labels, error):
    for family in CONFIGS:
        with pytest.raises(ValueError, match=error):
            model_from_state(states[family]).sample(2, 0, labels=torch.tensor(labels))


def test_an_unconditional_model_refuses_a_class():
    state = train("gan", conditioning="none", steps=1, eval_every=1)
    with pytest.raises(ValueError, match="unconditional"):
        model_from_state(state).sample(2, 0, labels=torch.tensor([0, 1]))


@pytest.mark.parametrize("family", sorted(CONFIGS))
def test_export_round_trip(states, family, tmp_path):
    path = str(tmp_path / "model.safetensors")
    exported = export_model(states[family], path)
    loaded = load_exported(path)
    assert (loaded.family, loaded.config, loaded.weights) == (family, states[family]["config"], exported.weights)
    ema = "G_ema" if family == "gan" else "ema"
    assert loaded.weights == ema
    for name, tensor in loaded.net.state_dict().items():
        assert torch.equal(tensor, states[family][ema][name]), name
    labels = torch.tensor([0, 3, 1])
    assert torch.equal(loaded.sample(3, 1, labels=labels), exported.sample(3, 1, labels=labels))


def test_load_exported_refuses_a_foreign_file(tmp_path):
    from safetensors.torch import save_file

    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(plain))
    with pytest.raises(ExportError, match="not a model exported by gensweep"):
        load_exported(str(plain))
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not safetensors")
    with pytest.raises(ExportError, match="not a .safetensors file"):
        load_exported(str(junk))


def test_loader_imports_neither_ray_nor_the_platform(states, tmp_path):
    path = tmp_path / "g.safetensors"
    export_model(states["gan"], str(path))
    expected = tmp_path / "expected.npy"
    np.save(expected, model_from_state(states["gan"]).sample(2, 3, labels=torch.tensor([1, 1])).numpy())
    code = textwrap.dedent(f"""
        import sys, numpy, torch
        from gensweep.trainables import load_exported
        model = load_exported({str(path)!r})
        images = model.sample(2, 3, labels=torch.tensor([1, 1]))
        assert numpy.array_equal(images.numpy(), numpy.load({str(expected)!r}))
        loaded = sorted(m for m in sys.modules if m == "ray" or m.startswith(("ray.", "gensweep.platform", "gensweep.cli")))
        assert not loaded, loaded
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_cli_export_then_sample_a_class(checkpoints, tmp_path, capsys):
    exported = tmp_path / "out" / "gan.safetensors"
    assert main(["export", checkpoints["gan"], "-o", str(exported)]) == 0
    assert "G_ema weights" in capsys.readouterr().out
    from safetensors import safe_open

    with safe_open(str(exported), framework="pt") as f:
        assert json.loads(f.metadata()["gensweep.config"])["num_classes"] == K

    grid_a, grid_b = tmp_path / "a.png", tmp_path / "b.png"
    assert main(["sample", checkpoints["gan"], "-n", "6", "--class", "2", "--seed", "3", "-o", str(grid_a)]) == 0
    assert main(["sample", str(exported), "-n", "6", "--class", "2", "--seed", "3", "-o", str(grid_b)]) == 0
    assert grid_a.read_bytes() == grid_b.read_bytes()  # the exported file samples as its checkpoint
    folder = tmp_path / "imgs"
    assert main(["sample", checkpoints["diffusion"], "-n", "3", "--class", "1", "--sampler", "ddpm", "--steps", "2",
                 "-o", str(folder)]) == 0
    files = sorted(p.name for p in folder.iterdir())
    assert files == ["000000.png", "000001.png", "000002.png"]
    assert np.asarray(Image.open(folder / files[0])).shape == (8, 8, 3)


@pytest.mark.parametrize("argv, error", [
    (["--class", str(K)], "[0, 4)"),
    (["--sampler", "ddim"], "--sampler and --steps are for diffusion models"),
])
def test_cli_sample_errors(checkpoints, tmp_path, capsys, argv, error):
    assert main(["sample", checkpoints["gan"], "-n", "2", "-o", str(tmp_path / "x.png"), *argv]) == 2
    assert error in capsys.readouterr().err


def test_cli_export_refuses_other_suffixes_and_missing_checkpoints(checkpoints, tmp_path, capsys):
    assert main(["export", checkpoints["gan"], "-o", str(tmp_path / "m.pt")]) == 2
    assert "must be a .safetensors file" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nowhere"), "-o", str(tmp_path / "m.safetensors")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not Path(tmp_path / "m.safetensors").exists()
