"""Optimizer settings that come from the trial's config, never from its checkpoint.

``Optimizer.load_state_dict`` restores each param group's hyperparameters (lr, betas, ...) along
with the moments, so a trial resumed under a new config would silently keep the old ones; the
families call :func:`set_hyperparameters` after restoring to apply the config's values.
"""
from __future__ import annotations

from typing import Any

import torch


def set_hyperparameters(opt: torch.optim.Optimizer, **values: Any) -> None:
    """Write ``values`` (e.g. ``lr=1e-3, betas=(0.0, 0.99)``) into every param group of ``opt``."""
    for group in opt.param_groups:
        group.update(values)
