"""The GPU efficiency settings (bf16 autocast, channels_last, torch.compile) of both families, on CPU:
each combination trains with finite losses, does what it says inside the forward, keeps fp32 weights,
leaves gradient penalties in fp32, and checkpoints with the keys of the plain networks."""
from __future__ import annotations

import itertools
from contextlib import contextmanager

import pytest
import torch
from pydantic import ValidationError
from torch import nn
from torch._dynamo.utils import counters

from gensweep.platform.spec import SpecError, parse_spec
from gensweep.trainables import efficiency
from gensweep.trainables.context import LocalContext
from gensweep.trainables.diffusion.trainable import train_diffusion
from gensweep.trainables.families import FAMILIES
from gensweep.trainables.gan.config import GanConfig
from gensweep.trainables.gan.losses import LOSSES
from gensweep.trainables.gan.phases import StepInputs, build_phases
from gensweep.trainables.gan.state import GanState
from gensweep.trainables.gan.trainable import run_phase, train_gan

N, B = 32, 8  # 4 batches per epoch
TRAIN = {"gan": train_gan, "diffusion": train_diffusion}
TINY = {
    "gan": {"steps": 3, "eval_every": 3, "batch_size": B, "resolution": 8, "channels": 3, "width": 8, "z_dim": 8,
            "num_classes": 0, "reg": "r1", "grid_size": 2},
    "diffusion": {"steps": 3, "eval_every": 3, "batch_size": B, "resolution": 8, "channels": 3, "width": 8,
                  "channel_mult": [1, 2], "attn_res": 4, "num_classes": 10, "grid_size": 2,
                  "eval_samplers": ["ddim:2"], "eval_batch_size": 2},
}
NETS = {"gan": ("G", "D", "G_ema", "opt_G", "opt_D"), "diffusion": ("net", "ema", "opt")}  # checkpointed modules
SMALLER = {"gan": {}, "diffusion": {"channel_mult": [1], "attn_res": 0}}  # fewer graphs to compile
COMBOS = [dict(precision=p, channels_last=c) for p, c in itertools.product(["fp32", "bf16"], [False, True])]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_batches():
    """Four fixed batches of 3-channel 8x8 images per epoch."""
    g = torch.Generator().manual_seed(0)
    data = [{"image": torch.rand(B, 3, 8, 8, generator=g) * 2 - 1, "label": torch.randint(0, 10, (B,), generator=g)}
            for _ in range(N // B)]
    return lambda epoch: iter(data)


@contextmanager
def conv_outputs(within: nn.Module | None = None):
    """Every Conv2d output (dtype, channels_last?) while the block runs (of ``within``'s convs, if given);
    only outputs whose layout is unambiguous (C > 1 and H*W > 1)."""
    seen: list[tuple[torch.dtype, bool]] = []
    mine = None if within is None else {id(m) for m in within.modules()}

    def hook(module, inputs, out):
        if mine is not None and id(module) not in mine:
            return
        if isinstance(module, nn.Conv2d) and out.shape[1] > 1 and out.shape[2] * out.shape[3] > 1:
            seen.append((out.dtype, out.is_contiguous(memory_format=torch.channels_last)))

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def float_tensors(state):
    if isinstance(state, torch.Tensor):
        return [state] if state.is_floating_point() else []
    if isinstance(state, dict):
        return [t for v in state.values() for t in float_tensors(v)]
    if isinstance(state, (list, tuple)):
        return [t for v in state for t in float_tensors(v)]
    return []


@pytest.mark.parametrize("family", ["gan", "diffusion"])
@pytest.mark.parametrize("opts", COMBOS, ids=[f"{o['precision']}-cl{int(o['channels_last'])}" for o in COMBOS])
def test_each_combination_trains_and_does_what_it_says(family, opts):
    ctx = LocalContext({**TINY[family], **opts}, make_batches())
    with conv_outputs() as seen:
        last = TRAIN[family](ctx)
    assert last["step"] == 3
    losses = [v for k, v in last.items() if k.startswith("loss/")]
    assert losses and all(torch.isfinite(torch.tensor(v)) for v in losses)
    dtypes = {d for d, _ in seen}
    # Training forwards run in bf16; sampling for evaluation stays fp32, so both appear under bf16.
    assert dtypes == ({torch.bfloat16, torch.float32} if opts["precision"] == "bf16" else {torch.float32})
    # channels_last: every conv output is NHWC (the plain layout has a few too, e.g. after attention).
    assert all(cl for _, cl in seen) == opts["channels_last"]
    # Weights, optimizer state and the EMA copy in the checkpoint stay fp32.
    state = ctx.states[-1]
    assert {t.dtype for t in float_tensors(state)} == {torch.float32}


def gan_state(**kw) -> tuple[GanState, list, StepInputs]:
    torch.manual_seed(0)
    cfg = GanConfig.model_validate({**TINY["gan"], "reg": "r1", **kw})
    st = GanState(cfg, torch.device("cpu"))
    phases = build_phases(adv=LOSSES.get(cfg.loss), G=st.G, D=st.D, fast_G=st.fast["G"], fast_D=st.fast["D"],
                          augment=st.augment, terms=st.terms(), reg_interval=cfg.reg_interval)
    real = next(make_batches()(0))["image"]
    return st, phases, StepInputs(step=0, real=real, labels=None, z_fn=lambda n: torch.randn(n, cfg.z_dim))


def test_gradient_penalty_phase_runs_in_fp32_under_bf16():
    ctx = LocalContext({}, make_batches())
    r1 = {}
    for precision in ("fp32", "bf16"):
        st, phases, inp = gan_state(precision=precision, reg_interval=2)  # lazy: r1 has its own D_reg phase
        by_name = {p.name: p for p in phases}
        start = {k: v.clone() for k, v in st.D.state_dict().items()}
        with conv_outputs(st.D) as main:
            run_phase(by_name["D_main"], st, inp, ctx)  # (D_main runs first in every step: D_reg uses its fakes)
        st.D.load_state_dict(start)  # the penalty at the same weights under both settings
        with conv_outputs(st.D) as reg:
            loss, logs = run_phase(by_name["D_reg"], st, inp, ctx)  # double backward through D
        assert {d for d, _ in main} == {efficiency.PRECISIONS[precision]}
        assert {d for d, _ in reg} == {torch.float32}
        assert torch.isfinite(torch.tensor(loss)) and logs["term/D_reg/r1"] > 0
        assert all(torch.isfinite(p).all() for p in st.D.parameters())
        r1[precision] = logs["term/D_reg/r1"]
    assert r1["bf16"] == r1["fp32"]  # same weights, same batch: the penalty does not depend on the setting


def test_non_lazy_gradient_penalty_joins_d_main_in_fp32_under_bf16():
    ctx = LocalContext({}, make_batches())
    r1 = {}
    for precision in ("fp32", "bf16"):
        st, phases, inp = gan_state(precision=precision)
        assert [p.name for p in phases] == ["D_main", "G_main"]
        with conv_outputs(st.D) as seen:
            loss, logs = run_phase(phases[0], st, inp, ctx)
        # the adversarial forwards in the trial's precision, the penalty's double backward in fp32
        assert {d for d, _ in seen} == {efficiency.PRECISIONS[precision], torch.float32}
        assert torch.isfinite(torch.tensor(loss)) and logs["term/D_reg/r1"] > 0
        r1[precision] = logs["term/D_reg/r1"]
    assert r1["bf16"] == r1["fp32"]


def test_options_are_validated_fields_of_both_families():
    for name in ("gan", "diffusion"):
        family = FAMILIES.get(name)
        assert {"precision", "channels_last", "compile"} <= set(family.config.model_fields)
        assert family.violations({"precision": "fp16"})[0].startswith("precision:")
        assert family.violations({"compile": "fast"})[0].startswith("compile:")
        assert family.config.model_validate({}).compile == "none"
    with pytest.raises(SpecError, match="trainable.precision"):
        parse_spec({"name": "t", "trainable": {"precision": "fp8"}})


@pytest.fixture
def no_compiler(monkeypatch):
    """This machine as a CPU-only build with neither a C++ compiler nor triton would look."""
    monkeypatch.setitem(efficiency.BACKEND_CHECKS, "cpu", lambda: "no C++ compiler on PATH")
    monkeypatch.setitem(efficiency.BACKEND_CHECKS, "cuda", lambda: "triton is not installed")


def test_compile_that_cannot_run_fails_at_spec_validation(no_compiler):
    assert efficiency.compile_problem() == "no C++ compiler on PATH; triton is not installed"
    for family in ("gan", "diffusion"):
        with pytest.raises(SpecError, match="trainable.compile.*cannot run here: no C\\+\\+ compiler"):
            parse_spec({"name": "t", "family": family, "trainable": {"compile": "default"}})
        with pytest.raises(SpecError, match="space.compile.*level 'max-autotune'"):
            parse_spec({"name": "t", "family": family, "space": {"compile": ["none", "max-autotune"]}})
    parse_spec({"name": "t", "trainable": {"compile": "none"}})  # eager needs nothing


def test_compile_backend_is_checked_per_device(monkeypatch):
    monkeypatch.setitem(efficiency.BACKEND_CHECKS, "cuda", lambda: "triton is not installed")
    monkeypatch.setitem(efficiency.BACKEND_CHECKS, "cpu", lambda: None)
    assert efficiency.compile_problem() is None  # some device can compile: the spec is fine
    assert efficiency.compile_problem("cuda") == "triton is not installed"
    cfg = GanConfig(compile="default")
    with pytest.raises(RuntimeError, match="compile='default' cannot run on cuda: triton is not installed"):
        efficiency.Efficiency(cfg, torch.device("cuda"))


@pytest.mark.slow
@pytest.mark.parametrize("family", ["gan", "diffusion"])
def test_compile_trains_and_checkpoints_with_plain_keys(family):
    cfg = {**TINY[family], **SMALLER[family], "steps": 3, "eval_every": 1}
    if efficiency.compile_problem("cpu") is not None:  # then the trial must refuse it, not skip it
        with pytest.raises((ValidationError, RuntimeError), match="cannot run"):
            TRAIN[family](LocalContext({**cfg, "compile": "default"}, make_batches()))
        return
    plain = LocalContext(cfg, make_batches())
    TRAIN[family](plain)
    # A compiled trial resumes the plain trial's step-1 checkpoint, and a plain one its step-2 checkpoint.
    compiled = LocalContext({**cfg, "compile": "default"}, make_batches(), state=plain.states[0])
    counters.clear()
    last = TRAIN[family](compiled)
    assert counters["stats"]["unique_graphs"] > 0  # dynamo captured graphs: the forwards did run compiled
    assert [r["step"] for r in compiled.reports] == [2, 3]
    assert all(torch.isfinite(torch.tensor(v)) for k, v in last.items() if k.startswith("loss/"))
    for key in NETS[family]:
        assert list(compiled.states[-1][key]) == list(plain.states[-1][key]), key
    resumed = LocalContext(cfg, make_batches(), state=compiled.states[0])
    assert TRAIN[family](resumed)["step"] == 3
