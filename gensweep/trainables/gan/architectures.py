"""Generator/discriminator architectures, built by name at a given resolution and width.

Every builder has one signature: ``build(resolution, channels, width, z_dim, num_classes)``
and returns ``(G, D)`` with ``G(z, labels=None) -> images in [-1, 1]`` and
``D(images, labels=None) -> logits [N]``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn

from gensweep.trainables.registry import Registry

Tensor = torch.Tensor


@dataclass(frozen=True)
class ArchSpec:
    resolution: int
    channels: int
    width: int
    z_dim: int
    num_classes: int = 0


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


class DCGANGenerator(nn.Module):
    def __init__(self, spec: ArchSpec):
        super().__init__()
        self.spec = spec
        start, ups = start_resolution(spec.resolution)
        ch = spec.width * 2 ** (ups - 1) if ups else spec.width
        self.start, self.ch0 = start, ch
        self.fc = nn.Linear(spec.z_dim, ch * start * start)
        self.bn0 = nn.BatchNorm2d(ch)
        blocks: list[nn.Module] = []
        for _ in range(ups - 1):
            blocks += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        out_stride = 2 if ups else 1
        last = nn.ConvTranspose2d(ch, spec.channels, 4, 2, 1) if out_stride == 2 else nn.Conv2d(ch, spec.channels, 3, 1, 1)
        self.body = nn.Sequential(*blocks, last, nn.Tanh())

    def forward(self, z: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        h = self.fc(z).view(z.shape[0], self.ch0, self.start, self.start)
        return self.body(torch.relu(self.bn0(h)))


class DCGANDiscriminator(nn.Module):
    def __init__(self, spec: ArchSpec):
        super().__init__()
        start, downs = start_resolution(spec.resolution)
        layers: list[nn.Module] = []
        c_in, ch = spec.channels, spec.width
        for i in range(downs):
            layers += [nn.Conv2d(c_in, ch, 4, 2, 1), nn.LeakyReLU(0.2, True)]
            c_in, ch = ch, ch * 2
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c_in * start * start, 1)

    def forward(self, x: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        return self.head(self.body(x).flatten(1)).squeeze(1)


@ARCHITECTURES.register("dcgan", ref="Radford et al. 2016, Unsupervised Representation Learning with DCGANs")
def build_dcgan(spec: ArchSpec) -> tuple[nn.Module, nn.Module]:
    return DCGANGenerator(spec), DCGANDiscriminator(spec)
