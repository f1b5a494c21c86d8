"""The GAN training loop: plain PyTorch driven by a :class:`TrialContext`.

Data parallelism follows stylegan2-ada: G, D and G_ema (parameters and buffers) are broadcast
from rank 0 once, and after every phase's backward the gradients are all-reduced (averaged)
across ranks by the context, so phases with double backward (R1, gradient penalty) work
unchanged on any number of ranks. After every phase G's and D's buffers (BatchNorm running
statistics) are made equal across ranks too (floating ones averaged), before the EMA copies
them, so every rank holds the same G, D and G_ema after every step and samples the same images.
"""
from __future__ import annotations

import time
from typing import Any, Optional

import torch
from torch import nn

from gensweep.trainables.context import TrialContext, chosen_labels
from gensweep.trainables.errors import Diverged, backward_checked, check_gradients
from gensweep.trainables.gan.config import GanConfig
from gensweep.trainables.gan.losses import LOSSES
from gensweep.trainables.gan.phases import Phase, StepInputs, build_phases
from gensweep.trainables.gan.state import GanState
from gensweep.trainables.loop import evaluation_metrics, training_batches
from gensweep.trainables.rng import seed_everything
from gensweep.trainables.sampling import setting_configs

__all__ = ["Diverged", "GanState", "checkpoint_samplers", "gan_phases", "sampler", "train_gan", "train_step",
           "untrained_generator"]


def sampler(net: nn.Module, cfg: GanConfig, device: torch.device):
    """``(count, seed, labels=None) -> images``: the fixed-latent sampler the evaluator calls.

    Without ``labels`` a conditional generator gets uniform labels drawn from ``seed``; with
    them (``count`` class indices) it draws those classes from the same latents."""

    @torch.no_grad()
    def sample(count: int, seed: int, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        z = latents(count, cfg.z_dim, g, cfg.truncation).to(device)
        drawn = torch.randint(0, max(cfg.num_classes, 1), (count,), generator=g)
        labels = chosen_labels(labels, drawn, count, cfg.generated_classes()).to(device)
        was_training = net.training
        net.eval()
        out = net(z, labels if cfg.num_classes else None)
        net.train(was_training)
        return out.clamp(-1, 1)

    return sample


def latents(count: int, z_dim: int, g: torch.Generator, truncation: Optional[float] = None) -> torch.Tensor:
    """``count`` latents from N(0, I), or from N(0, I) truncated to ``|z_i| <= truncation`` (the
    truncation trick, by the inverse CDF of uniforms inside the kept range: no rejection loop)."""
    if truncation is None:
        return torch.randn(count, z_dim, generator=g)
    normal = torch.distributions.Normal(0.0, 1.0)
    lo = float(normal.cdf(torch.tensor(-truncation)))
    u = lo + (1.0 - 2.0 * lo) * torch.rand(count, z_dim, generator=g, dtype=torch.float64)
    return torch.special.ndtri(u).float()


def tagged_samplers(net: nn.Module, cfg: GanConfig, device: torch.device) -> list[tuple[str, Any]]:
    """``(tag, sample)`` per setting of ``cfg.sampling_grid`` (untagged without a grid)."""
    return [(tag, sampler(net, setting, device)) for tag, setting in setting_configs(cfg)]


def run_phase(phase: Phase, st: GanState, inp: StepInputs, ctx: TrialContext) -> tuple[float, dict[str, float]]:
    net = st.nets()[phase.net]
    other = st.nets()["D" if phase.net == "G" else "G"]
    net.requires_grad_(True)
    other.requires_grad_(False)
    opt = st.opt[phase.net]
    opt.zero_grad(set_to_none=True)
    loss, view, logs = phase.run(inp)
    # A non-finite loss poisons the gradients, and the check comes after the all-reduce, so
    # every rank stops at the same step (none is left waiting in an all-reduce).
    bad_loss = backward_checked(loss, net.parameters(), f"{phase.name} loss")
    ctx.reduce_gradients(net)
    grad_norm = torch.nn.utils.clip_grad_norm_(net.parameters(), float("inf"))
    check_gradients(st.step, bad_loss, grad_norm, st.cfg.max_grad_norm, f"{phase.name} gradient norm")
    opt.step()
    for m in st.nets().values():  # a phase's forwards may move either net's BatchNorm statistics
        ctx.sync_buffers(m)
    for ing in st.ingredients():
        ing.after_phase(phase.name, view)
    return loss.item(), logs


def gan_phases(st: GanState) -> list[Phase]:
    cfg = st.cfg
    return build_phases(
        adv=LOSSES.get(cfg.loss), G=st.G, D=st.D, fast_G=st.fast["G"], fast_D=st.fast["D"], augment=st.augment,
        terms=st.terms(), n_dis=cfg.n_dis, reg_interval=cfg.reg_interval,
    )


def train_step(st: GanState, phases: list[Phase], inp: StepInputs, ctx: TrialContext,
               losses: dict[str, float], logs: dict[str, float]) -> None:
    """One training step: the due phases in order (EMA after G's main phase), then ``st.step += 1``;
    each phase's loss goes to ``losses``, its logged values to ``logs``."""
    for phase in phases:
        if phase.due(st.step):
            losses[phase.name], phase_logs = run_phase(phase, st, inp, ctx)
            logs.update(phase_logs)
            if phase.name == "G_main":
                st.update_ema()
    st.step += 1


def train_gan(ctx: TrialContext) -> dict[str, Any]:
    cfg = GanConfig.model_validate(dict(ctx.config))
    device = ctx.device
    seed_everything(cfg.seed * 1000 + ctx.rank)
    st = GanState(cfg, device)
    saved = ctx.load_state()
    if saved is not None:
        st.load_state_dict(saved)
    for net in (st.G, st.D, st.G_ema):
        if net is not None:
            ctx.broadcast_parameters(net)
    phases = gan_phases(st)
    samplers = tagged_samplers(st.sample_net(), cfg, device)
    n_params = sum(p.numel() for p in st.G.parameters())
    z_fn = lambda n: torch.randn(n, cfg.z_dim, device=device)  # noqa: E731

    losses: dict[str, float] = {}
    logs: dict[str, float] = {}
    window_t0, window_images = time.perf_counter(), 0
    last: dict[str, Any] = {}
    for batch in training_batches(ctx, st, cfg.steps):
        real = batch["image"].to(device, non_blocking=True)
        labels = batch["label"].to(device) if cfg.num_classes else None
        for ing in st.ingredients():
            ing.before_step(st.step)
        train_step(st, phases, StepInputs(step=st.step, real=real, labels=labels, z_fn=z_fn), ctx, losses, logs)
        window_images += real.shape[0] * ctx.world_size
        if st.step % cfg.eval_every == 0 or st.step >= cfg.steps or ctx.checkpoint_due(st.step):
            elapsed = time.perf_counter() - window_t0
            metrics = {
                "step": st.step,
                "epoch": st.epoch,
                **{f"loss/{k}": v for k, v in losses.items()},
                **logs,
                **st.metrics(),
                "images_per_s": window_images / max(elapsed, 1e-9),
                "loader_wait_s": ctx.loader_wait_s(),
                "params": n_params,
                **evaluation_metrics(ctx, samplers, st.step, cfg.grid_size, cfg.generated_classes()),
            }
            ctx.report(metrics, state=st.state_dict())
            last = metrics
            window_t0, window_images = time.perf_counter(), 0
    return last


def untrained_generator(cfg: GanConfig, device: Optional[torch.device] = None) -> nn.Module:
    """The generator exactly as a fresh trial would start it (for 'FID of untrained G' baselines)."""
    seed_everything(cfg.seed * 1000)
    return GanState(cfg, device or torch.device("cpu")).sample_net()


def checkpoint_samplers(state: dict[str, Any], device: torch.device) -> list[tuple[str, Any]]:
    """The evaluation samplers of a checkpointed trial (its EMA generator when it has one), as
    ``[(tag, sample)]``, scored exactly as the training loop scores them."""
    cfg = GanConfig.model_validate(state["config"])
    st = GanState(cfg, device)
    st.G.load_state_dict(state["G"])
    if st.G_ema is not None:
        st.G_ema.load_state_dict(state["G_ema"])
    return tagged_samplers(st.sample_net(), cfg, device)
