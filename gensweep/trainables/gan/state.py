"""Everything one GAN trial trains and checkpoints: networks, optimizers, ingredients, counters."""
from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from gensweep.trainables.efficiency import Efficiency, FastForward
from gensweep.trainables.gan.ada import AugmentPipe
from gensweep.trainables.gan.architectures import ARCHITECTURES, ArchSpec
from gensweep.trainables.gan.conditioning import CONDITIONINGS
from gensweep.trainables.gan.config import GanConfig
from gensweep.trainables.gan.dynamic_d import DynamicD
from gensweep.trainables.gan.regularizers import build_regularizers, reg_names
from gensweep.trainables.gan.terms import LAZY_PHASES, Ingredient, Term
from gensweep.trainables.optim import set_hyperparameters
from gensweep.trainables.rng import rng_state, set_rng_state


def adam_settings(cfg: GanConfig, terms: list[Term]) -> dict[str, dict[str, Any]]:
    """Adam's lr and betas per network: ``lr`` (G) and ``lr * ttur`` (D), ``(beta1, beta2)``.

    A network with a lazy regularization phase (``reg_interval`` k > 1 and terms in its D_reg /
    G_reg) takes k main steps and one regularization step per k iterations; stylegan2-ada keeps
    its Adam equivalent to the non-lazy one by running it at ``lr * k/(k+1)`` with
    ``betas ** (k/(k+1))`` (Karras et al. 2020, Analyzing and Improving the Image Quality of StyleGAN).
    """
    k = cfg.reg_interval
    lazy_nets = {t.phase.split("_")[0] for t in terms if t.phase in LAZY_PHASES} if k > 1 else set()  # "D", "G"
    out = {}
    for net, lr in (("G", cfg.lr), ("D", cfg.lr * cfg.ttur)):
        ratio = k / (k + 1) if net in lazy_nets else 1.0
        out[net] = {"lr": lr * ratio, "betas": (cfg.beta1**ratio, cfg.beta2**ratio)}
    return out


class GanState:
    """Networks, optimizers, ingredients and counters of one GAN trial; what a checkpoint holds.

    Checkpoint keys: G, D, G_ema, opt_G, opt_D, reg_state (per regularizer, e.g. LeCam anchors),
    aug_state (augmentation probability / ADA statistics), ingredient_state (other ingredients),
    step, epoch, batch_in_epoch, rng, config. ``fast`` holds the networks' training forwards under
    the trial's efficiency settings; checkpoints hold the plain networks, so their keys never change.
    """

    def __init__(self, cfg: GanConfig, device: torch.device):
        self.cfg = cfg
        spec = ArchSpec(cfg.resolution, cfg.channels, cfg.width, cfg.z_dim, cfg.num_classes, cfg.conditioning, cfg.attention)
        G, D = ARCHITECTURES.get(cfg.arch)(spec)
        self.regularizers = dict(zip(reg_names(cfg.reg), build_regularizers(cfg.reg, cfg.reg_weight, cfg)))
        self.augment = AugmentPipe(
            cfg.aug, cfg.aug_p, policy=cfg.aug_policy, target=cfg.ada_target, interval=cfg.ada_interval, speed=cfg.ada_speed
        )
        self.others: dict[str, Ingredient] = {
            "conditioning": CONDITIONINGS.get(cfg.conditioning)(cfg.num_classes, cfg.cond_weight),
            "dynamic_d": DynamicD(cfg.dynamic_d, cfg.dynamic_d_min, cfg.steps),
        }
        for ing in self.ingredients():
            ing.build(G, D)
        self.efficiency = Efficiency(cfg, device)
        self.G, self.D = (self.efficiency.prepare(net.to(device)) for net in (G, D))
        self.fast: dict[str, FastForward] = {name: self.efficiency.fast(net) for name, net in self.nets().items()}
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False) if cfg.ema_beta > 0 else None
        self.adam = adam_settings(cfg, self.terms())
        self.opt = {name: torch.optim.Adam(net.parameters(), **self.adam[name]) for name, net in self.nets().items()}
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0  # batches of the current epoch already trained on

    def ingredients(self) -> list[Ingredient]:
        return [*self.regularizers.values(), self.augment, *self.others.values()]

    def terms(self) -> list[Term]:
        return [t for ing in self.ingredients() for t in ing.terms()] + self.D.terms()

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for ing in self.ingredients():
            out.update(ing.metrics())
        return out

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
            "reg_state": {name: reg.state_dict() for name, reg in self.regularizers.items()},
            "aug_state": self.augment.state_dict(),
            "ingredient_state": {name: ing.state_dict() for name, ing in self.others.items()},
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
        for name, opt in self.opt.items():
            opt.load_state_dict(state[f"opt_{name}"])
            set_hyperparameters(opt, **self.adam[name])  # this config's settings, not the checkpoint's
        for name, sub in (state.get("reg_state") or {}).items():
            if name in self.regularizers:
                self.regularizers[name].load_state_dict(sub)
        if state.get("aug_state"):
            self.augment.load_state_dict(state["aug_state"])
        for name, sub in (state.get("ingredient_state") or {}).items():
            if name in self.others:
                self.others[name].load_state_dict(sub)
        self.step = int(state["step"])
        self.epoch = int(state["epoch"])
        self.batch_in_epoch = int(state.get("batch_in_epoch", 0))
        set_rng_state(state["rng"])

    @torch.no_grad()
    def update_ema(self) -> None:
        if self.G_ema is None:
            return
        # Ramp-up: early on the average spans only the steps taken so far, so a short run's
        # EMA generator is not dominated by its random initialization.
        beta = min(self.cfg.ema_beta, (1.0 + self.step) / (10.0 + self.step))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.lerp_(p, 1.0 - beta)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)
