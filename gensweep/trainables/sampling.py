"""Sampling-time settings: config fields that change how a trained network samples, not how it trains.

A family marks such a field with ``json_schema_extra=SAMPLING_TIME`` (diffusion: ``sampler``,
``sample_steps``, ``eta``, ``guidance``; GAN: ``truncation``). A config's ``sampling_grid`` lists
settings of those fields (``[{"sampler": "ddim", "sample_steps": 10}, ...]``); the training loop
then scores every setting on the same network at every evaluation, each under its tag
(:func:`setting_tag`), instead of one training per setting.
"""
from __future__ import annotations

from typing import Any, Mapping, TypeVar

from pydantic import BaseModel

SAMPLING_TIME = {"sampling_time": True}  # json_schema_extra of a sampling-time config field
GRID_FIELD = "sampling_grid"

M = TypeVar("M", bound=BaseModel)


def sampling_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """The fields of ``model`` declared sampling-time, in declaration order."""
    return tuple(name for name, f in model.model_fields.items()
                 if isinstance(f.json_schema_extra, dict) and f.json_schema_extra.get("sampling_time"))


def setting_tag(setting: Mapping[str, Any]) -> str:
    """A setting's readable tag, ``key=value`` joined by ``,`` in the setting's order: it suffixes
    the setting's metric names (``fid/<tag>``) and fills the ``sampling`` column of its rows."""
    return ",".join(f"{k}={v}" for k, v in setting.items())


def setting_configs(cfg: M) -> list[tuple[str, M]]:
    """``(tag, config)`` of every setting of ``cfg.sampling_grid``: ``cfg`` with the setting applied
    (validated; its own grid empty). An empty grid gives ``[("", cfg)]``."""
    grid = getattr(cfg, GRID_FIELD)
    if not grid:
        return [("", cfg)]
    base = cfg.model_dump()
    return [(setting_tag(s), type(cfg).model_validate({**base, **s, GRID_FIELD: []})) for s in grid]


def check_grid(cfg: M) -> M:
    """Every setting of ``cfg.sampling_grid`` names sampling-time fields only and makes a valid config."""
    grid = getattr(cfg, GRID_FIELD)
    allowed = sampling_fields(type(cfg))
    for i, setting in enumerate(grid):
        bad = [k for k in setting if k not in allowed]
        if bad:
            raise ValueError(f"{GRID_FIELD}[{i}]: {', '.join(bad)} not sampling-time; allowed: {', '.join(allowed)}")
    if grid:
        setting_configs(cfg)  # raises on a setting that makes an invalid config
    return cfg
