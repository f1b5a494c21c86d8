"""The GAN training loop: plain PyTorch driven by a :class:`TrialContext`.

Data parallelism follows stylegan2-ada: parameters are broadcast from rank 0 once, and after
every phase's backward the gradients are all-reduced (averaged) across ranks by the context,
so phases with double backward (R1, gradient penalty) work unchanged on any number of ranks.
"""
from __future__ import annotations

import copy
import math
import time
from typing import Any, Optional

import torch
from torch import nn

from gensweep.trainables.context import TrialContext
from gensweep.trainables.gan.architectures import ARCHITECTURES, ArchSpec
from gensweep.trainables.gan.config import GanConfig
from gensweep.trainables.gan.phases import Components, Phase, StepInputs, build_phases, build_regularizer
from gensweep.trainables.rng import rng_state, seed_everything, set_rng_state


class Diverged(RuntimeError):
    """A loss or gradient stopped being finite (or exploded); the trial cannot go on."""

    def __init__(self, step: int, reason: str):
        super().__init__(f"diverged at step {step}: {reason}")
        self.step = step
        self.reason = reason


class GanState:
    """Networks, optimizers and counters of one GAN trial; what a checkpoint holds."""

    def __init__(self, cfg: GanConfig, device: torch.device):
        self.cfg = cfg
        spec = ArchSpec(cfg.resolution, cfg.channels, cfg.width, cfg.z_dim, cfg.num_classes)
        G, D = ARCHITECTURES.get(cfg.arch)(spec)
        self.regularizer = build_regularizer(cfg)
        self.regularizer.build(G, D)
        self.G, self.D = G.to(device), D.to(device)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False) if cfg.ema_beta > 0 else None
        self.opt = {
            "G": torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2)),
            "D": torch.optim.Adam(self.D.parameters(), lr=cfg.lr * cfg.ttur, betas=(cfg.beta1, cfg.beta2)),
        }
        self.reg_state: dict = {}
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0  # batches of the current epoch already trained on

    def nets(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D}

    def sample_net(self) -> nn.Module:
        return self.G_ema if self.G_ema is not None else self.G

    def state_dict(self) -> dict[str, Any]:
        return {
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "G_ema": None if self.G_ema is None else self.G_ema.state_dict(),
            "opt_G": self.opt["G"].state_dict(),
            "opt_D": self.opt["D"].state_dict(),
            "reg_state": self.reg_state,
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "rng": rng_state(),
            "config": self.cfg.model_dump(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        if self.G_ema is not None and state.get("G_ema") is not None:
            self.G_ema.load_state_dict(state["G_ema"])
        self.opt["G"].load_state_dict(state["opt_G"])
        self.opt["D"].load_state_dict(state["opt_D"])
        self.reg_state.update(state.get("reg_state") or {})
        self.step = int(state["step"])
        self.epoch = int(state["epoch"])
        self.batch_in_epoch = int(state.get("batch_in_epoch", 0))
        set_rng_state(state["rng"])

    @torch.no_grad()
    def update_ema(self) -> None:
        if self.G_ema is None:
            return
        beta = self.cfg.ema_beta
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.lerp_(p, 1.0 - beta)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)


def sampler(net: nn.Module, cfg: GanConfig, device: torch.device):
    """``(count, seed) -> images``: the fixed-latent sampler the evaluator calls."""

    @torch.no_grad()
    def sample(count: int, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(count, cfg.z_dim, generator=g).to(device)
        labels = torch.randint(0, max(cfg.num_classes, 1), (count,), generator=g).to(device)
        was_training = net.training
        net.eval()
        out = net(z, labels if cfg.num_classes else None)
        net.train(was_training)
        return out.clamp(-1, 1)

    return sample


def run_phase(phase: Phase, st: GanState, inp: StepInputs, ctx: TrialContext) -> float:
    net = st.nets()[phase.net]
    other = st.nets()["D" if phase.net == "G" else "G"]
    net.requires_grad_(True)
    other.requires_grad_(False)
    opt = st.opt[phase.net]
    opt.zero_grad(set_to_none=True)
    loss = phase.loss(inp)
    if not torch.isfinite(loss):
        raise Diverged(st.step, f"{phase.name} loss is {loss.item()}")
    loss.backward()
    ctx.reduce_gradients(net)
    grad_norm = torch.nn.utils.clip_grad_norm_(net.parameters(), float("inf"))
    if not torch.isfinite(grad_norm) or grad_norm > st.cfg.max_grad_norm:
        raise Diverged(st.step, f"{phase.name} gradient norm is {grad_norm.item():.3g}")
    opt.step()
    if phase.net == "D":
        st.regularizer.after_step(st.D)
    return loss.item()


def train_gan(ctx: TrialContext) -> dict[str, Any]:
    cfg = GanConfig.model_validate(dict(ctx.config))
    device = ctx.device
    seed_everything(cfg.seed * 1000 + ctx.rank)
    st = GanState(cfg, device)
    saved = ctx.load_state()
    if saved is not None:
        st.load_state_dict(saved)
    for net in (st.G, st.D):
        ctx.broadcast_parameters(net)
    phases = build_phases(cfg, Components(st.G, st.D, st.regularizer, st.reg_state))
    sample = sampler(st.sample_net(), cfg, device)
    z_fn = lambda n: torch.randn(n, cfg.z_dim, device=device)  # noqa: E731

    losses: dict[str, float] = {}
    window_t0, window_images = time.perf_counter(), 0
    last: dict[str, Any] = {}
    while st.step < cfg.steps:
        seen = 0
        for i, batch in enumerate(ctx.epoch_batches(st.epoch)):
            seen += 1
            if i < st.batch_in_epoch:  # resumed mid-epoch: skip what was already trained on
                continue
            st.batch_in_epoch = i + 1
            real = batch["image"].to(device, non_blocking=True)
            labels = batch["label"].to(device) if cfg.num_classes else None
            inp = StepInputs(real=real, labels=labels, z_fn=z_fn)
            for phase in phases:
                if phase.due(st.step):
                    losses[phase.name] = run_phase(phase, st, inp, ctx)
                    if phase.name == "G_main":
                        st.update_ema()
            st.step += 1
            window_images += real.shape[0] * ctx.world_size
            if st.step % cfg.eval_every == 0 or st.step >= cfg.steps:
                elapsed = time.perf_counter() - window_t0
                metrics = {
                    "step": st.step,
                    "epoch": st.epoch,
                    **{f"loss/{k}": v for k, v in losses.items()},
                    "images_per_s": window_images / max(elapsed, 1e-9),
                    "loader_wait_s": ctx.loader_wait_s(),
                }
                t_eval = time.perf_counter()
                metrics.update(ctx.evaluate(sample, st.step))
                grid = sample(cfg.grid_size, seed=0)
                path = ctx.save_samples(grid, st.step)
                if path:
                    metrics["sample_grid"] = path
                metrics["eval_time_s"] = time.perf_counter() - t_eval
                ctx.report(metrics, state=st.state_dict())
                last = metrics
                window_t0, window_images = time.perf_counter(), 0
            if st.step >= cfg.steps:
                break
        else:
            if seen == 0:
                raise RuntimeError(f"epoch {st.epoch} gave no batch: the data shard is empty or smaller than a batch")
            st.epoch += 1
            st.batch_in_epoch = 0
    return last


def untrained_generator(cfg: GanConfig, device: Optional[torch.device] = None) -> nn.Module:
    """The generator exactly as a fresh trial would start it (for 'FID of untrained G' baselines)."""
    seed_everything(cfg.seed * 1000)
    return GanState(cfg, device or torch.device("cpu")).sample_net()
