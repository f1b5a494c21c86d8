"""Adversarial losses against NumPy computations of their papers' formulas."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gensweep.trainables.gan.losses import LOSSES


def softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)  # -log(sigmoid(-x))


def test_ragan_is_the_relativistic_average_standard_gan():
    """Jolicoeur-Martineau 2018 (RaSGAN, as the official code averages it): with C the critic,
    D: -(E log sig(C(x_r) - E C(x_f)) + E log(1 - sig(C(x_f) - E C(x_r)))) / 2, G: the same with
    real and fake swapped."""
    rng = np.random.default_rng(0)
    r, f = rng.normal(0.5, 1.0, 9), rng.normal(-0.5, 2.0, 9)
    d_ref = (np.mean(softplus(-(r - f.mean()))) + np.mean(softplus(f - r.mean()))) / 2
    g_ref = (np.mean(softplus(r - f.mean())) + np.mean(softplus(-(f - r.mean())))) / 2
    adv = LOSSES.get("ragan")
    assert adv.g_uses_real and not adv.needs_lipschitz
    assert float(adv.d(torch.tensor(r), torch.tensor(f))) == pytest.approx(d_ref, rel=1e-12)
    assert float(adv.g(torch.tensor(r), torch.tensor(f))) == pytest.approx(g_ref, rel=1e-12)
    assert "average" in LOSSES.entry("ragan").ref
