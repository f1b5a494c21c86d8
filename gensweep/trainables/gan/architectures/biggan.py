"""BigGAN-lite (Brock et al. 2019): residual G whose conditional BatchNorms read a shared class
embedding concatenated with a chunk of z (hierarchical latent), and a residual D with doubling widths.

With the ``projection`` conditioning this is BigGAN's class-conditional setup (cBN in G,
projection D); other conditionings reuse the same nets (with ``none`` the norms read z only).
Spectral norm, orthogonal regularization and EMA are separate ingredients (``reg``, ``ema_beta``).
Widths: G ``w*2^(k-1)`` at the start resolution halving to ``w``; D ``w`` doubling per block.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from gensweep.trainables.gan.architectures.base import (
    ARCHITECTURES, ArchSpec, Discriminator, Generator, attention_level, start_resolution,
)
from gensweep.trainables.gan.architectures.layers import (
    CondBatchNorm, ResBlockUp, SelfAttention,
)
from gensweep.trainables.gan.architectures.resnet import ResNetTrunk

Tensor = torch.Tensor


def _widths(width: int, ups: int) -> list[int]:
    return [width * 2 ** max(ups - 1 - i, 0) for i in range(ups + 1)]


class BigGANBody(nn.Module):
    def __init__(self, spec: ArchSpec, z_in: int, cond_dim: int):
        super().__init__()
        start, ups = start_resolution(spec.resolution)
        ch = _widths(spec.width, ups)
        self.chunk = z_in // (ups + 1)
        self.first = z_in - self.chunk * ups
        self.start, self.ch0 = start, ch[0]
        self.fc = nn.Linear(self.first, ch[0] * start * start)
        self.blocks = nn.ModuleList(ResBlockUp(ch[i], ch[i + 1], cond_dim + self.chunk) for i in range(ups))
        self.attn_at = attention_level(ups)
        self.attn = SelfAttention(ch[self.attn_at]) if spec.attention else None
        self.norm = CondBatchNorm(ch[-1])
        self.out = nn.Conv2d(ch[-1], spec.channels, 3, 1, 1)

    def forward(self, z: Tensor, e: Optional[Tensor]) -> Tensor:
        zs = torch.split(z, [self.first] + [self.chunk] * len(self.blocks), dim=1)
        h = self.fc(zs[0]).view(z.shape[0], self.ch0, self.start, self.start)
        for level in range(len(self.blocks) + 1):
            if level:
                parts = [t for t in (e, zs[level]) if t is not None and t.shape[1]]
                c = torch.cat(parts, dim=1) if parts else None
                h = self.blocks[level - 1](h, c)
            if self.attn is not None and level == self.attn_at:
                h = self.attn(h)
        return torch.tanh(self.out(F.relu(self.norm(h))))


def _trunk(spec: ArchSpec, c_in: int) -> ResNetTrunk:
    _, downs = start_resolution(spec.resolution)
    return ResNetTrunk(spec, c_in, widths=[spec.width * 2 ** max(min(i, downs - 1), 0) for i in range(downs + 1)])


@ARCHITECTURES.register("biggan-lite", ref="Brock et al. 2019, Large Scale GAN Training for High Fidelity Natural Image Synthesis")
def build_biggan_lite(spec: ArchSpec) -> tuple[nn.Module, nn.Module]:
    return Generator(spec, BigGANBody), Discriminator(spec, _trunk)
