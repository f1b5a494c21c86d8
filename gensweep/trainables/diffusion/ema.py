"""Exponential moving average of a network's weights (the model that is sampled and scored)."""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Keeps ``shadow = beta_k * shadow + (1 - beta_k) * net`` with ``beta_k = min(beta, (1 + k) / (10 + k))``
    after update k, the warm-up of TensorFlow's ExponentialMovingAverage(num_updates), so the average
    is useful from the first hundreds of steps (Polyak & Juditsky 1992 averaging; used by Ho et al. 2020)."""

    def __init__(self, net: nn.Module, beta: float):
        self.beta = beta
        self.shadow = copy.deepcopy(net).eval().requires_grad_(False)

    def decay(self, updates: int) -> float:
        return min(self.beta, (1 + updates) / (10 + updates))

    @torch.no_grad()
    def update(self, net: nn.Module, updates: int) -> None:
        d = self.decay(updates)
        for p_ema, p in zip(self.shadow.parameters(), net.parameters()):
            p_ema.lerp_(p, 1.0 - d)
        for b_ema, b in zip(self.shadow.buffers(), net.buffers()):
            b_ema.copy_(b)
