"""DiffAugment policy strings (Zhao et al. 2020): the named transforms in the given order, each
checked against what the reference code does to an image, and policies validated by name."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from gensweep.trainables.gan.ada import AugmentPipe
from gensweep.trainables.gan.augment import AUG_POLICIES, PolicyAugment, parse_policy
from gensweep.trainables.gan.config import GanConfig
from gensweep.trainables.gan.config import violations

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _images(n=8, c=3, h=16, w=12, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _is_translation(out: np.ndarray, x: np.ndarray, ratio: float = 0.125) -> bool:
    """out is x shifted by (dy, dx) with |dy| <= ratio*H + 0.5, |dx| <= ratio*W + 0.5, zeros shifted in."""
    h, w = x.shape[1:]
    for dy in range(-int(h * ratio + 0.5), int(h * ratio + 0.5) + 1):
        for dx in range(-int(w * ratio + 0.5), int(w * ratio + 0.5) + 1):
            ref = np.zeros_like(x)
            ys, yd = slice(max(dy, 0), h + min(dy, 0)), slice(max(-dy, 0), h + min(-dy, 0))
            xs, xd = slice(max(dx, 0), w + min(dx, 0)), slice(max(-dx, 0), w + min(-dx, 0))
            ref[:, yd, xd] = x[:, ys, xs]
            if np.array_equal(out, ref):
                return True
    return False


def _is_cutout(out: np.ndarray, x: np.ndarray, ratio: float = 0.5) -> bool:
    """out is x with one (clipped) rectangle of about ratio*H x ratio*W zeroed in every channel."""
    zeroed = (out == 0).all(0) & (x != 0).any(0)
    if not np.array_equal(out[:, ~zeroed], x[:, ~zeroed]) or not zeroed.any():
        return False
    rows, cols = np.where(zeroed.any(1))[0], np.where(zeroed.any(0))[0]
    box = zeroed[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = x.shape[1:]
    return bool(box.all()) and box.shape[0] <= int(h * ratio + 0.5) and box.shape[1] <= int(w * ratio + 0.5)


def test_policy_transforms_do_what_the_reference_does_to_each_image():
    x = _images()
    torch.manual_seed(1)
    moved = AUG_POLICIES.get("translation")(x).numpy()
    cut = AUG_POLICIES.get("cutout")(x).numpy()
    for i in range(len(x)):
        assert _is_translation(moved[i], x[i].numpy()), i
        assert _is_cutout(cut[i], x[i].numpy()), i
    colored = AUG_POLICIES.get("color")(x)
    assert colored.shape == x.shape and not torch.allclose(colored, x)
    assert AUG_POLICIES.names() == ["color", "cutout", "translation"]


@pytest.mark.parametrize("policy", ["translation,cutout", "cutout,translation", "color,translation,cutout", "color"])
def test_a_policy_applies_its_transforms_in_the_order_given(policy):
    x = _images().requires_grad_(True)
    torch.manual_seed(5)
    out = PolicyAugment(policy)(x)
    torch.manual_seed(5)
    ref = x
    for name in policy.split(","):
        ref = AUG_POLICIES.get(name)(ref)
    assert torch.equal(out, ref)
    out.square().sum().backward()  # differentiable: G trains through it
    assert float(x.grad.abs().sum()) > 0


def test_policy_strings_are_validated_naming_the_allowed_transforms():
    assert parse_policy(" color, translation ,cutout") == ("color", "translation", "cutout")
    for bad in ("colour", "color,,cutout", "", "translation,zoom"):
        with pytest.raises(ValueError, match="allowed: color, cutout, translation"):
            parse_policy(bad)
    with pytest.raises(ValidationError, match="unknown DiffAugment policy 'zoom'"):
        GanConfig.model_validate({"aug": "diffaug", "aug_policy": "translation,zoom"})
    assert GanConfig.model_validate({"aug": "diffaug", "aug_policy": "translation, cutout"}).aug_policy == "translation,cutout"


def test_the_pipe_runs_the_configured_policy_on_real_and_fake_alike():
    x = _images()
    pipe = AugmentPipe("diffaug", 1.0, policy="translation")
    torch.manual_seed(2)
    out = pipe(x).numpy()
    assert all(_is_translation(out[i], x[i].numpy()) for i in range(len(x)))
    assert AugmentPipe("diffaug", 1.0).fn is not pipe.fn


def test_a_policy_needs_a_diffaugment_augmentation():
    (msg,) = violations({"aug": "none", "aug_policy": "translation"})
    assert "aug_policy='translation'" in msg and msg.endswith("(fields: aug, aug_policy)")
    assert violations({"aug": "diffaug-cutout", "aug_policy": "color,cutout"}) == []
