"""Terminal output: the leaderboard at the end of a sweep and of ``gensweep results show``."""
from __future__ import annotations

from typing import Any

import pandas as pd

from gensweep.platform.results import ResultsStore, format_table, leaderboard
from gensweep.platform.results.query import BOARD_METRICS, BOARD_TRIALS, training_rows

CONFIG_PREFIX = "config/"


def _config_summary(row: pd.Series) -> str:
    parts = []
    for col, value in row.items():
        if not str(col).startswith(CONFIG_PREFIX) or value is None or (isinstance(value, float) and pd.isna(value)):
            continue
        key = str(col)[len(CONFIG_PREFIX):]
        parts.append(f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value}")
    return " ".join(parts)


def board_table(store: ResultsStore | str, experiment: str, metric: str = "fid", mode: str = "min") -> pd.DataFrame:
    """trial, config, best metric, steps, status, sample grid: what a person reads at the end
    (each table read once, only the columns shown)."""
    store = store if isinstance(store, ResultsStore) else ResultsStore.open(store)
    metrics = store.read("metrics", experiment, columns=[*BOARD_METRICS, metric, "sample_grid", "backbone"])
    trials = store.read("trials", experiment, columns=list(BOARD_TRIALS))
    board = leaderboard(store, experiment, metric=metric, mode=mode, metrics=metrics, trials=trials)
    if board.empty:
        return board
    metrics = training_rows(metrics).sort_values(["trial_id", "step"], kind="stable")
    grids: dict[str, Any] = {}
    if "sample_grid" in metrics.columns:
        last = metrics.dropna(subset=["sample_grid"]).groupby("trial_id")["sample_grid"].last()
        grids = last.to_dict()
    backbone = {}
    if "backbone" in metrics.columns:
        backbone = metrics.dropna(subset=["backbone"]).groupby("trial_id")["backbone"].last().to_dict()
    return pd.DataFrame(
        {
            "trial": board["trial_id"],
            "config": board.apply(_config_summary, axis=1),
            f"best {metric}": board[f"best_{metric}"],
            "backbone": board["trial_id"].map(backbone),
            "steps": board["last_step"],
            "status": board["status"],
            "sample grid": board["trial_id"].map(grids),
        }
    )


def board_lines(table: pd.DataFrame) -> list[str]:
    """The leaderboard as text lines, then each trial's sample grid path whole (a table cell would cut it)."""
    if table.empty:
        return ["  (no trial reported)"]
    lines = [format_table(table.drop(columns=["sample grid"])), "", "Sample grids (last evaluation of each trial):"]
    lines += [f"  {trial}  {'' if pd.isna(path) else path}" for trial, path in zip(table["trial"], table["sample grid"])]
    return lines


def print_outcome(outcome) -> None:
    table = board_table(outcome.results_root, outcome.experiment)
    print()
    print(f"Leaderboard of {outcome.experiment} ({outcome.wall_time_s:.0f} s wall):")
    print("\n".join(board_lines(table)))
    print(f"\nResults store: {outcome.results_root}   (gensweep results --root {outcome.results_root} show {outcome.experiment})")


def resolve_experiment(store: ResultsStore, name: str) -> str:
    """An experiment id, or a spec name meaning its latest run."""
    names = store.experiments()
    if name in names:
        return name
    runs = sorted(n for n in names if n.startswith(name + "-") and n[len(name) + 1 :][:1].isdigit())
    if not runs:
        raise KeyError(f"no experiment {name!r} in the store; known: {', '.join(names) or 'none'}")
    return runs[-1]
