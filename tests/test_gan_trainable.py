"""The GAN loop runs in-process with a LocalContext and resumes exactly from its checkpoint."""
from __future__ import annotations

import pytest
import torch

from gensweep.trainables.context import LocalContext
from gensweep.trainables.errors import Diverged
from gensweep.trainables.gan.trainable import train_gan

N, B = 128, 32  # 4 batches per epoch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    prev = torch.get_num_threads()
    torch.set_num_threads(1)  # shared test machine: extra threads only contend
    yield
    torch.set_num_threads(prev)


def make_batches(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(N, 1, 16, 16, generator=g) * 2 - 1
    y = torch.randint(0, 10, (N,), generator=g)

    def batches(epoch: int):
        perm = torch.randperm(N, generator=torch.Generator().manual_seed(1000 + epoch))
        for i in range(0, N - B + 1, B):
            idx = perm[i : i + B]
            yield {"image": x[idx], "label": y[idx]}

    return batches


CFG = {"steps": 8, "eval_every": 4, "batch_size": B, "resolution": 16, "width": 8, "z_dim": 8,
       "num_classes": 0, "reg": "r1", "loss": "hinge", "grid_size": 4}


def test_reports_at_every_eval_with_checkpoint_state():
    ctx = LocalContext(CFG, make_batches())
    last = train_gan(ctx)
    assert [r["step"] for r in ctx.reports] == [4, 8]
    assert last["step"] == 8 and set(ctx.states[-1]) >= {"G", "D", "G_ema", "opt_G", "opt_D", "step", "rng"}
    assert ctx.states[-1]["step"] == 8
    assert all(torch.isfinite(torch.tensor(r["loss/D_main"])) for r in ctx.reports)
    assert len(ctx.samples) == 2 and ctx.samples[0][1].shape == (4, 1, 16, 16)


def _flat(state, key):
    return torch.cat([v.flatten().float() for v in state[key].values()])


def test_resume_continues_step_counter_and_optimizer_state_exactly():
    straight = LocalContext(CFG, make_batches())
    train_gan(straight)

    first = LocalContext({**CFG, "steps": 4}, make_batches())
    train_gan(first)
    saved = first.states[-1]
    assert saved["step"] == 4
    adam_steps_at_save = saved["opt_D"]["state"][0]["step"].item()

    resumed = LocalContext(CFG, make_batches(), state=saved)
    train_gan(resumed)
    assert [r["step"] for r in resumed.reports] == [8]  # continues at 4, not from 0
    end = resumed.states[-1]
    # r1 with reg_interval 1 joins D's main phase: one Adam step per training step.
    assert adam_steps_at_save == 4
    assert end["opt_D"]["state"][0]["step"].item() == adam_steps_at_save + 4
    for key in ("G", "D", "G_ema"):
        torch.testing.assert_close(_flat(end, key), _flat(straight.states[-1], key), rtol=1e-5, atol=1e-6)
    ref = straight.states[-1]["opt_G"]["state"][0]["exp_avg"]
    torch.testing.assert_close(end["opt_G"]["state"][0]["exp_avg"], ref, rtol=1e-5, atol=1e-7)


def test_non_finite_loss_raises_diverged():
    def nan_batches(epoch):
        for batch in make_batches()(epoch):
            yield {"image": batch["image"] * float("nan"), "label": batch["label"]}

    with pytest.raises(Diverged, match="diverged at step 0: D_main loss is nan"):
        train_gan(LocalContext(CFG, nan_batches))


def test_empty_shard_is_an_error_not_a_hang():
    with pytest.raises(RuntimeError, match="gave no batch"):
        train_gan(LocalContext(CFG, lambda epoch: iter(())))


# LeCam anchors, ADA's p and statistics, DynamicD's schedule and the AC-GAN head all carry
# across a resume: the resumed run must end bit-for-bit where the straight run ends.
STATEFUL = {**CFG, "eval_every": 5, "reg": "lecam", "lecam_start": 2, "aug": "diffaug-translation", "ada_target": 0.3, "ada_interval": 3, "ada_speed": 10,
            "dynamic_d": "grow", "conditioning": "acgan", "num_classes": 10, "reg_interval": 1}


class _Preempted(Exception):
    pass


class _PreemptedAfterFirstReport(LocalContext):
    def report(self, metrics, state=None):
        super().report(metrics, state)
        raise _Preempted  # the worker dies right after its checkpoint (same config, unlike steps=4 above)


def test_resume_restores_ingredient_state_exactly():
    straight = LocalContext(STATEFUL, make_batches())
    train_gan(straight)
    first = _PreemptedAfterFirstReport(STATEFUL, make_batches())
    with pytest.raises(_Preempted):
        train_gan(first)
    saved = first.states[-1]  # step 5: mid-epoch, between two ADA adjustments
    assert saved["step"] == 5
    assert set(saved) >= {"reg_state", "aug_state", "ingredient_state"}
    assert saved["reg_state"]["lecam"]["initialized"] and saved["aug_state"]["count"] > 0
    resumed = LocalContext(STATEFUL, make_batches(), state=saved)
    train_gan(resumed)
    end, ref = resumed.states[-1], straight.states[-1]
    assert end["reg_state"] == ref["reg_state"] and end["aug_state"] == ref["aug_state"]
    assert 0 < end["aug_state"]["p"] <= 1
    for key in ("G", "D", "G_ema"):
        torch.testing.assert_close(_flat(end, key), _flat(ref, key), rtol=1e-5, atol=1e-6)
    report = resumed.reports[-1]
    assert report["aug/p"] == end["aug_state"]["p"] and 0.5 < report["dynamic_d/capacity"] < 1.0
    assert "term/D_main/lecam" in report and "term/G_main/acgan_cls" in report


def test_reg_state_is_keyed_by_regularizer_and_weights_only_loadable(tmp_path):
    ctx = LocalContext({**CFG, "steps": 2, "reg": "r1+spectral-norm", "aug": "diffaug", "ada_target": 0.6}, make_batches())
    train_gan(ctx)
    state = ctx.states[-1]
    assert set(state["reg_state"]) == {"r1", "spectral-norm"}
    torch.save(state, tmp_path / "ckpt.pt")
    loaded = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert loaded["aug_state"] == state["aug_state"]
