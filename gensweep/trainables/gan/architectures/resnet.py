"""ResNet G/D in the SNGAN style (Miyato et al. 2018): residual up/down blocks, global average pooling in D.

Width ``w`` is the channel count of every block (G and D), as in SNGAN's constant-width nets.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from gensweep.trainables.gan.architectures.base import (
    ARCHITECTURES, ArchSpec, Discriminator, Generator, Trunk, attention_level, start_resolution,
)
from gensweep.trainables.gan.architectures.layers import (
    CondBatchNorm, ResBlockDown, ResBlockUp, SelfAttention,
)

Tensor = torch.Tensor


class ResNetBody(nn.Module):
    def __init__(self, spec: ArchSpec, z_in: int, cond_dim: int):
        super().__init__()
        start, ups = start_resolution(spec.resolution)
        ch = spec.width
        self.start, self.ch = start, ch
        self.fc = nn.Linear(z_in, ch * start * start)
        self.blocks = nn.ModuleList(ResBlockUp(ch, ch, cond_dim) for _ in range(ups))
        self.attn_at = attention_level(ups)
        self.attn = SelfAttention(ch) if spec.attention else None
        self.norm = CondBatchNorm(ch)
        self.out = nn.Conv2d(ch, spec.channels, 3, 1, 1)

    def forward(self, z: Tensor, e: Optional[Tensor]) -> Tensor:
        h = self.fc(z).view(z.shape[0], self.ch, self.start, self.start)
        for level in range(len(self.blocks) + 1):
            if level:
                h = self.blocks[level - 1](h, e)
            if self.attn is not None and level == self.attn_at:
                h = self.attn(h)
        return torch.tanh(self.out(F.relu(self.norm(h))))


class ResNetTrunk(Trunk):
    """First (optimized) block, more down blocks to the start resolution, one flat block, ReLU, global pool.

    SNGAN sums over positions; we average, which keeps logits O(1) when D has no spectral norm.
    """

    def __init__(self, spec: ArchSpec, c_in: int, widths: Optional[list[int]] = None):
        super().__init__()
        _, downs = start_resolution(spec.resolution)
        widths = widths or [spec.width] * (downs + 1)
        blocks = []
        for i in range(downs):
            blocks.append(ResBlockDown(c_in, widths[i], down=True, first=i == 0))
            c_in = widths[i]
        blocks.append(ResBlockDown(c_in, widths[downs], down=False, first=downs == 0))
        self.blocks = nn.ModuleList(blocks)
        self.attn = SelfAttention(widths[0]) if spec.attention else None
        self.feat_dim = widths[downs]

    def forward(self, x: Tensor, aux: bool = False) -> tuple[Tensor, dict]:
        h = x
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i == 0 and self.attn is not None:
                h = self.attn(h)
        return F.relu(h).mean(dim=(2, 3)), {}


@ARCHITECTURES.register("resnet", ref="Miyato et al. 2018, Spectral Normalization for GANs (SNGAN ResNet G/D)")
def build_resnet(spec: ArchSpec) -> tuple[nn.Module, nn.Module]:
    return Generator(spec, ResNetBody), Discriminator(spec, ResNetTrunk)
