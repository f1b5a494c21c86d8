"""DCGAN (Radford et al. 2016): transposed-conv G with BatchNorm, strided-conv D with LeakyReLU.

Width ``w``: G goes ``w*2^(k-1)`` channels at the start resolution down to ``w``; D goes up
from ``w`` by doubling. G's BatchNorms are the conditioning's (conditional when it feeds
labels to the norms).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from gensweep.trainables.gan.architectures.base import (
    ARCHITECTURES, ArchSpec, Discriminator, Generator, Trunk, attention_level, start_resolution,
)
from gensweep.trainables.gan.architectures.layers import CondBatchNorm, SelfAttention

Tensor = torch.Tensor


class DCGANBody(nn.Module):
    def __init__(self, spec: ArchSpec, z_in: int, cond_dim: int):
        super().__init__()
        start, ups = start_resolution(spec.resolution)
        ch = spec.width * 2 ** max(ups - 1, 0)
        self.start, self.ch0 = start, ch
        self.fc = nn.Linear(z_in, ch * start * start)
        self.norms = nn.ModuleList([CondBatchNorm(ch, cond_dim)])
        self.convs = nn.ModuleList()
        self.attn_at = attention_level(ups)
        self.attn: Optional[nn.Module] = None
        for level in range(ups):
            if spec.attention and level == self.attn_at:
                self.attn = SelfAttention(ch)
            if level < ups - 1:
                self.convs.append(nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False))
                self.norms.append(CondBatchNorm(ch // 2, cond_dim))
                ch //= 2
        if spec.attention and ups == 0:
            self.attn = SelfAttention(ch)
        self.out = nn.ConvTranspose2d(ch, spec.channels, 4, 2, 1) if ups else nn.Conv2d(ch, spec.channels, 3, 1, 1)

    def forward(self, z: Tensor, e: Optional[Tensor]) -> Tensor:
        h = self.fc(z).view(z.shape[0], self.ch0, self.start, self.start)
        h = F.relu(self.norms[0](h, e))
        for level in range(len(self.convs) + 1):
            if level:
                h = F.relu(self.norms[level](self.convs[level - 1](h), e))
            if self.attn is not None and level == self.attn_at:
                h = self.attn(h)
        return torch.tanh(self.out(h))


class DCGANTrunk(Trunk):
    def __init__(self, spec: ArchSpec, c_in: int):
        super().__init__()
        start, downs = start_resolution(spec.resolution)
        self.convs = nn.ModuleList()
        ch = spec.width
        for _ in range(downs):
            self.convs.append(nn.Conv2d(c_in, ch, 4, 2, 1))
            c_in, ch = ch, ch * 2
            if len(self.convs) == 1 and spec.attention:
                self.attn = SelfAttention(c_in)
        if spec.attention and not downs:
            self.attn = SelfAttention(c_in)
        if not spec.attention:
            self.attn = None
        self.feat_dim = c_in * start * start

    def forward(self, x: Tensor, aux: bool = False) -> tuple[Tensor, dict]:
        h = x if self.convs or self.attn is None else self.attn(x)
        for i, conv in enumerate(self.convs):
            h = F.leaky_relu(conv(h), 0.2)
            if i == 0 and self.attn is not None:
                h = self.attn(h)
        return h.flatten(1), {}


@ARCHITECTURES.register("dcgan", ref="Radford et al. 2016, Unsupervised Representation Learning with DCGANs")
def build_dcgan(spec: ArchSpec) -> tuple[nn.Module, nn.Module]:
    return Generator(spec, DCGANBody), Discriminator(spec, DCGANTrunk)
