"""Search spaces as data: typed parameters with conditions, turned into Optuna or a grid.

A parameter exists only when its parent choices select it: ``when: {reg: [r1, gp]}`` makes
``reg_weight`` appear only for those regularizers. For Optuna this becomes a define-by-run
space (``OptunaSearch(space=callable)``); for factorial ablations, a full grid.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gensweep.platform.spec.yaml_load import shorten

MAX_CHOICES = 1000  # levels of one categorical parameter
MAX_CHECKED_LEVELS = 64  # an int range with more levels is checked at its ends and next to them, not level by level


class _Param(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    when: dict[str, list[Any]] | None = Field(
        None, description="exists only when every named parent parameter takes one of the listed values"
    )

    def active(self, chosen: dict[str, Any]) -> bool:
        return all(k in chosen and chosen[k] in v for k, v in (self.when or {}).items())


class Categorical(_Param):
    type: Literal["categorical"] = "categorical"
    choices: list[Any] = Field(min_length=1, max_length=MAX_CHOICES)

    @field_validator("choices")
    @classmethod
    def _distinct(cls, choices: list[Any]) -> list[Any]:
        return distinct_choices(choices)

    def suggest(self, trial, name: str) -> Any:
        return trial.suggest_categorical(name, self.choices)

    def grid(self) -> list[Any]:
        return list(self.choices)

    def level_count(self) -> int:
        return len(self.choices)

    def checked_levels(self) -> list[Any]:
        return list(self.choices)


class Uniform(_Param):
    type: Literal["uniform", "loguniform"]
    low: float
    high: float

    @model_validator(mode="after")
    def _range(self):
        return check_float_range(self)

    def suggest(self, trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=self.type == "loguniform")

    def grid(self) -> list[Any]:
        raise ValueError(f"a grid needs categorical parameters; {self.type} has no finite levels")

    def level_count(self) -> float:
        return math.inf

    def checked_levels(self) -> list[Any]:
        return [self.low, self.high]


class Integer(_Param):
    type: Literal["int"]
    low: int
    high: int
    step: int = Field(1, ge=1)
    log: bool = False

    @model_validator(mode="after")
    def _range(self):
        return check_int_range(self)

    def suggest(self, trial, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, step=self.step, log=self.log)

    def grid(self) -> list[Any]:
        return list(range(self.low, self.high + 1, self.step))

    def level_count(self) -> int:
        """Levels of the range, by arithmetic (a range is never expanded to count it)."""
        return (self.high - self.low) // self.step + 1

    def checked_levels(self) -> list[Any]:
        """Levels a spec checks against the family: all of a short range; of a long one, the two at each
        end (trials validate their own sampled value)."""
        n = self.level_count()
        if n <= MAX_CHECKED_LEVELS:
            return self.grid()
        return [self.low, self.low + self.step, self.low + (n - 2) * self.step, self.low + (n - 1) * self.step]

    def holds(self, value: Any) -> bool:
        """Whether ``value`` is one of the range's levels (by arithmetic)."""
        return (isinstance(value, int) and not isinstance(value, bool) and self.low <= value <= self.high
                and (value - self.low) % self.step == 0)


Param = Annotated[Union[Categorical, Uniform, Integer], Field(discriminator="type")]


class SearchSpace(BaseModel):
    """Ordered parameters; a condition may only name parameters defined before it."""

    model_config = ConfigDict(extra="forbid")
    params: dict[str, Param] = Field(default_factory=dict)

    @field_validator("params", mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        return expand_shorthand(v)

    @model_validator(mode="after")
    def _conditions_refer_back(self):
        return check_conditions(self)

    def names(self) -> list[str]:
        return list(self.params)

    def define_by_run(self) -> "DefineByRun":
        """An Optuna define-by-run function suggesting only the active parameters."""
        return DefineByRun(self)

    def grid(self) -> list[dict[str, Any]]:
        """Every combination of levels, conditional parameters expanded only where active."""
        cells: list[dict[str, Any]] = [{}]
        for name, p in self.params.items():
            nxt: list[dict[str, Any]] = []
            for cell in cells:
                if p.active(cell):
                    nxt.extend({**cell, name: level} for level in p.grid())
                else:
                    nxt.append(cell)
            cells = nxt
        return cells

    def size(self) -> float:
        """Cells of the grid (inf with a continuous parameter), counted without expanding it."""
        return float(self.grid_size(math.inf))

    def grid_size(self, limit: float) -> float:
        """Cells of the grid, or a number above ``limit`` as soon as the count passes it; counted by
        arithmetic over the parameters that conditions name, not by expanding the grid."""
        parents = {parent for p in self.params.values() for parent in (p.when or {})}
        # parent values chosen so far (keyed by their reprs) -> (those values, cells sharing them)
        states: dict[tuple, tuple[dict[str, Any], float]] = {(): ({}, 1.0)}
        for name, p in self.params.items():
            count = p.level_count()
            nxt: dict[tuple, tuple[dict[str, Any], float]] = {}

            def add(key: tuple, chosen: dict[str, Any], cells: float) -> None:
                nxt[key] = (chosen, nxt.get(key, (chosen, 0.0))[1] + cells)

            for key, (chosen, cells) in states.items():
                if not p.active(chosen):
                    add(key, chosen, cells)
                elif name not in parents or count > limit:  # past the limit already: parents need not split
                    add(key, chosen, cells * count)
                else:
                    for level in p.grid():
                        add(key + ((name, repr(level)),), {**chosen, name: level}, cells)
                if len(nxt) > limit:  # every state is at least one cell
                    return limit + 1
            states = nxt
        return sum(cells for _, cells in states.values())

    def choices_of(self, name: str) -> list[Any]:
        p = self.params[name]
        return p.grid() if not isinstance(p, Uniform) else [p.low, p.high]


class DefineByRun:
    """Picklable define-by-run space (Tune checkpoints the searcher, function and all)."""

    def __init__(self, space: SearchSpace):
        self.space = space

    def __call__(self, trial) -> None:
        chosen: dict[str, Any] = {}
        for name, p in self.space.params.items():
            if p.active(chosen):
                chosen[name] = p.suggest(trial, name)
        return None


# The validators above delegate to these plain functions (mutmut can mutate them, not decorated methods).
def distinct_choices(choices: list[Any]) -> list[Any]:
    """Each choice once (``1`` and ``True`` are different choices)."""
    seen: list[Any] = []
    for c in choices:
        if any(c == s and type(c) is type(s) for s in seen):
            raise ValueError(f"{shorten(c)} is listed twice; each choice once")
        seen.append(c)
    return choices


def check_float_range(p: "Uniform") -> "Uniform":
    if not p.low < p.high:
        raise ValueError(f"low ({p.low}) must be < high ({p.high})")
    if p.type == "loguniform" and p.low <= 0:
        raise ValueError(f"loguniform needs low > 0, got {p.low}")
    return p


def check_int_range(p: "Integer") -> "Integer":
    if not p.low <= p.high:
        raise ValueError(f"low ({p.low}) must be <= high ({p.high})")
    return p


def expand_shorthand(v: Any) -> Any:
    """A bare list is shorthand for a categorical parameter."""
    if isinstance(v, dict):
        return {k: ({"type": "categorical", "choices": p} if isinstance(p, list) else p) for k, p in v.items()}
    return v


def check_conditions(space: "SearchSpace") -> "SearchSpace":
    """A condition names only parameters defined before it, and values they can take."""
    seen: list[str] = []
    for name, p in space.params.items():
        for parent, values in (p.when or {}).items():
            if parent not in seen:
                raise ValueError(
                    f"params.{name}.when names {parent!r}, which is not a parameter defined before it"
                    f" (defined so far: {seen or 'none'})"
                )
            parent_p = space.params[parent]
            if isinstance(parent_p, Categorical):
                bad = [x for x in values if x not in parent_p.choices]
                if bad:
                    raise ValueError(f"params.{name}.when.{parent} lists {shorten(bad)}, not among {parent}'s"
                                     f" choices {shorten(parent_p.choices, 200)}")
            elif isinstance(parent_p, Integer):
                bad = [x for x in values if not parent_p.holds(x)]
                if bad:
                    raise ValueError(f"params.{name}.when.{parent} lists {shorten(bad)}, not levels of {parent}'s"
                                     f" range {parent_p.low}..{parent_p.high} (step {parent_p.step})")
            else:
                raise ValueError(f"params.{name}.when.{parent}: {parent} is {parent_p.type}, a continuous"
                                 " parameter; a condition needs a categorical or int parent")
        seen.append(name)
    return space


SEED_KEY = "seed"  # the replicate axis: a trial's parameters carry its seed under this name


def with_replicates(cells: list[dict[str, Any]], seeds: list[int]) -> list[dict[str, Any]]:
    """Seeds as a replicate axis: every cell (or sampled config) once per seed, seeds innermost."""
    return [{**cell, SEED_KEY: s} for cell, s in itertools.product(cells, seeds)]


def config_id(params: dict[str, Any]) -> str:
    """The id every replicate of one config shares: its parameters without the seed, hashed
    (key order and the seed do not matter; the ``config/...`` columns hold the values)."""
    body = json.dumps({k: v for k, v in params.items() if k != SEED_KEY}, sort_keys=True, default=str)
    return "cfg-" + hashlib.sha1(body.encode()).hexdigest()[:10]
