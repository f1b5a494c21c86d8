"""StyleGAN2-lite (Karras et al. 2020): a mapping network z -> w, a synthesis network of
modulated/demodulated convolutions with per-layer noise and skip (ToRGB) outputs, and a residual D
with minibatch standard deviation, small enough for CPU tests at 28-32 px.

As stylegan2-ada-pytorch's CIFAR setup: 2 mapping layers (lr multiplier 0.01), no style mixing.
"Lite": no truncation (no tracked w average), bilinear / average-pool resampling instead of FIR
filters, and a final tanh so images lie in [-1, 1] like every architecture here (StyleGAN2 leaves
them unbounded). Labels enter through the conditioning like elsewhere: its latent pathway feeds
the mapping input, its class embedding is normalized and concatenated to z (as StyleGAN2 does
with its label embedding), and D's head is the conditioning's.
Widths: G ``w*2^(k-1)`` at the start resolution halving to ``w``; D doubling from ``w``;
``w_dim = 4 w``. The generator exposes ``mapping(z, labels) -> ws`` ([N, num_ws, w_dim]) and
``synthesis(ws) -> images``, which path-length regularization differentiates through.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from gensweep.trainables.gan.architectures.base import (
    ARCHITECTURES, ArchSpec, Discriminator, Generator, Trunk, attention_level, start_resolution,
)
from gensweep.trainables.gan.architectures.layers import SelfAttention
from gensweep.trainables.gan.architectures.style_layers import (
    EqConv2d, EqLinear, MinibatchStd, ModulatedConv2d, normalize_2nd_moment,
)

Tensor = torch.Tensor
MAPPING_LAYERS = 2
MAPPING_LR = 0.01


def _up(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class StyleGAN2Body(nn.Module):
    def __init__(self, spec: ArchSpec, z_in: int, cond_dim: int):
        super().__init__()
        start, ups = start_resolution(spec.resolution)
        ch = [spec.width * 2 ** max(ups - 1 - i, 0) for i in range(ups + 1)]
        self.w_dim = 4 * spec.width
        dims = [z_in + cond_dim] + [self.w_dim] * MAPPING_LAYERS
        self.mapping_net = nn.Sequential(
            *(EqLinear(a, b, lr_multiplier=MAPPING_LR, act=True) for a, b in zip(dims[:-1], dims[1:]))
        )
        self.const = nn.Parameter(torch.randn(ch[0], start, start))
        self.convs = nn.ModuleList()  # per level: [conv0 (levels > 0), conv1]
        self.torgb = nn.ModuleList()
        for level in range(ups + 1):
            res = start * 2**level
            pair = [ModulatedConv2d(ch[level - 1], ch[level], self.w_dim, res)] if level else []
            pair.append(ModulatedConv2d(ch[level], ch[level], self.w_dim, res))
            self.convs.append(nn.ModuleList(pair))
            self.torgb.append(ModulatedConv2d(ch[level], spec.channels, self.w_dim, res, rgb=True))
        # each conv takes its own w; a level's ToRGB shares its w with the next level's first conv
        self.num_ws = sum(len(pair) for pair in self.convs) + 1
        self.attn_at = attention_level(ups)
        self.attn = SelfAttention(ch[self.attn_at]) if spec.attention else None

    def mapping(self, z: Tensor, e: Optional[Tensor]) -> Tensor:
        x = normalize_2nd_moment(z)
        if e is not None:
            x = torch.cat([x, normalize_2nd_moment(e)], dim=1)
        return self.mapping_net(x).unsqueeze(1).repeat(1, self.num_ws, 1)

    def synthesis(self, ws: Tensor) -> Tensor:
        x = self.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
        img: Optional[Tensor] = None
        idx = 0
        for level, (pair, torgb) in enumerate(zip(self.convs, self.torgb)):
            if level:
                x = _up(x)
            for conv in pair:
                x = conv(x, ws[:, idx])
                idx += 1
            if self.attn is not None and level == self.attn_at:
                x = self.attn(x)
            y = torgb(x, ws[:, idx])
            img = y if img is None else _up(img) + y
        return torch.tanh(img)

    def forward(self, z: Tensor, e: Optional[Tensor]) -> Tensor:
        return self.synthesis(self.mapping(z, e))


class StyleGenerator(Generator):
    """The Generator shell with StyleGAN2's two halves exposed (labels through the conditioning)."""

    body: StyleGAN2Body

    def mapping(self, z: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        return self.body.mapping(self.latent(z, labels), self.embed(labels))

    def synthesis(self, ws: Tensor) -> Tensor:
        return self.body.synthesis(ws)


class _DBlock(nn.Module):
    """StyleGAN2's residual D block: two 3x3 convs then 2x down, plus a 1x1 down skip, both x sqrt(1/2)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv0, self.conv1 = EqConv2d(c_in, c_in, 3), EqConv2d(c_in, c_out, 3)
        self.skip = EqConv2d(c_in, c_out, 1, bias=False, act=False)

    def forward(self, x: Tensor) -> Tensor:
        y = self.skip(F.avg_pool2d(x, 2), gain=math.sqrt(0.5))
        return y + F.avg_pool2d(self.conv1(self.conv0(x), gain=math.sqrt(0.5)), 2)


class StyleGAN2Trunk(Trunk):
    def __init__(self, spec: ArchSpec, c_in: int):
        super().__init__()
        start, downs = start_resolution(spec.resolution)
        ch = [spec.width * 2 ** min(i, max(downs - 1, 0)) for i in range(downs + 1)]
        self.fromrgb = EqConv2d(c_in, ch[0], 1)
        self.blocks = nn.ModuleList(_DBlock(ch[i], ch[i + 1]) for i in range(downs))
        self.attn = SelfAttention(ch[0]) if spec.attention else None
        self.mbstd = MinibatchStd()
        self.conv = EqConv2d(ch[-1] + 1, ch[-1], 3)
        self.fc = EqLinear(ch[-1] * start * start, ch[-1], act=True)
        self.feat_dim = ch[-1]

    def forward(self, x: Tensor, aux: bool = False) -> tuple[Tensor, dict]:
        h = self.fromrgb(x)
        if self.attn is not None:
            h = self.attn(h)
        for block in self.blocks:
            h = block(h)
        return self.fc(self.conv(self.mbstd(h)).flatten(1)), {}


@ARCHITECTURES.register("stylegan2-lite", ref="Karras et al. 2020, Analyzing and Improving the Image Quality of StyleGAN (StyleGAN2)")
def build_stylegan2_lite(spec: ArchSpec) -> tuple[nn.Module, nn.Module]:
    return StyleGenerator(spec, StyleGAN2Body), Discriminator(spec, StyleGAN2Trunk)


build_stylegan2_lite.mapping_network = True  # G has mapping/synthesis halves (what path-length regularization needs)
