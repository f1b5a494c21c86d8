"""The GAN step is the references' step: one D update per iteration whatever the regularizer
(non-lazy penalties join their main phase, as StudioGAN / WGAN-GP / stylegan2-ada 'Dboth'), lazy
ones keep their own phase with stylegan2-ada's optimizer correction, and a resumed trial runs
under its config's optimizer settings, not the checkpoint's."""
from __future__ import annotations

import math

import pytest
import torch

from gensweep.trainables.context import LocalContext
from gensweep.trainables.gan.config import GanConfig
from gensweep.trainables.gan.state import GanState
from gensweep.trainables.gan.trainable import train_gan
from tests.test_gan_trainable import make_batches

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BASE = {"steps": 6, "eval_every": 6, "batch_size": 32, "resolution": 16, "width": 8, "z_dim": 8,
        "num_classes": 0, "loss": "hinge", "grid_size": 4}


def _run(**cfg) -> dict:
    ctx = LocalContext({**BASE, **cfg}, make_batches())
    train_gan(ctx)
    return ctx.states[-1]


def _flat(state: dict, key: str) -> torch.Tensor:
    return torch.cat([v.flatten().float() for v in state[key].values()])


# gp draws its interpolation weights from the global RNG, so the runs' latents part after the
# first D step: compare that step's D; r1 and r2 draw nothing, so whole runs must match.
@pytest.mark.parametrize("reg,steps,nets", [("r1", 6, "DG"), ("r2", 6, "DG"), ("gp", 1, "D")])
def test_zero_weight_non_lazy_penalty_updates_d_exactly_like_no_regularizer(reg, steps, nets):
    plain = _run(reg="none", steps=steps, eval_every=steps)
    zero = _run(reg=reg, reg_weight=0.0, steps=steps, eval_every=steps)
    assert zero["opt_D"]["state"][0]["step"].item() == plain["opt_D"]["state"][0]["step"].item() == steps
    for net in nets:
        assert torch.equal(_flat(zero, net), _flat(plain, net)), net


def test_non_lazy_penalty_takes_one_d_step_per_iteration_and_logs_its_term():
    ctx = LocalContext({**BASE, "reg": "r1"}, make_batches())
    last = train_gan(ctx)
    assert ctx.states[-1]["opt_D"]["state"][0]["step"].item() == BASE["steps"]
    assert "loss/D_reg" not in last and last["term/D_reg/r1"] > 0


def test_lazy_penalty_keeps_its_phase_every_k_steps():
    state = _run(reg="r1", reg_interval=4, steps=8, eval_every=8)
    assert state["opt_D"]["state"][0]["step"].item() == 8 + 2  # D_main every step, D_reg at steps 0 and 4


def _hparams(opt: torch.optim.Optimizer) -> tuple[float, tuple[float, float]]:
    group = opt.param_groups[0]
    assert all(g["lr"] == group["lr"] and tuple(g["betas"]) == tuple(group["betas"]) for g in opt.param_groups)
    return group["lr"], tuple(group["betas"])


def test_lazy_regularization_corrects_the_regularized_networks_adam_like_stylegan2_ada():
    cfg = GanConfig.model_validate({**BASE, "reg": "r1", "reg_interval": 4, "lr": 1e-3, "ttur": 2.0,
                                    "beta1": 0.5, "beta2": 0.99})
    st = GanState(cfg, torch.device("cpu"))
    ratio = 4 / 5
    lr_d, betas_d = _hparams(st.opt["D"])
    assert math.isclose(lr_d, 1e-3 * 2.0 * ratio)
    assert betas_d == pytest.approx((0.5**ratio, 0.99**ratio))
    assert _hparams(st.opt["G"]) == (1e-3, (0.5, 0.99))  # G has no lazy phase: untouched


@pytest.mark.parametrize("reg", ["r1", "lecam"])
def test_non_lazy_or_main_phase_regularizers_leave_adam_alone(reg):
    cfg = GanConfig.model_validate({**BASE, "reg": reg, "reg_interval": 1 if reg == "r1" else 4})
    st = GanState(cfg, torch.device("cpu"))
    assert _hparams(st.opt["D"]) == (2e-4, (0.5, 0.999)) == _hparams(st.opt["G"])


def test_resume_applies_the_configs_optimizer_settings():
    first = LocalContext({**BASE, "reg": "r1", "steps": 3, "eval_every": 3, "lr": 2e-4}, make_batches())
    train_gan(first)
    saved = first.states[-1]
    assert saved["opt_G"]["param_groups"][0]["lr"] == 2e-4
    new = {**BASE, "reg": "r1", "reg_interval": 2, "lr": 1e-3, "ttur": 4.0, "beta1": 0.0, "beta2": 0.9}
    resumed = LocalContext(new, make_batches(), state=saved)
    train_gan(resumed)
    end = resumed.states[-1]
    g, d = end["opt_G"]["param_groups"][0], end["opt_D"]["param_groups"][0]
    assert g["lr"] == 1e-3 and tuple(g["betas"]) == (0.0, 0.9)
    ratio = 2 / 3  # the new config's lazy interval corrects D's Adam
    assert math.isclose(d["lr"], 1e-3 * 4.0 * ratio) and tuple(d["betas"]) == pytest.approx((0.0, 0.9**ratio))
    # the Adam moments carried over: D's step count continues from the checkpoint's
    assert end["opt_D"]["state"][0]["step"].item() > saved["opt_D"]["state"][0]["step"].item()
