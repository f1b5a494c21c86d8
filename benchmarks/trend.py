"""Least-squares trends for benchmark tables: the line a + b*x through measured points, its R^2,
and a one-word reading of it (flat, linear, not linear)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class Trend:
    a: float  # intercept, in the unit of y
    b: float  # slope, unit of y per unit of x
    r2: float  # coefficient of determination over every point (1.0 when y has no spread and the line hits it)
    r2_means: float  # the same line against the mean y of each level: its shape, without the spread within levels
    n: int  # points fitted
    levels: int  # distinct x values among them

    def to_dict(self) -> dict:
        return asdict(self)


def fit_line(xs: Sequence[float], ys: Sequence[float]) -> Trend:
    """Ordinary least squares of ``y = a + b * x`` over every (x, y) pair (repeated x allowed)."""
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"xs and ys must be two flat sequences of one length, got shapes {x.shape} and {y.shape}")
    levels = int(np.unique(x).size)
    if levels < 2:
        raise ValueError(f"a line needs at least two distinct x values, got {levels}")
    dx = x - x.mean()
    b = float(dx @ (y - y.mean()) / (dx @ dx))
    a = float(y.mean() - b * x.mean())
    level_x = np.unique(x)
    level_y = np.array([y[x == v].mean() for v in level_x])
    return Trend(a=a, b=b, r2=_r2(y, a + b * x), r2_means=_r2(level_y, a + b * level_x), n=int(x.size),
                 levels=levels)


def _r2(y: np.ndarray, predicted: np.ndarray) -> float:
    residual = float(((y - predicted) ** 2).sum())
    spread = float(((y - y.mean()) ** 2).sum())
    return 1.0 - residual / spread if spread > 0 else 1.0


def reading(trend: Trend, xs: Sequence[float], ys: Sequence[float], *, flat_within: float = 0.1,
            linear_r2: float = 0.9) -> str:
    """How y grows with x, in words.

    ``flat``: the fitted change over the measured x range is under ``flat_within`` of mean |y|
    (R^2 then says nothing: there is no trend to explain). With two levels a line fits exactly
    whatever the shape, so only the slope is reported. Otherwise ``linear`` when the line's R^2
    against the level means reaches ``linear_r2`` (scatter within a level is noise, not curvature),
    else ``not linear``."""
    span = trend.b * (max(xs) - min(xs))
    if abs(span) < flat_within * float(np.mean(np.abs(ys))):
        return "flat"
    if trend.levels < 3:
        return "two levels: slope only"
    return "linear" if trend.r2_means >= linear_r2 else "not linear"
