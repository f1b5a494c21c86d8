"""Read-side helpers: metrics, leaderboards, experiment lists, export, text tables."""
from __future__ import annotations

import io
import math
import os
from typing import Any, Iterable, Sequence

import pandas as pd

from .backends import backend_for_uri
from .schema import CONFIG_PREFIX, REEVAL, TABLES
from .status import TrialStatus
from .store import ResultsStore

_INTERNAL = ("row_key", "written_at")


def _store(uri: str | ResultsStore, storage: dict[str, Any]) -> ResultsStore:
    return uri if isinstance(uri, ResultsStore) else ResultsStore.open(uri, **storage)


def training_rows(metrics: pd.DataFrame) -> pd.DataFrame:
    """The metrics rows the training loops reported (re-evaluations of checkpoints left out)."""
    if REEVAL not in metrics.columns:
        return metrics
    return metrics[~metrics[REEVAL].eq(True)]


def load_metrics(
    uri: str | ResultsStore, experiment: str, *, reevaluations: bool = False, **storage: Any
) -> pd.DataFrame:
    """Metrics rows of ``experiment``, ordered by trial and step; re-evaluation rows
    (``gensweep eval``) only with ``reevaluations=True``."""
    df = _store(uri, storage).read("metrics", experiment)
    if not reevaluations:
        df = training_rows(df)
    if df.empty:
        return df
    return df.sort_values(["trial_id", "step"], kind="stable").reset_index(drop=True)


def is_missing(value: Any) -> bool:
    """None, NaN or NaT (a cell the store left empty)."""
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _config_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if str(c).startswith(CONFIG_PREFIX)]


def leaderboard(
    uri: str | ResultsStore,
    experiment: str,
    metric: str = "fid",
    mode: str = "min",
    **storage: Any,
) -> pd.DataFrame:
    """One row per trial, best first.

    Columns: ``trial_id``, ``status`` (from the trials table; ``running`` when a
    trial has metrics but no trials row), ``best_<metric>``, ``best_step``,
    ``last_step``, ``n_reports``, ``wall_time_s``, ``reason`` and the trial's
    ``config/...`` columns.  Trials that never reported ``metric`` come last.
    """
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', not {mode!r}")
    store = _store(uri, storage)
    metrics = training_rows(store.read("metrics", experiment))
    trials = store.read("trials", experiment)
    best_col = f"best_{metric}"

    records: dict[str, dict[str, Any]] = {}
    config_cols: list[str] = []
    if not metrics.empty:
        config_cols = _config_columns(metrics)
        metrics = metrics.sort_values(["trial_id", "step"], kind="stable")
        for trial_id, group in metrics.groupby("trial_id", sort=False):
            rec: dict[str, Any] = {
                "trial_id": trial_id,
                "last_step": group["step"].max(),
                "n_reports": len(group),
                best_col: math.nan,
                "best_step": None,
            }
            if metric in group.columns:
                values = pd.to_numeric(group[metric], errors="coerce")
                if values.notna().any():
                    pos = values.idxmin() if mode == "min" else values.idxmax()
                    rec[best_col] = float(values[pos])
                    rec["best_step"] = group.loc[pos, "step"]
            if "time_total_s" in group.columns:
                rec["wall_time_s"] = pd.to_numeric(group["time_total_s"], errors="coerce").max()
            last = group.iloc[-1]
            for col in config_cols:
                rec[col] = last[col]
            records[str(trial_id)] = rec

    if not trials.empty:
        trial_cfg = _config_columns(trials)
        config_cols += [c for c in trial_cfg if c not in config_cols]
        for _, row in trials.iterrows():
            rec = records.setdefault(
                str(row["trial_id"]),
                {"trial_id": row["trial_id"], best_col: math.nan, "best_step": None,
                 "last_step": None, "n_reports": 0},
            )
            rec["status"] = row.get("status")
            rec["reason"] = row.get("reason") if "reason" in trials.columns else None
            wall = row.get("wall_time_s") if "wall_time_s" in trials.columns else None
            if wall is not None and not pd.isna(wall):
                rec["wall_time_s"] = wall
            for col in trial_cfg:
                if is_missing(rec.get(col)):
                    rec[col] = row[col]

    columns = ["trial_id", "status", best_col, "best_step", "last_step", "n_reports",
               "wall_time_s", "reason", *config_cols]
    board = pd.DataFrame([records[k] for k in records], columns=columns)
    if board.empty:
        return board
    board["status"] = board["status"].where(board["status"].notna(), TrialStatus.RUNNING.value)
    board = board.sort_values(
        [best_col, "trial_id"], ascending=[mode == "min", True], na_position="last", kind="stable"
    ).reset_index(drop=True)
    return board


def list_experiments(uri: str | ResultsStore, metric: str = "fid", **storage: Any) -> pd.DataFrame:
    """One row per experiment: ``experiment``, ``n_trials``, ``best_<metric>`` (min),
    ``started_at``, ``status``."""
    store = _store(uri, storage)
    rows = []
    experiments = store.read("experiments")
    for name in store.experiments():
        trials = store.read("trials", name)
        metrics = training_rows(store.read("metrics", name))
        ids = set(trials["trial_id"]) if not trials.empty else set()
        if not metrics.empty:
            ids |= set(metrics["trial_id"])
        best = math.nan
        if not metrics.empty and metric in metrics.columns:
            values = pd.to_numeric(metrics[metric], errors="coerce")
            if values.notna().any():
                best = float(values.min())
        started = status = None
        if not experiments.empty:
            match = experiments[experiments["experiment"] == name]
            if not match.empty:
                row = match.iloc[-1]
                started = row.get("started_at") if "started_at" in match.columns else None
                status = row.get("status") if "status" in match.columns else None
        if is_missing(started):
            started = _first_seen(metrics, trials)
        rows.append({"experiment": name, "n_trials": len(ids), f"best_{metric}": best,
                     "started_at": started, "status": status})
    return pd.DataFrame(rows, columns=["experiment", "n_trials", f"best_{metric}", "started_at", "status"])


def _first_seen(metrics: pd.DataFrame, trials: pd.DataFrame) -> pd.Timestamp | None:
    """Earliest report wall time, else earliest write time, of an experiment."""
    if not metrics.empty and "wall_time_s" in metrics.columns:
        first = pd.to_numeric(metrics["wall_time_s"], errors="coerce").min()
        if not pd.isna(first):
            return pd.Timestamp(first, unit="s", tz="UTC")
    stamps = [df["written_at"].min() for df in (metrics, trials)
              if not df.empty and "written_at" in df.columns]
    stamps = [s for s in stamps if not is_missing(s)]
    return min(stamps) if stamps else None


def _encode(df: pd.DataFrame, fmt: str) -> bytes:
    if fmt == "csv":
        return df.to_csv(index=False).encode("utf-8")
    if fmt == "parquet":
        sink = io.BytesIO()
        df.to_parquet(sink, index=False)
        return sink.getvalue()
    raise ValueError(f"export format must be 'csv' or 'parquet', not {fmt!r}")


def export(
    uri: str | ResultsStore,
    experiment: str,
    dest: str,
    fmt: str = "csv",
    tables: str | Iterable[str] | None = None,
    *,
    keep_internal: bool = False,
    **storage: Any,
) -> list[str]:
    """Export an experiment's tables.

    With one table name (``tables="metrics"``) ``dest`` is the output file;
    otherwise ``dest`` is a folder that receives ``<table>.<fmt>`` for each
    non-empty table.  ``dest`` may be a local path or any URI the store
    understands (``s3://...``).  Returns the written locations.
    """
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"export format must be 'csv' or 'parquet', not {fmt!r}")
    store = _store(uri, storage)
    single = isinstance(tables, str)
    names: Sequence[str] = [tables] if single else list(tables or TABLES)
    backend, root = backend_for_uri(os.fspath(dest))
    out = []
    for name in names:
        df = store.read(name, experiment)
        if df.empty and not single:
            continue
        if not keep_internal:
            df = df.drop(columns=[c for c in _INTERNAL if c in df.columns])
        if name == "metrics" and not df.empty:
            df = df.sort_values(["trial_id", "step"], kind="stable")
        path = root if single else backend.join(root, f"{name}.{fmt}")
        store.retry.call(lambda p=path, d=_encode(df, fmt): backend.write_bytes(p, d), what=f"export {path}")
        out.append(backend.uri(path))
    return out


def _cell(value: Any, float_fmt: str, width: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        text = ""
    elif isinstance(value, float):
        text = format(value, float_fmt)
    elif isinstance(value, pd.Timestamp):
        text = value.strftime("%Y-%m-%d %H:%M:%S")
    else:
        text = "" if is_missing(value) else str(value)
    text = text.replace("\n", " ")
    if len(text) > width:
        text = text[: max(1, width - 3)] + "..."
    return text


def format_table(
    df: pd.DataFrame,
    *,
    max_rows: int | None = 50,
    max_col_width: int = 32,
    float_fmt: str = ".4g",
    columns: Sequence[str] | None = None,
) -> str:
    """Render ``df`` as an aligned plain-text table (numbers right-aligned)."""
    if columns is not None:
        df = df[[c for c in columns if c in df.columns]]
    if df.columns.empty:
        return "(no columns)"
    shown = df if max_rows is None else df.head(max_rows)
    headers = [_cell(str(c), float_fmt, max_col_width) for c in df.columns]
    body = [[_cell(v, float_fmt, max_col_width) for v in row] for row in shown.itertuples(index=False)]
    numeric = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
               for c in df.columns]
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric)
        ).rstrip()

    out = [line(headers), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in body]
    if not body:
        out.append("(no rows)")
    if max_rows is not None and len(df) > max_rows:
        out.append(f"... {len(df) - max_rows} more rows")
    return "\n".join(out)
