"""The diffusion loop runs in-process with a LocalContext, reports per sampler setting, resumes exactly,
and its config and search space validate."""
from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from gensweep.platform.spec import parse_spec
from gensweep.trainables.context import LocalContext
from gensweep.trainables.diffusion.config import DiffusionConfig
from gensweep.trainables.diffusion.trainable import train_diffusion
from gensweep.trainables.errors import Diverged
from gensweep.trainables.families import FAMILIES


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """One intra-op thread: on a shared, oversubscribed CPU, torch's thread pool spins and slows down."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


N, B = 96, 24  # 4 batches per epoch


def make_batches(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(N, 1, 28, 28, generator=g) * 2 - 1
    y = torch.randint(0, 10, (N,), generator=g)

    def batches(epoch: int):
        perm = torch.randperm(N, generator=torch.Generator().manual_seed(1000 + epoch))
        for i in range(0, N - B + 1, B):
            idx = perm[i : i + B]
            yield {"image": x[idx], "label": y[idx]}

    return batches


CFG = {"steps": 6, "eval_every": 3, "batch_size": B, "resolution": 28, "width": 8, "channel_mult": [1, 2],
       "num_res_blocks": 1, "attn_res": 14, "num_classes": 10, "guidance": 2.0, "grid_size": 2,
       "eval_samplers": ["ddim:2", "heun:2"], "eval_batch_size": 4, "warmup_steps": 2}


def mean_pixel(fn, step):
    x = fn(4, 7)
    assert x.shape == (4, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    return {"fid": float(x.mean()), "kid": float(x.std())}


def test_reports_every_eval_per_sampler_setting_with_checkpoint_state():
    ctx = LocalContext(CFG, make_batches(), evaluator=mean_pixel)
    last = train_diffusion(ctx)
    assert [r["step"] for r in ctx.reports] == [3, 6]
    assert last["step"] == 6 and ctx.states[-1]["step"] == 6
    assert set(ctx.states[-1]) >= {"net", "ema", "opt", "step", "epoch", "batch_in_epoch", "rng", "config"}
    for r in ctx.reports:
        assert {"fid", "kid", "fid/ddim-2", "kid/ddim-2", "fid/heun-2", "kid/heun-2"} <= set(r)
        assert r["fid"] == r["fid/ddim-2"] and r["kid"] == r["kid/ddim-2"]  # the first setting is the plain metric
        assert r["fid/heun-2"] != r["fid/ddim-2"]
        assert torch.isfinite(torch.tensor(r["loss/diffusion"]))
    assert len(ctx.samples) == 2 and ctx.samples[0][1].shape == (2, 1, 28, 28)


def _flat(state, key):
    return torch.cat([v.flatten().float() for v in state[key].values()])


def test_resume_continues_step_counter_and_optimizer_state_exactly():
    cfg = {**CFG, "steps": 6, "eval_every": 3}  # 6 steps, 4 batches/epoch: the checkpoint at 3 is mid-epoch
    straight = LocalContext(cfg, make_batches())
    train_diffusion(straight)

    first = LocalContext({**cfg, "steps": 3}, make_batches())
    train_diffusion(first)
    saved = first.states[-1]
    assert saved["step"] == 3 and saved["batch_in_epoch"] == 3
    assert saved["opt"]["state"][0]["step"].item() == 3

    resumed = LocalContext(cfg, make_batches(), state=saved)
    train_diffusion(resumed)
    assert [r["step"] for r in resumed.reports] == [6]  # continues at 3, not from 0
    end, ref = resumed.states[-1], straight.states[-1]
    assert end["opt"]["state"][0]["step"].item() == 6
    for key in ("net", "ema"):
        torch.testing.assert_close(_flat(end, key), _flat(ref, key), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(end["opt"]["state"][0]["exp_avg"], ref["opt"]["state"][0]["exp_avg"], rtol=1e-5, atol=1e-7)
    # and the run actually trained: weights moved away from the first checkpoint
    assert (_flat(end, "net") - _flat(saved, "net")).abs().max() > 1e-4


def test_non_finite_loss_raises_diverged():
    def nan_batches(epoch):
        for batch in make_batches()(epoch):
            yield {"image": batch["image"] * float("nan"), "label": batch["label"]}

    with pytest.raises(Diverged, match="diverged at step 0: loss is nan"):
        train_diffusion(LocalContext(CFG, nan_batches))


def test_empty_shard_is_an_error_not_a_hang():
    with pytest.raises(RuntimeError, match="gave no batch"):
        train_diffusion(LocalContext(CFG, lambda epoch: iter(())))


def test_config_resolves_defaults_and_rejects_bad_combinations():
    assert DiffusionConfig(schedule="flow").prediction == "velocity"
    assert DiffusionConfig().prediction == "eps"
    assert DiffusionConfig(eval_samplers="ddim:50, heun:18").eval_samplers == ["ddim:50", "heun:18"]
    over = DiffusionConfig(eval_samplers=["ddim:50", "heun:18"], sampler="euler", sample_steps=10)
    assert over.eval_samplers == ["euler:10", "heun:18"]
    assert DiffusionConfig.model_validate(over.model_dump()).eval_samplers == over.eval_samplers  # idempotent
    bad = [
        ({"schedule": "nope"}, "allowed: cosine, flow, linear"),
        ({"prediction": "score"}, "allowed: eps, v, velocity, x0"),
        ({"loss_weight": "p2"}, "allowed: min-snr, uniform"),
        ({"eval_samplers": ["dpm:10"]}, "allowed: ddim, ddpm, euler, heun"),
        ({"eval_samplers": ["ddim"]}, "NAME:STEPS"),
        ({"schedule": "flow", "prediction": "eps"}, "alpha"),
        ({"num_classes": 0, "guidance": 3.0}, "class-conditional"),
        ({"eval_samplers": ["heun:18"], "eta": 0.5}, "ddim"),
        ({"bogus": 1}, "Extra inputs"),
    ]
    for kw, msg in bad:
        with pytest.raises(ValidationError, match=msg):
            DiffusionConfig.model_validate(kw)


def test_family_and_shipped_search_space_validate_as_a_spec():
    assert "diffusion" in FAMILIES and FAMILIES.get("diffusion").config is DiffusionConfig
    spec = parse_spec({"name": "d", "family": "diffusion", "space": "diffusion",
                       "trainable": {"steps": 100, "eval_every": 25}})
    assert spec.max_evals() == 4
    names = spec.space.names()
    for axis in ("schedule", "prediction", "loss_weight", "sampler", "sample_steps", "eta", "guidance", "width"):
        assert axis in names
    cells = spec.space.grid()
    assert all(("eta" in c) == (c["sampler"] == "ddim") for c in cells)
    assert all(("guidance" in c) == (c["num_classes"] > 0) for c in cells)
    assert all(("prediction" in c) == (c["schedule"] != "flow") for c in cells)
    for cell in cells[:: max(1, len(cells) // 200)]:
        spec.resolve_trial(cell)
