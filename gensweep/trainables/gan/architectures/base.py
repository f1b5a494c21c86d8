"""What every architecture shares: the spec, the registry, and G/D shells around a body/trunk.

A builder has one signature, ``build(spec) -> (G, D)``:

- ``G(z, labels=None) -> images in [-1, 1]`` -- a :class:`Generator` whose body gets
  ``(z', e)``: the latent after the conditioning's label input and the label embedding for
  conditional BatchNorm (None when the conditioning feeds no labels to the norms);
- ``D(images, labels=None, aux=False) -> logits [N]`` (with ``aux=True``: ``(logits, aux)``,
  aux holding e.g. class logits of an AC-GAN head) -- a :class:`Discriminator` whose trunk
  maps the conditioned input to a feature vector and whose head comes from the conditioning.

Labels therefore reach the networks only through the conditioning's modules, and an
architecture never asks which conditioning it is built with.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn

from gensweep.trainables.gan.conditioning import CONDITIONINGS, Conditioning
from gensweep.trainables.gan.terms import Term
from gensweep.trainables.registry import Registry

Tensor = torch.Tensor


@dataclass(frozen=True)
class ArchSpec:
    resolution: int
    channels: int
    width: int
    z_dim: int
    num_classes: int = 0
    conditioning: str = "none"
    attention: bool = False  # SAGAN self-attention at half resolution in G and D

    def cond(self) -> Conditioning:
        return CONDITIONINGS.get(self.conditioning)(self.num_classes)


Builder = Callable[[ArchSpec], tuple[nn.Module, nn.Module]]
ARCHITECTURES: Registry[Builder] = Registry("architecture")


def start_resolution(resolution: int) -> tuple[int, int]:
    """Smallest feature map (4..7 px) and the number of 2x up/down-samplings to reach ``resolution``."""
    ups = 0
    r = resolution
    while r > 7:
        if r % 2:
            raise ValueError(f"resolution {resolution} is not start*2^k with start in 4..7")
        r //= 2
        ups += 1
    if r < 4:
        raise ValueError(f"resolution {resolution} is too small (need at least 4 px)")
    return r, ups


def attention_level(ups: int) -> int:
    """Index (0 = start resolution) of the feature map where self-attention sits: half resolution."""
    return max(ups - 1, 0)


class Trunk(nn.Module):
    """D's body: ``(x, aux) -> (features [N, feat_dim], aux dict)``."""

    feat_dim: int

    def terms(self) -> list[Term]:
        return []


class Generator(nn.Module):
    def __init__(self, spec: ArchSpec, body: Callable[[ArchSpec, int, int], nn.Module]):
        super().__init__()
        cond = spec.cond()
        self.latent = cond.g_latent(spec.z_dim)
        self.embed = cond.g_embed()
        self.body = body(spec, self.latent.out_dim, self.embed.out_dim)

    def forward(self, z: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        return self.body(self.latent(z, labels), self.embed(labels))


class Discriminator(nn.Module):
    def __init__(self, spec: ArchSpec, trunk: Callable[[ArchSpec, int], Trunk]):
        super().__init__()
        cond = spec.cond()
        self.inp = cond.d_input(spec.channels)
        self.trunk = trunk(spec, self.inp.out_channels)
        self.head = cond.d_head(self.trunk.feat_dim)

    def forward(self, x: Tensor, labels: Optional[Tensor] = None, aux: bool = False):
        f, extras = self.trunk(self.inp(x, labels), aux)
        logits, head_aux = self.head(f, labels)
        return (logits, {**extras, **head_aux}) if aux else logits

    def terms(self) -> list[Term]:
        """Loss terms the architecture itself needs (e.g. FastGAN's reconstruction)."""
        return self.trunk.terms()
