"""Contract of every registered GAN ingredient, through gensweep.testing's GAN component suite
(the registries are iterated, so a newly registered component is tested here without editing
this file), and the checks specific to one component: AC-GAN and ADC-GAN class terms, the
augmentation probability and ADA.

Losses: scalar, finite, and the right direction (D's loss falls as real logits rise and fake
logits fall; G's loss falls as fake logits rise). Architectures x conditionings: shapes at 28
and 32 px, finite values, gradients reach every parameter. Regularizers: finite, non-negative
penalties whose gradients reach the network they regularize, plus a theory check each (zero
or minimal where theory says so). Augmentations, ADA, DynamicD and conditioning terms likewise.
"""
from __future__ import annotations

import math

import pytest
import torch

from gensweep.testing.gan import GanComponentSuite
from gensweep.testing.gan_support import K
from gensweep.trainables.gan.ada import AugmentPipe
from gensweep.trainables.gan.conditioning import CONDITIONINGS
from gensweep.trainables.gan.terms import StepView


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    prev = torch.get_num_threads()
    torch.set_num_threads(1)  # the test machine's cores are shared; threads only contend
    yield
    torch.set_num_threads(prev)


class TestRegisteredComponents(GanComponentSuite):
    """Losses, architectures x conditionings, regularizers (with their theory checks),
    augmentations, DynamicD and the catalog entry of every registered component."""


# ----------------------------------------------------------------------------- conditioning terms


def test_acgan_class_loss_is_lower_when_the_classifier_is_right():
    (d_term, _) = CONDITIONINGS.get("acgan")(K, 1.0).terms()
    y = torch.arange(K)
    right = torch.eye(K) * 10
    wrong = torch.roll(right, 1, dims=1)
    mk = lambda cls: StepView(0, None, y, None, None, None, real_aux={"cls": cls}, fake_aux={"cls": cls})  # noqa: E731
    assert d_term.fn(mk(right)) < 0.01 < 10 < d_term.fn(mk(wrong))


def test_adcgan_generator_term_prefers_the_real_half_of_the_classifier():
    (_, g_term) = CONDITIONINGS.get("adcgan")(K, 1.0).terms()
    y = torch.arange(K)
    as_real = torch.cat([torch.eye(K) * 10, torch.zeros(K, K)], dim=1)
    as_fake = torch.cat([torch.zeros(K, K), torch.eye(K) * 10], dim=1)
    mk = lambda cls: StepView(0, None, y, None, None, None, fake_aux={"cls": cls})  # noqa: E731
    assert g_term.fn(mk(as_real)) < 0 < g_term.fn(mk(as_fake))


# ----------------------------------------------------------------------------- augmentation, ADA


def test_augment_pipe_probability():
    torch.manual_seed(0)
    x = torch.rand(400, 1, 8, 8)
    out = AugmentPipe("diffaug-cutout", p=0.3)(x)
    changed = (out != x).flatten(1).any(1).float().mean()
    assert 0.2 < float(changed) < 0.4


def test_ada_moves_p_toward_the_target_and_checkpoints_it():
    pipe = AugmentPipe("diffaug", target=0.6, interval=2, speed=10)
    assert pipe.p == 0.0
    overfit = StepView(0, None, None, None, None, None, real_logits=torch.ones(8))  # r_t = 1 > 0.6
    for step in range(6):
        overfit.step = step
        pipe.after_phase("D_main", overfit)
    assert math.isclose(pipe.p, 0.6) and pipe.rt == 1.0
    assert pipe.metrics() == {"aug/p": pipe.p, "aug/rt": 1.0}
    saved = pipe.state_dict()
    underfit = StepView(0, None, None, None, None, None, real_logits=-torch.ones(8))
    for step in range(100):
        underfit.step = step
        pipe.after_phase("D_main", underfit)
    assert pipe.p == 0.0  # clamped at 0
    pipe.load_state_dict(saved)
    assert math.isclose(pipe.p, 0.6)
