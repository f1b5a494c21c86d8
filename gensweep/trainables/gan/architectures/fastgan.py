"""FastGAN-lite (Liu et al. 2021): GLU up-blocks with skip-layer excitation in G, and a D that also
reconstructs its real input from its smallest feature map (self-supervised auto-encoding loss).

"Lite": one SLE link per pair of levels two octaves apart (e.g. 4->16 and 8->32 px at 32 px),
a single decoder from D's start-resolution features to a 4x-upscaled image (not FastGAN's crops
of several sizes), and no BatchNorm in D so gradient penalties stay per-sample.
Widths: G ``w*2^(k-1)`` at the start resolution halving to ``w``; D doubling from ``w``.
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
    CondBatchNorm, SelfAttention, SkipExcitation,
)
from gensweep.trainables.gan.terms import StepView, Term

Tensor = torch.Tensor


class _GluUp(nn.Module):
    def __init__(self, c_in: int, c_out: int, cond_dim: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, 2 * c_out, 3, 1, 1, bias=False)
        self.norm = CondBatchNorm(2 * c_out, cond_dim)

    def forward(self, x: Tensor, c: Optional[Tensor]) -> Tensor:
        return F.glu(self.norm(self.conv(F.interpolate(x, scale_factor=2, mode="nearest")), c), dim=1)


class FastGANBody(nn.Module):
    def __init__(self, spec: ArchSpec, z_in: int, cond_dim: int):
        super().__init__()
        start, ups = start_resolution(spec.resolution)
        ch = [spec.width * 2 ** max(ups - 1 - i, 0) for i in range(ups + 1)]
        self.init = nn.ConvTranspose2d(z_in, 2 * ch[0], start)  # 1x1 -> start x start
        self.init_norm = CondBatchNorm(2 * ch[0], cond_dim)
        self.ups = nn.ModuleList(_GluUp(ch[i], ch[i + 1], cond_dim) for i in range(ups))
        self.sle = nn.ModuleDict({str(i + 2): SkipExcitation(ch[i], ch[i + 2]) for i in range(ups - 1)})
        self.attn_at = attention_level(ups)
        self.attn = SelfAttention(ch[self.attn_at]) if spec.attention else None
        self.out = nn.Conv2d(ch[-1], spec.channels, 3, 1, 1)

    def forward(self, z: Tensor, e: Optional[Tensor]) -> Tensor:
        h = F.glu(self.init_norm(self.init(z[:, :, None, None]), e), dim=1)
        feats = [h]
        for level in range(len(self.ups) + 1):
            if level:
                h = self.ups[level - 1](h, e)
                if str(level) in self.sle:
                    h = self.sle[str(level)](feats[level - 2], h)
                feats.append(h)
            if self.attn is not None and level == self.attn_at:
                h = feats[level] = self.attn(h)
        return torch.tanh(self.out(h))


class _DownComp(nn.Module):
    """Two paths averaged: strided conv + conv, and avg-pool + 1x1 conv (FastGAN's DownBlockComp, no BN)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(c_out, c_out, 3, 1, 1), nn.LeakyReLU(0.2)
        )
        self.direct = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(c_in, c_out, 1), nn.LeakyReLU(0.2))

    def forward(self, x: Tensor) -> Tensor:
        return (self.main(x) + self.direct(x)) / 2


class FastGANTrunk(Trunk):
    def __init__(self, spec: ArchSpec, c_in: int):
        super().__init__()
        start, downs = start_resolution(spec.resolution)
        self.channels = spec.channels
        blocks: list[nn.Module] = []
        ch = spec.width
        for i in range(downs):
            blocks.append(nn.Sequential(nn.Conv2d(c_in, ch, 4, 2, 1), nn.LeakyReLU(0.2)) if i == 0 else _DownComp(c_in, ch))
            c_in, ch = ch, ch * 2
        self.blocks = nn.ModuleList(blocks)
        self.attn = SelfAttention(spec.width if downs else c_in) if spec.attention else None
        self.final = nn.Sequential(nn.Conv2d(c_in, c_in, 1), nn.LeakyReLU(0.2))
        self.feat_dim = c_in * start * start
        dec_ch = max(c_in // 2, 1)
        self.decoder = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, 2 * dec_ch, 3, 1, 1), nn.GLU(dim=1),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(dec_ch, 2 * dec_ch, 3, 1, 1), nn.GLU(dim=1),
            nn.Conv2d(dec_ch, spec.channels, 3, 1, 1), nn.Tanh(),
        )
        self.decoder[-2].no_capacity_mask = True  # image channels: DynamicD must not mask them
        self.recon_size = start * 4

    def forward(self, x: Tensor, aux: bool = False) -> tuple[Tensor, dict]:
        h = x if self.blocks or self.attn is None else self.attn(x)
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i == 0 and self.attn is not None:
                h = self.attn(h)
        h = self.final(h)
        extras = {}
        if aux:
            target = F.interpolate(x[:, : self.channels], size=self.recon_size, mode="area")
            extras = {"recon": self.decoder(h), "recon_target": target.detach()}
        return h.flatten(1), extras

    def terms(self) -> list[Term]:
        def recon(v: StepView) -> Tensor:
            return F.l1_loss(v.real_aux["recon"], v.real_aux["recon_target"])

        return [Term("fastgan_recon", "D_main", recon, 1.0)]


@ARCHITECTURES.register("fastgan-lite", ref="Liu et al. 2021, Towards Faster and Stabilized GAN Training for High-fidelity Few-shot Image Synthesis")
def build_fastgan_lite(spec: ArchSpec) -> tuple[nn.Module, nn.Module]:
    return Generator(spec, FastGANBody), Discriminator(spec, FastGANTrunk)
