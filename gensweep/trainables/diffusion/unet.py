"""A small U-Net noise/velocity predictor for 28-32 px images (1 or 3 channels).

Layout after Ho et al. 2020 ("Denoising Diffusion Probabilistic Models") as refined by
Nichol & Dhariwal 2021: a sinusoidal embedding of the (continuous) time, residual blocks with
GroupNorm whose activations are shifted by the time (and class) embedding, self-attention at
low resolution, skip connections between the down and up paths. Class conditioning uses a
learned embedding with one extra "null" entry, the unconditional label that classifier-free
guidance (Ho & Salimans 2021) trains by dropping labels.

Odd feature-map sizes (28 -> 14 -> 7 -> 4) are fine: every up-sampling step resizes to the
size of the skip connection it is joined with.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

Tensor = torch.Tensor


@dataclass(frozen=True)
class UNetSpec:
    channels: int = 1
    width: int = 32
    channel_mult: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 1
    attn_res: int = 8  # self-attention on feature maps of at most this size (0: none)
    dropout: float = 0.0
    num_classes: int = 0  # 0: unconditional
    resolution: int = 32


def time_embedding(t: Tensor, dim: int, scale: float = 1000.0) -> Tensor:
    """Sinusoidal features of continuous times ``t`` in [0, 1] (frequencies as in Vaswani et al. 2017)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / max(half, 1))
    angles = (t.float() * scale)[:, None] * freqs[None, :]
    emb = torch.cat([angles.sin(), angles.cos()], dim=1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


def _groups(ch: int) -> int:
    return math.gcd(ch, 8)


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, emb_dim: int, dropout: float):
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2 = nn.GroupNorm(_groups(c_out), c_out)
        self.drop = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(emb)[:, :, None, None]
        h = self.conv2(self.drop(F.silu(self.norm2(h))))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    def __init__(self, ch: int, head_dim: int = 32):
        super().__init__()
        self.heads = max(1, ch // head_dim)
        self.norm = nn.GroupNorm(_groups(ch), ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = nn.Conv2d(ch, ch, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, self.heads, c // self.heads, h * w).unbind(1)
        out = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.proj(out.transpose(-1, -2).reshape(n, c, h, w))


class _Level(nn.Module):
    """The residual blocks (each optionally followed by attention) of one resolution."""

    def __init__(self, chans: Sequence[tuple[int, int]], emb_dim: int, dropout: float, attn: bool):
        super().__init__()
        self.blocks = nn.ModuleList(ResBlock(ci, co, emb_dim, dropout) for ci, co in chans)
        self.attn = nn.ModuleList(SelfAttention(co) if attn else nn.Identity() for _, co in chans)


class UNet(nn.Module):
    """``net(x_t, t, labels=None) -> output`` with the shape of ``x_t``; ``t`` in [0, 1], shape [N]."""

    def __init__(self, spec: UNetSpec):
        super().__init__()
        self.spec = spec
        w = spec.width
        emb_dim = 4 * w
        self.time_mlp = nn.Sequential(nn.Linear(w, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.null_class = spec.num_classes  # index of the unconditional label
        self.label_emb = nn.Embedding(spec.num_classes + 1, emb_dim) if spec.num_classes else None
        self.stem = nn.Conv2d(spec.channels, w, 3, padding=1)

        chans = [w * m for m in spec.channel_mult]
        skips = [w]
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        size, c = spec.resolution, w
        for i, ch in enumerate(chans):
            pairs = []
            for _ in range(spec.num_res_blocks):
                pairs.append((c, ch))
                c = ch
                skips.append(c)
            self.down.append(_Level(pairs, emb_dim, spec.dropout, 0 < spec.attn_res and size <= spec.attn_res))
            last = i == len(chans) - 1
            self.downsample.append(nn.Identity() if last else nn.Conv2d(c, c, 3, stride=2, padding=1))
            if not last:
                skips.append(c)
                size = (size + 1) // 2
        self.mid1 = ResBlock(c, c, emb_dim, spec.dropout)
        self.mid_attn = SelfAttention(c) if 0 < spec.attn_res and size <= spec.attn_res else nn.Identity()
        self.mid2 = ResBlock(c, c, emb_dim, spec.dropout)

        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i, ch in reversed(list(enumerate(chans))):
            pairs = []
            for _ in range(spec.num_res_blocks + 1):
                pairs.append((c + skips.pop(), ch))
                c = ch
            self.up.append(_Level(pairs, emb_dim, spec.dropout, 0 < spec.attn_res and size <= spec.attn_res))
            self.upsample.append(nn.Conv2d(c, c, 3, padding=1) if i > 0 else nn.Identity())
            if i > 0:
                size = size * 2
        assert not skips
        self.out_norm = nn.GroupNorm(_groups(c), c)
        self.out = nn.Conv2d(c, spec.channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, t: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        emb = self.time_mlp(time_embedding(t, self.spec.width))
        if self.label_emb is not None:
            if labels is None:
                labels = torch.full((x.shape[0],), self.null_class, dtype=torch.long, device=x.device)
            emb = emb + self.label_emb(labels)
        h = self.stem(x)
        hs = [h]
        for level, down in zip(self.down, self.downsample):
            for block, attn in zip(level.blocks, level.attn):
                h = attn(block(h, emb))
                hs.append(h)
            if not isinstance(down, nn.Identity):
                h = down(h)
                hs.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for level, up in zip(self.up, self.upsample):
            for block, attn in zip(level.blocks, level.attn):
                h = attn(block(torch.cat([h, hs.pop()], dim=1), emb))
            if not isinstance(up, nn.Identity):
                skip_size = hs[-1].shape[-2:]
                h = up(F.interpolate(h, size=skip_size, mode="nearest"))
        return self.out(F.silu(self.out_norm(h)))
