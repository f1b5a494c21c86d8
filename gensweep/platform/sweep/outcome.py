"""What a finished sweep (or resume) returns: its leaderboard and how many trials failed or diverged."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from gensweep.platform.spec import ExperimentSpec
from gensweep.platform.sweep.setup import SweepSetup


@dataclass
class SweepOutcome:
    experiment: str
    results_root: str
    wall_time_s: float
    leaderboard: Any  # pandas.DataFrame
    num_errors: int  # trials that failed (diverged trials are results, not errors)
    num_diverged: int = 0


def is_divergence(error: Any) -> bool:
    from gensweep.trainables.errors import Diverged

    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, Diverged):
            return True
        error = getattr(error, "cause", None) or error.__cause__
    return False


def sweep_outcome(spec: ExperimentSpec, setup: SweepSetup, grid: Any, t0: float) -> SweepOutcome:
    from gensweep.platform.results import leaderboard
    from gensweep.platform.results.front import front_board

    diverged = sum(1 for r in grid if r.error is not None and is_divergence(r.error))
    errors = sum(1 for r in grid if r.error is not None) - diverged
    if spec.search.metrics:  # the front of the searched objectives, marked
        board = front_board(setup.root, setup.experiment, spec.search.objectives())
    else:
        board = leaderboard(setup.root, setup.experiment, metric=spec.search.metric, mode=spec.search.mode)
    return SweepOutcome(setup.experiment, setup.root, time.perf_counter() - t0, board, errors, diverged)
