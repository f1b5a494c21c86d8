"""Building blocks shared by the architectures."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

Tensor = torch.Tensor


def xavier_(*modules: nn.Module, gain: float = 1.0) -> None:
    """Xavier-uniform weights and zero biases, the initialization of the SNGAN / BigGAN residual nets."""
    for m in modules:
        nn.init.xavier_uniform_(m.weight, gain)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


class CondBatchNorm(nn.Module):
    """BatchNorm whose gain and bias are predicted from a conditioning vector (de Vries et al. 2017).

    With ``cond_dim == 0`` it is an ordinary affine BatchNorm, so one class serves conditional
    and unconditional generators.
    """

    def __init__(self, channels: int, cond_dim: int = 0):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=cond_dim == 0)
        self.gain = nn.Linear(cond_dim, channels) if cond_dim else None
        self.bias = nn.Linear(cond_dim, channels) if cond_dim else None

    def forward(self, x: Tensor, c: Optional[Tensor] = None) -> Tensor:
        h = self.bn(x)
        if self.gain is None:
            return h
        return h * (1 + self.gain(c))[:, :, None, None] + self.bias(c)[:, :, None, None]


class SelfAttention(nn.Module):
    """SAGAN self-attention (Zhang et al. 2019): softmax(q^T k) over positions, output scaled by gamma=0 at init."""

    def __init__(self, channels: int):
        super().__init__()
        inner = max(channels // 8, 1)
        self.q = nn.Conv2d(channels, inner, 1, bias=False)
        self.k = nn.Conv2d(channels, inner, 1, bias=False)
        self.v = nn.Conv2d(channels, max(channels // 2, 1), 1, bias=False)
        self.out = nn.Conv2d(max(channels // 2, 1), channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor, c: Optional[Tensor] = None) -> Tensor:
        n, _, h, w = x.shape
        q = self.q(x).flatten(2)  # N, C', HW
        k = self.k(x).flatten(2)
        v = self.v(x).flatten(2)
        attn = torch.softmax(q.transpose(1, 2) @ k, dim=-1)  # N, HW (query), HW (key)
        o = (v @ attn.transpose(1, 2)).view(n, -1, h, w)
        return x + self.gamma * self.out(o)


class ResBlockUp(nn.Module):
    """Pre-activation residual block with 2x nearest upsampling (Miyato et al. 2018 / BigGAN G block)."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int = 0, up: bool = True):
        super().__init__()
        self.up = up
        self.n1, self.n2 = CondBatchNorm(c_in, cond_dim), CondBatchNorm(c_out, cond_dim)
        self.c1, self.c2 = nn.Conv2d(c_in, c_out, 3, 1, 1), nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.sc = nn.Conv2d(c_in, c_out, 1) if (c_in != c_out or up) else None
        xavier_(self.c1, self.c2, gain=2**0.5)
        if self.sc is not None:
            xavier_(self.sc)

    def _up(self, x: Tensor) -> Tensor:
        return F.interpolate(x, scale_factor=2, mode="nearest") if self.up else x

    def forward(self, x: Tensor, c: Optional[Tensor] = None) -> Tensor:
        h = self.c1(self._up(F.relu(self.n1(x, c))))
        h = self.c2(F.relu(self.n2(h, c)))
        s = self._up(x)
        return h + (self.sc(s) if self.sc is not None else s)


class ResBlockDown(nn.Module):
    """D residual block: ReLU-conv-ReLU-conv(-avgpool) plus a 1x1 shortcut; ``first`` skips the leading ReLU."""

    def __init__(self, c_in: int, c_out: int, down: bool = True, first: bool = False):
        super().__init__()
        self.down, self.first = down, first
        self.c1, self.c2 = nn.Conv2d(c_in, c_out, 3, 1, 1), nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.sc = nn.Conv2d(c_in, c_out, 1) if (c_in != c_out or down) else None
        xavier_(self.c1, self.c2, gain=2**0.5)
        if self.sc is not None:
            xavier_(self.sc)

    def forward(self, x: Tensor) -> Tensor:
        h = x if self.first else F.relu(x)
        h = self.c2(F.relu(self.c1(h)))
        if self.down:
            h = F.avg_pool2d(h, 2)
        s = x
        if self.first:  # optimized first block: pool, then project
            s = F.avg_pool2d(s, 2) if self.down else s
            s = self.sc(s) if self.sc is not None else s
        else:
            s = self.sc(s) if self.sc is not None else s
            s = F.avg_pool2d(s, 2) if self.down else s
        return h + s


class SkipExcitation(nn.Module):
    """FastGAN skip-layer excitation (Liu et al. 2021): a low-res map gates the channels of a high-res one."""

    def __init__(self, c_low: int, c_high: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.AdaptiveAvgPool2d(4), nn.Conv2d(c_low, c_high, 4), nn.LeakyReLU(0.1), nn.Conv2d(c_high, c_high, 1), nn.Sigmoid()
        )

    def forward(self, low: Tensor, high: Tensor) -> Tensor:
        return high * self.body(low)
