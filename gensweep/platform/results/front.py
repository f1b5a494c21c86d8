"""The Pareto front of a multi-objective search, over the values the searcher was told.

Each trial is valued by its last training report (what Tune hands the searcher when the trial
ends), one column per objective; a trial is on the front when no other trial is at least as good
on every objective and better on one. Trials missing an objective are never on it.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from .query import leaderboard, training_rows
from .store import ResultsStore

FRONT = "pareto_front"


def nondominated(values: np.ndarray, modes: Sequence[str]) -> np.ndarray:
    """Mask of the rows of ``values`` (trials x objectives) no other row dominates; NaN rows never."""
    v = np.asarray(values, dtype=float) * np.array([1.0 if m == "min" else -1.0 for m in modes])
    ok = np.isfinite(v).all(axis=1)
    mask = np.zeros(len(v), dtype=bool)
    for i in np.flatnonzero(ok):
        others = v[ok]
        dominated = ((others <= v[i]).all(axis=1) & (others < v[i]).any(axis=1)).any()
        mask[i] = not dominated
    return mask


def final_values(metrics: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """Per trial (index), each objective's value in its last training report."""
    metrics = training_rows(metrics)
    if metrics.empty:
        return pd.DataFrame(columns=list(names), dtype=float)
    last = metrics.sort_values(["trial_id", "step"], kind="stable").drop_duplicates("trial_id", keep="last")
    last = last.set_index(last["trial_id"].astype(str))
    return pd.DataFrame({n: pd.to_numeric(last[n], errors="coerce") if n in last.columns else np.nan for n in names},
                        index=last.index)


def front_board(store: ResultsStore | str, experiment: str, objectives: Sequence[tuple[str, str]],
                **storage: Any) -> pd.DataFrame:
    """The leaderboard (ordered by the primary objective) with ``final_<name>`` per objective and
    ``pareto_front``, True for the trials on the front of the searched objectives."""
    store = store if isinstance(store, ResultsStore) else ResultsStore.open(store, **storage)
    names = [n for n, _ in objectives]
    from .query import BOARD_METRICS

    metrics = store.read("metrics", experiment, columns=[*BOARD_METRICS, *names])
    primary, mode = objectives[0]
    board = leaderboard(store, experiment, metric=primary, mode=mode, metrics=metrics)
    if board.empty:
        return board
    finals = final_values(metrics, names).reindex(board["trial_id"].astype(str))
    for n in names:
        board[f"final_{n}"] = finals[n].to_numpy()
    board[FRONT] = nondominated(finals[names].to_numpy(), [m for _, m in objectives])
    return board
