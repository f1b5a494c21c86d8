"""StyleGAN2's layers (Karras et al. 2020), lite: equalized learning rate, modulated/demodulated
convolution, per-layer noise inputs, minibatch standard deviation.

Equalized learning rate: weights are stored N(0, 1) (divided by the lr multiplier) and scaled at
run time by ``lr_multiplier / sqrt(fan_in)``, so Adam's per-weight step is the same in every layer.
The layers subclass ``nn.Linear`` / ``nn.Conv2d``, so the weight constraints (spectral norm,
orthogonal regularization, which reads ``weight_gain`` to see the applied weights) and DynamicD's
channel masks reach them like any other layer.
Resampling uses bilinear interpolation and 2x2 average pooling instead of StyleGAN2's FIR filters.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

Tensor = torch.Tensor
LRELU_GAIN = math.sqrt(2.0)  # keeps the activations' scale through leaky ReLU(0.2)


def normalize_2nd_moment(x: Tensor, eps: float = 1e-8) -> Tensor:
    """``x / sqrt(mean(x^2))`` per sample: what the mapping network does to z (and to the label embedding)."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def lrelu(x: Tensor, gain: float = 1.0) -> Tensor:
    return F.leaky_relu(x, 0.2) * (LRELU_GAIN * gain)


class EqLinear(nn.Linear):
    """Fully connected layer with equalized learning rate (StyleGAN2's FullyConnectedLayer)."""

    def __init__(self, c_in: int, c_out: int, *, lr_multiplier: float = 1.0, bias_init: float = 0.0, act: bool = False):
        super().__init__(c_in, c_out)
        self.weight_gain, self.bias_gain, self.act = lr_multiplier / math.sqrt(c_in), lr_multiplier, act
        with torch.no_grad():
            self.weight.normal_().div_(lr_multiplier)
            self.bias.fill_(bias_init)

    def forward(self, x: Tensor) -> Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.bias_gain)
        return lrelu(x) if self.act else x


class EqConv2d(nn.Conv2d):
    """Convolution with equalized learning rate; ``act``: leaky ReLU with StyleGAN2's gain."""

    def __init__(self, c_in: int, c_out: int, kernel: int, *, bias: bool = True, act: bool = True):
        super().__init__(c_in, c_out, kernel, padding=kernel // 2, bias=bias)
        self.weight_gain, self.act = 1 / math.sqrt(c_in * kernel * kernel), act
        with torch.no_grad():
            self.weight.normal_()
            if self.bias is not None:
                self.bias.zero_()

    def forward(self, x: Tensor, gain: float = 1.0) -> Tensor:
        x = self._conv_forward(x, self.weight * self.weight_gain, self.bias)
        return lrelu(x, gain) if self.act else x * gain


def modulated_conv2d(x: Tensor, weight: Tensor, styles: Tensor, demodulate: bool = True) -> Tensor:
    """Per-sample weights ``w'_oi = w_oi s_i``, demodulated to ``w'' = w' / sqrt(sum_ik w'^2 + 1e-8)``
    (unit expected output variance), applied as one grouped convolution over the batch."""
    n, c_in, h, w = x.shape
    wts = weight.unsqueeze(0) * styles.reshape(n, 1, c_in, 1, 1)
    if demodulate:
        wts = wts * (wts.square().sum(dim=[2, 3, 4], keepdim=True) + 1e-8).rsqrt()
    out = F.conv2d(x.reshape(1, n * c_in, h, w), wts.reshape(-1, c_in, *weight.shape[2:]),
                   padding=weight.shape[-1] // 2, groups=n)
    return out.reshape(n, -1, *out.shape[2:])


class ModulatedConv2d(nn.Conv2d):
    """A synthesis layer: style-modulated convolution of ``x`` by ``w``, then noise, bias and leaky
    ReLU (``rgb=True``: StyleGAN2's ToRGB, a 1x1 conv without demodulation, noise or activation).

    Noise: random per sample and pixel while training; in eval mode a fixed buffer (StyleGAN2's
    ``noise_mode='const'``), so a sampler's images depend on its latents alone.
    """

    def __init__(self, c_in: int, c_out: int, w_dim: int, resolution: int, *, rgb: bool = False):
        kernel = 1 if rgb else 3
        super().__init__(c_in, c_out, kernel, padding=kernel // 2)
        self.rgb = rgb
        self.affine = EqLinear(w_dim, c_in, bias_init=1.0)
        self.weight_gain = 1 / math.sqrt(c_in * kernel * kernel)  # demodulation cancels it where it applies
        with torch.no_grad():
            self.weight.normal_()
            self.bias.zero_()
        self.noise_strength: Optional[nn.Parameter] = None
        if not rgb:
            self.noise_strength = nn.Parameter(torch.zeros(()))
            self.register_buffer("noise_const", torch.randn(resolution, resolution))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        x = modulated_conv2d(x, self.weight * self.weight_gain, self.affine(w), demodulate=not self.rgb)
        if self.noise_strength is not None:
            if self.training:
                noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
            else:
                noise = self.noise_const.to(x.dtype)
            x = x + noise * self.noise_strength
        x = x + self.bias.view(1, -1, 1, 1)
        return x if self.rgb else lrelu(x)


class MinibatchStd(nn.Module):
    """Appends the average standard deviation of each feature over groups of up to ``group_size``
    samples (samples i, i + N/G, ... form a group) as one extra channel (Karras et al. 2018)."""

    def __init__(self, group_size: int = 4):
        super().__init__()
        self.group_size = group_size

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        while n % g:  # the largest group size up to group_size that divides the batch
            g -= 1
        y = x.reshape(g, -1, c, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt().mean(dim=[1, 2, 3])  # [n/g]
        y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)
