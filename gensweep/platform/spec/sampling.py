"""Sampling-time parameters in a spec's space: scored on one training, not searched by training.

A family declares which of its config fields act only at sampling time
(:func:`~gensweep.trainables.sampling.sampling_fields`). Space parameters on those fields are
split off the searched space: the searcher (Optuna, grid) sees only the training parameters, and
every trial gets the grid of the sampling parameters' levels as ``sampling_grid``, so its loop
scores every setting on the same checkpoints at each evaluation. A sampling-time parameter may be
conditional (``when:``) on another sampling-time one or on a training parameter: a trial's grid
holds it where the trial's own values make it active. Settings the family's config refuses (e.g.
``eta`` with a sampler it does not affect) are left out of the grid.
"""
from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from gensweep.platform.spec.space import Categorical, Integer, SearchSpace
from gensweep.trainables.families import FAMILIES
from gensweep.trainables.sampling import GRID_FIELD, sampling_fields


def split_space(space: SearchSpace, family: str) -> tuple[SearchSpace, SearchSpace]:
    """``(training, sampling)``: the space's parameters on ordinary fields and on sampling-time ones."""
    sampling = set(sampling_fields(FAMILIES.get(family).config))
    train = {k: p for k, p in space.params.items() if k not in sampling}
    samp = {k: p for k, p in space.params.items() if k in sampling}
    return SearchSpace.model_construct(params=train), SearchSpace.model_construct(params=samp)


def check_sampling_space(space: SearchSpace, family: str) -> None:
    """Sampling-time parameters are listed levels, unconditional, and no condition names one."""
    train, samp = split_space(space, family)
    if GRID_FIELD in space.params:
        raise ValueError(f"space.{GRID_FIELD}: set by the platform from the sampling-time parameters of the space")
    for name, p in samp.params.items():
        if not isinstance(p, (Categorical, Integer)):
            raise ValueError(f"space.{name}: a sampling-time parameter is scored at every level on one training, so it"
                             " needs listed levels (a list, or an integer range)")
    for name, p in train.params.items():
        for parent in p.when or {}:
            if parent in samp.params:
                raise ValueError(f"space.{name}.when names {parent!r}, a sampling-time parameter (scored on every"
                                 " trial, not sampled per trial)")


def _expand(samp: SearchSpace, trial: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every combination of sampling-time levels, each parameter where ``trial``'s values (and the
    setting's own) make it active; ``trial`` None: both ways where a condition names a training parameter."""
    cells: list[dict[str, Any]] = [{}]
    for name, p in samp.params.items():
        nxt: list[dict[str, Any]] = []
        for cell in cells:
            on_training = any(k not in samp.params for k in p.when or {})
            if trial is None and on_training:
                nxt.append(cell)
                nxt.extend({**cell, name: level} for level in p.grid())
            elif p.active({**(trial or {}), **cell}):
                nxt.extend({**cell, name: level} for level in p.grid())
            else:
                nxt.append(cell)
        cells = nxt
    return cells


def possible_settings(space: SearchSpace, family: str) -> list[dict[str, Any]]:
    """Every setting any trial's grid may hold (what the results callback tags rows with)."""
    samp = split_space(space, family)[1]
    return _expand(samp, None) if samp.params else []


def sampling_grid(space: SearchSpace, family: str, trial: dict[str, Any]) -> list[dict[str, Any]]:
    """The settings one trial scores: combinations of the sampling-time levels active with the
    trial's values ``trial`` (its fixed and sampled settings) that the family's config accepts."""
    _, samp = split_space(space, family)
    if not samp.params:
        return []
    model = FAMILIES.get(family).config
    defaults = {k: v for k, v in trial.items() if k not in samp.params}
    keep = []
    for setting in _expand(samp, defaults):
        try:
            model.model_validate({**defaults, **setting}, context={"rules": False})
        except ValidationError:
            continue
        keep.append(setting)
    if not keep:
        raise ValueError(f"space: no combination of {', '.join(samp.params)} is a valid setting with this trial's values")
    return keep


def check_some_setting(space: SearchSpace, family: str, defaults: dict[str, Any]) -> None:
    """Some setting of the sampling-time parameters is valid with the fixed settings ``defaults``."""
    model = FAMILIES.get(family).config
    settings = possible_settings(space, family)
    for setting in settings:
        try:
            model.model_validate({**defaults, **setting}, context={"rules": False})
            return
        except ValidationError:
            continue
    if settings:
        names = ", ".join(split_space(space, family)[1].params)
        raise ValueError(f"space: no combination of {names} is a valid setting of family {family!r}")
