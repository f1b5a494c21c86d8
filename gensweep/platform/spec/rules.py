"""Rules across a spec's sections, and the bounds of a spec's size, checked before Ray starts.

Each check takes the validated spec (typed ``Any``: the spec module imports this one) and raises
``ValueError`` naming the field; the spec's model validators call them.
"""
from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import Field

from gensweep.platform.metrics.protocol import METRICS
from gensweep.platform.spec.objectives import reported_metrics

SEED_MAX = 2**63 - 1  # torch.manual_seed and numpy take it; room is left for no wider seed
Seed = Annotated[int, Field(ge=0, le=SEED_MAX, description="a non-negative seed of at most 63 bits")]

MAX_GRID_TRIALS = 10_000  # grid cells x replicate seeds
MAX_MESSAGE_LINES = 20
MAX_LINE_CHARS = 400

# trainable settings the data section decides (its images have this size and these channels)
DATA_IMPLIES = ("resolution", "channels")


def check_seed(field: str, value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= SEED_MAX:
        raise ValueError(f"{field}: a seed is a non-negative integer of at most 63 bits (<= {SEED_MAX});"
                         f" got one of {value.bit_length()} bits" if value > 0 else f"{field}: a seed is non-negative")


def check_consistency(spec: Any) -> Any:
    """Sections that must agree: the searched metric is evaluated, replicate seeds are distinct,
    the trainable does not contradict the data it is fed."""
    columns = [c for name in spec.eval.metrics for c in METRICS.get(name).columns]
    others = [m for m in reported_metrics(spec) if m not in columns and m not in spec.eval.metrics]
    if not spec.search.metrics and spec.search.metric not in columns + others:  # several: check_objectives
        raise ValueError(f"search.metric: {spec.search.metric!r} is not computed by eval.metrics {spec.eval.metrics}"
                         f" (their columns: {', '.join(columns)}) nor reported by every trial ({', '.join(others)});"
                         " add its metric to eval.metrics")
    seeds = spec.search.seeds or []
    if len(set(seeds)) != len(seeds):
        twice = sorted({s for s in seeds if seeds.count(s) > 1})[:5]
        raise ValueError(f"search.seeds: {twice} listed more than once; each replicate seed once")
    check_seed("trainable.seed", spec.trainable.get("seed"))
    for key in DATA_IMPLIES:
        implied = getattr(spec.data, key)
        if key in spec.trainable and spec.trainable[key] != implied:
            raise ValueError(f"trainable.{key}: {spec.trainable[key]!r} contradicts data.{key} {implied}"
                             f" (the images are prepared at data.{key}); set it in data: only")
        if key in spec.space.params:
            raise ValueError(f"space.{key}: data.{key} ({implied}) decides it for every trial; it cannot be searched")
    return spec


def check_grid_size(spec: Any) -> None:
    """A grid's trials (cells x seeds), counted by arithmetic before any cell is built."""
    seeds = len(spec.replicate_seeds())
    limit = MAX_GRID_TRIALS // seeds
    cells = spec.space.grid_size(limit)
    if math.isinf(cells):  # a continuous parameter is active in some cell
        kind = next(p.type for p in spec.space.params.values() if math.isinf(p.level_count()))
        raise ValueError(f"a grid needs categorical parameters; {kind} has no finite levels")
    if cells > limit:
        raise ValueError(f"the grid has more than {limit} cells x {seeds} seed(s), over the limit of"
                         f" {MAX_GRID_TRIALS} trials; narrow the space, or sample it with optuna-tpe or random")


def bounded_lines(lines: list[str]) -> list[str]:
    """Error lines cut to a readable length and count (a huge value never fills the terminal)."""
    cut = [line if len(line) <= MAX_LINE_CHARS else line[: MAX_LINE_CHARS - 3] + "..." for line in lines]
    if len(cut) > MAX_MESSAGE_LINES:
        cut = cut[:MAX_MESSAGE_LINES] + [f"... and {len(cut) - MAX_MESSAGE_LINES} more"]
    return cut


def check_ladder(rungs: list[Any], full: int | None) -> list[Any]:
    """Rungs ascend in step and in samples, all below the full ``num_samples`` (None: not checked)."""
    for i in range(1, len(rungs)):
        prev, rung = rungs[i - 1], rungs[i]
        if rung.until_step <= prev.until_step:
            raise ValueError(f"rung {i}: until_step {rung.until_step} must be greater than rung {i - 1}'s"
                             f" {prev.until_step} (rungs ascend in step)")
        if rung.num_samples <= prev.num_samples:
            raise ValueError(f"rung {i}: num_samples {rung.num_samples} must be greater than rung {i - 1}'s"
                             f" {prev.num_samples} (later evaluations use more samples)")
    for i, rung in enumerate(rungs):
        if full is not None and rung.num_samples >= full:
            raise ValueError(f"rung {i}: num_samples {rung.num_samples} must be below eval.num_samples {full}"
                             " (the full N, used after the last rung)")
    return rungs
