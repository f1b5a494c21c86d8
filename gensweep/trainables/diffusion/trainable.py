"""The diffusion / flow-matching training loop: plain PyTorch driven by a :class:`TrialContext`.

Same contract as the GAN loop: a report with a checkpoint state (networks, optimizer, counters,
RNG) at every eval, exact resumption mid-epoch, :class:`Diverged` on a non-finite loss or an
exploding gradient. At every eval the EMA model is scored once per configured
``(sampler, steps)`` setting; each setting's metrics are reported with the suffix
``/<sampler>-<steps>`` and the first setting's also without it.
"""
from __future__ import annotations

import time
from typing import Any, Optional

import torch
from torch import nn

from gensweep.trainables.context import TrialContext, chosen_labels
from gensweep.trainables.diffusion.config import DiffusionConfig
from gensweep.trainables.diffusion.denoiser import make_denoiser
from gensweep.trainables.diffusion.ema import EMA
from gensweep.trainables.diffusion.objectives import WEIGHTINGS, diffusion_loss
from gensweep.trainables.diffusion.parameterization import PREDICTIONS
from gensweep.trainables.diffusion.samplers import SAMPLERS, nfe
from gensweep.trainables.diffusion.schedules import get_path
from gensweep.trainables.diffusion.unet import UNet, UNetSpec
from gensweep.trainables.efficiency import Efficiency
from gensweep.trainables.errors import backward_checked, check_gradients
from gensweep.trainables.loop import evaluation_metrics, training_batches
from gensweep.trainables.optim import set_hyperparameters
from gensweep.trainables.rng import rng_state, seed_everything, set_rng_state
from gensweep.trainables.sampling import setting_configs


def build_net(cfg: DiffusionConfig) -> UNet:
    spec = UNetSpec(
        channels=cfg.channels, width=cfg.width, channel_mult=tuple(cfg.channel_mult), num_res_blocks=cfg.num_res_blocks,
        attn_res=cfg.attn_res, dropout=cfg.dropout, num_classes=cfg.num_classes, resolution=cfg.resolution,
    )
    return UNet(spec)


class DiffusionState:
    """Network, EMA copy, optimizer and counters of one trial; what a checkpoint holds.

    ``fast_net`` is the network's training forward under the trial's efficiency settings; the
    checkpoint holds the plain network, so its keys do not depend on those settings."""

    def __init__(self, cfg: DiffusionConfig, device: torch.device):
        self.cfg = cfg
        self.path = get_path(cfg.schedule)
        self.pred = PREDICTIONS.get(cfg.prediction)
        self.weighting = WEIGHTINGS.get(cfg.loss_weight)
        self.efficiency = Efficiency(cfg, device)
        self.net = self.efficiency.prepare(build_net(cfg).to(device))
        self.fast_net = self.efficiency.fast(self.net)
        self.ema = EMA(self.net, cfg.ema_beta) if cfg.ema_beta > 0 else None
        self.adam = {"lr": cfg.lr, "betas": (cfg.beta1, cfg.beta2), "weight_decay": cfg.weight_decay}
        self.opt = torch.optim.AdamW(self.net.parameters(), **self.adam)
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0  # batches of the current epoch already trained on

    def sample_net(self) -> nn.Module:
        return self.ema.shadow if self.ema is not None else self.net

    def state_dict(self) -> dict[str, Any]:
        return {
            "net": self.net.state_dict(),
            "ema": None if self.ema is None else self.ema.shadow.state_dict(),
            "opt": self.opt.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "rng": rng_state(),
            "config": self.cfg.model_dump(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.shadow.load_state_dict(state["ema"])
        self.opt.load_state_dict(state["opt"])
        set_hyperparameters(self.opt, **self.adam)  # this config's settings, not the checkpoint's
        self.step = int(state["step"])
        self.epoch = int(state["epoch"])
        self.batch_in_epoch = int(state.get("batch_in_epoch", 0))
        set_rng_state(state["rng"])


def setting_tag(name: str, steps: int) -> str:
    return f"{name}-{steps}"


def sampler_fn(net: nn.Module, cfg: DiffusionConfig, device: torch.device, name: str, steps: int):
    """``(count, seed, labels=None) -> images`` in [-1, 1]: labels, start noise and fresh noise all
    come from ``seed``; given ``labels`` (class indices) replace the drawn ones, the noise stays the same."""
    path = get_path(cfg.schedule)
    pred = PREDICTIONS.get(cfg.prediction)
    solve = SAMPLERS.get(name)
    shape = (cfg.channels, cfg.resolution, cfg.resolution)

    @torch.no_grad()
    def sample(count: int, seed: int, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        drawn = torch.randint(0, cfg.num_classes, (count,), generator=g) if cfg.num_classes else None
        labels = chosen_labels(labels, drawn, count, cfg.num_classes)
        noise = torch.randn((count, *shape), generator=g)
        was_training = net.training
        net.eval()
        out = []
        try:
            for i in range(0, count, cfg.eval_batch_size):
                lab = None if labels is None else labels[i : i + cfg.eval_batch_size].to(device)
                denoise = make_denoiser(
                    net, path, pred, labels=lab, null_label=cfg.num_classes, guidance=cfg.guidance, clip=cfg.clip_denoised
                )
                x = solve(denoise, path, noise[i : i + cfg.eval_batch_size].to(device), steps, generator=g, eta=cfg.eta,
                          churn=cfg.churn())
                out.append(x.clamp(-1, 1))
        finally:
            net.train(was_training)
        return torch.cat(out) if out else torch.zeros((0, *shape), device=device)

    return sample


def tagged_samplers(net: nn.Module, cfg: DiffusionConfig, device: torch.device) -> list[tuple[str, Any]]:
    """``(tag, sample)`` of every configured ``(sampler, steps)`` setting, in the configured order; with a
    ``sampling_grid``, of each grid setting (its own primary sampler, tagged by the setting)."""
    if cfg.sampling_grid:
        return [(tag, sampler_fn(net, s, device, *s.settings()[0])) for tag, s in setting_configs(cfg)]
    return [(setting_tag(n, k), sampler_fn(net, cfg, device, n, k)) for n, k in cfg.settings()]


def setting_nfe(cfg: DiffusionConfig) -> dict[str, int]:
    """Network evaluations per sample (``nfe``, the primary setting's; ``nfe/<tag>`` per setting),
    counted as one per guided denoiser call."""
    if cfg.sampling_grid:
        per = {tag: nfe(*s.settings()[0]) for tag, s in setting_configs(cfg)}
    else:
        per = {setting_tag(n, k): nfe(n, k) for n, k in cfg.settings()}
    return {"nfe": next(iter(per.values())), **{f"nfe/{tag}": v for tag, v in per.items()}}


def checkpoint_samplers(state: dict[str, Any], device: torch.device) -> list[tuple[str, Any]]:
    """The evaluation samplers of a checkpointed trial (EMA weights when it keeps them)."""
    cfg = DiffusionConfig.model_validate(state["config"])
    net = build_net(cfg).to(device)
    net.load_state_dict(state["ema"] if state.get("ema") is not None else state["net"])
    return tagged_samplers(net, cfg, device)


def train_step(st: DiffusionState, x0: torch.Tensor, labels: Optional[torch.Tensor], ctx: TrialContext) -> float:
    """One optimizer update on a batch; raises :class:`Diverged` (on every rank alike) on a bad loss or gradient."""
    cfg = st.cfg
    if labels is not None and cfg.cond_drop_prob > 0:  # the null label teaches the unconditional model
        drop = torch.rand(labels.shape[0], device=labels.device) < cfg.cond_drop_prob
        labels = torch.where(drop, torch.full_like(labels, cfg.num_classes), labels)
    st.opt.zero_grad(set_to_none=True)
    loss = diffusion_loss(st.fast_net, x0, st.path, st.pred, st.weighting, gamma=cfg.min_snr_gamma, labels=labels)
    # A non-finite loss poisons the gradients and the check follows the all-reduce, so all ranks stop together.
    bad_loss = backward_checked(loss, st.net.parameters(), "loss")
    ctx.reduce_gradients(st.net)
    grad_norm = torch.nn.utils.clip_grad_norm_(st.net.parameters(), cfg.grad_clip)  # norm before clipping
    check_gradients(st.step, bad_loss, grad_norm, cfg.max_grad_norm)
    lr = cfg.lr * min(1.0, (st.step + 1) / cfg.warmup_steps) if cfg.warmup_steps else cfg.lr
    for group in st.opt.param_groups:
        group["lr"] = lr
    st.opt.step()
    ctx.sync_buffers(st.net)  # equal buffers on every rank before the EMA copies them
    if st.ema is not None:
        st.ema.update(st.net, st.step)
    return loss.item()


def train_diffusion(ctx: TrialContext) -> dict[str, Any]:
    cfg = DiffusionConfig.model_validate(dict(ctx.config))
    device = ctx.device
    seed_everything(cfg.seed * 1000 + ctx.rank)
    st = DiffusionState(cfg, device)
    saved = ctx.load_state()
    if saved is not None:
        st.load_state_dict(saved)
    ctx.broadcast_parameters(st.net)
    if st.ema is not None:
        ctx.broadcast_parameters(st.ema.shadow)
    samplers = tagged_samplers(st.sample_net(), cfg, device)
    cost = {"params": sum(p.numel() for p in st.net.parameters()), **setting_nfe(cfg)}

    loss_value = float("nan")
    window_t0, window_images = time.perf_counter(), 0
    last: dict[str, Any] = {}
    for batch in training_batches(ctx, st, cfg.steps):
        x0 = batch["image"].to(device, non_blocking=True)
        labels = batch["label"].to(device) if cfg.num_classes else None
        loss_value = train_step(st, x0, labels, ctx)
        st.step += 1
        window_images += x0.shape[0] * ctx.world_size
        if st.step % cfg.eval_every == 0 or st.step >= cfg.steps or ctx.checkpoint_due(st.step):
            elapsed = time.perf_counter() - window_t0
            metrics: dict[str, Any] = {
                "step": st.step,
                "epoch": st.epoch,
                "loss/diffusion": loss_value,
                "images_per_s": window_images / max(elapsed, 1e-9),
                "loader_wait_s": ctx.loader_wait_s(),
                **cost,
                **evaluation_metrics(ctx, samplers, st.step, cfg.grid_size, cfg.generated_classes()),
            }
            ctx.report(metrics, state=st.state_dict())
            last = metrics
            window_t0, window_images = time.perf_counter(), 0
    return last


def untrained_model(cfg: DiffusionConfig, device: Optional[torch.device] = None) -> nn.Module:
    """The sampling network exactly as a fresh trial starts it (for 'FID of the untrained model' baselines)."""
    seed_everything(cfg.seed * 1000)
    return DiffusionState(cfg, device or torch.device("cpu")).sample_net()
