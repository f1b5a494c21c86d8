"""What components plug into the GAN step: loss terms, hooks, checkpointed state, metrics.

A component (regularizer, conditioning, adaptive augmentation, DynamicD, an architecture's
own auxiliary loss) is an :class:`Ingredient`. It may contribute :class:`Term` s to one of
the four phases; a term sees a :class:`StepView` of the phase it runs in (the real batch,
the fake batch, D's logits and auxiliary outputs from that phase's forward pass). The loop
never asks what an ingredient is called: it sums terms and calls hooks.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch
from torch import nn

Tensor = torch.Tensor

PHASES = ("D_main", "D_reg", "G_main", "G_reg")
LAZY_PHASES = ("D_reg", "G_reg")  # reg_interval k > 1: every k steps, weight x k; k = 1: part of the main phase


@dataclass
class StepView:
    """One phase's view of the step; fields a phase does not compute stay None / empty."""

    step: int
    real: Tensor
    labels: Optional[Tensor]
    G: nn.Module
    D: nn.Module
    d_fn: Callable[[Tensor, Optional[Tensor]], Tensor]  # (images, labels) -> logits, through the augment pipe
    fake: Optional[Tensor] = None  # D phases: detached; G_main: with graph to G; G_reg: None
    real_logits: Optional[Tensor] = None
    fake_logits: Optional[Tensor] = None
    real_aux: dict[str, Tensor] = field(default_factory=dict)  # e.g. "cls": class logits, "recon": decoder output
    fake_aux: dict[str, Tensor] = field(default_factory=dict)
    z: Optional[Tensor] = None  # the latents ``fake`` was generated from (G_reg: fresh latents)


@dataclass(frozen=True)
class Term:
    """A loss term added to ``phase``: ``weight * fn(view)`` (lazy phases also x reg_interval).

    A D_reg / G_reg term sees a view with the plain (fp32, uncompiled) networks, also when
    ``reg_interval`` is 1 and it joins the main phase's loss."""

    name: str
    phase: str
    fn: Callable[[StepView], Tensor]
    weight: float = 1.0

    def __post_init__(self) -> None:
        if self.phase not in PHASES:
            raise ValueError(f"term {self.name!r}: phase must be one of {PHASES}, got {self.phase!r}")


class Ingredient:
    """Base of everything that takes part in the step besides G, D and the adversarial loss."""

    def terms(self) -> list[Term]:
        return []

    def build(self, G: nn.Module, D: nn.Module) -> None:
        """Run once after the networks are created (e.g. wrap weights in spectral norm)."""

    def before_step(self, step: int) -> None:
        """Run before the phases of every step (e.g. a capacity schedule)."""

    def after_phase(self, phase: str, view: StepView) -> None:
        """Run after ``phase``'s optimizer step (e.g. weight clipping, ADA statistics)."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None

    def metrics(self) -> dict[str, float]:
        return {}
