"""Read-side helpers: metrics, leaderboards, experiment lists, export, text tables."""
from __future__ import annotations

import io
import math
import os
from typing import Any, Iterable, Sequence

import pandas as pd

from .backends import backend_for_uri
from .schema import CONFIG_PREFIX, REEVAL, SAMPLING, SAMPLING_ROW, TABLES
from .status import TrialStatus
from .store import ResultsStore
from .summary import best_column, summarize

_INTERNAL = ("row_key", "written_at")


def _store(uri: str | ResultsStore, storage: dict[str, Any]) -> ResultsStore:
    return uri if isinstance(uri, ResultsStore) else ResultsStore.open(uri, **storage)


def training_rows(metrics: pd.DataFrame) -> pd.DataFrame:
    """The metrics rows the training loops reported (re-evaluations of checkpoints and the rows of
    single sampling-time settings left out: a report's own row holds the setting it chose)."""
    for flag in (REEVAL, SAMPLING_ROW):
        if flag in metrics.columns:
            metrics = metrics[~metrics[flag].eq(True)]
    return metrics


def sampling_rows(metrics: pd.DataFrame) -> pd.DataFrame:
    """The rows of single sampling-time settings (one per trial, step and setting; ``sampling`` tags them)."""
    if SAMPLING_ROW not in metrics.columns:
        return metrics.iloc[0:0]
    return metrics[metrics[SAMPLING_ROW].eq(True)]


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


# What a leaderboard reads of the metrics and trials tables (Parquet column projection).
BOARD_METRICS = ("trial_id", "step", "time_total_s", REEVAL, SAMPLING_ROW, SAMPLING, CONFIG_PREFIX + "*")
BOARD_TRIALS = ("trial_id", "status", "reason", "wall_time_s", CONFIG_PREFIX + "*")


def leaderboard(
    uri: str | ResultsStore,
    experiment: str,
    metric: str = "fid",
    mode: str = "min",
    *,
    metrics: pd.DataFrame | None = None,
    trials: pd.DataFrame | None = None,
    **storage: Any,
) -> pd.DataFrame:
    """One row per trial, best first.

    Columns: ``trial_id``, ``status`` (from the trials table; ``running`` when a
    trial has metrics but no trials row), ``best_<metric>``, ``best_step``,
    ``last_step``, ``n_reports``, ``wall_time_s``, ``reason`` and the trial's
    ``config/...`` columns.  Trials that never reported ``metric`` come last.
    ``metrics`` / ``trials``: the experiment's rows when the caller has read them already
    (with at least :data:`BOARD_METRICS` + ``metric`` / :data:`BOARD_TRIALS`).
    """
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', not {mode!r}")
    if metrics is None or trials is None:
        store = _store(uri, storage)
        if metrics is None:
            metrics = store.read("metrics", experiment, columns=[*BOARD_METRICS, metric])
        if trials is None:
            trials = store.read("trials", experiment, columns=list(BOARD_TRIALS))
    metrics = training_rows(metrics)
    best_col = f"best_{metric}"
    records: dict[str, dict[str, Any]] = {}
    config_cols: list[str] = []
    if not metrics.empty:
        config_cols = _config_columns(metrics)
        records = _metric_records(metrics, metric, mode, best_col, config_cols)
    if not trials.empty:
        trial_cfg = _config_columns(trials)
        config_cols += [c for c in trial_cfg if c not in config_cols]
        has_reason, has_wall = "reason" in trials.columns, "wall_time_s" in trials.columns
        for row in trials.to_dict("records"):
            rec = records.setdefault(
                str(row["trial_id"]),
                {"trial_id": row["trial_id"], best_col: math.nan, "best_step": None,
                 "last_step": None, "n_reports": 0},
            )
            rec["status"] = row.get("status")
            rec["reason"] = row.get("reason") if has_reason else None
            wall = row.get("wall_time_s") if has_wall else None
            if wall is not None and not pd.isna(wall):
                rec["wall_time_s"] = wall
            for col in trial_cfg:
                if is_missing(rec.get(col)):
                    rec[col] = row[col]

    columns = ["trial_id", "status", best_col, "best_step", "last_step", "n_reports",
               "wall_time_s", "reason", *config_cols]
    board = pd.DataFrame(list(records.values()), columns=columns)
    if board.empty:
        return board
    board["status"] = board["status"].where(board["status"].notna(), TrialStatus.RUNNING.value)
    board = board.sort_values(
        [best_col, "trial_id"], ascending=[mode == "min", True], na_position="last", kind="stable"
    ).reset_index(drop=True)
    return board


def _metric_records(
    metrics: pd.DataFrame, metric: str, mode: str, best_col: str, config_cols: list[str]
) -> dict[str, dict[str, Any]]:
    """Per trial of ``metrics``: last step, report count, best value and its step, the longest
    ``time_total_s`` and the config of its last report (whole-frame operations, no loop per trial)."""
    metrics = metrics.sort_values(["trial_id", "step"], kind="stable").reset_index(drop=True)
    by_trial = metrics.groupby("trial_id", sort=False)
    out = pd.DataFrame({"last_step": by_trial["step"].max(), "n_reports": by_trial.size()})
    out[best_col] = math.nan
    out["best_step"] = None
    if metric in metrics.columns:
        values = pd.to_numeric(metrics[metric], errors="coerce")
        scored = values.dropna()
        if not scored.empty:
            pick = scored.groupby(metrics.loc[scored.index, "trial_id"], sort=False)
            pos = pick.idxmin() if mode == "min" else pick.idxmax()
            out.loc[pos.index, best_col] = values[pos.to_numpy()].to_numpy(dtype=float)
            out.loc[pos.index, "best_step"] = pd.Series(metrics.loc[pos.to_numpy(), "step"].to_numpy(),
                                                        index=pos.index, dtype=object)
    if "time_total_s" in metrics.columns:
        out["wall_time_s"] = pd.to_numeric(metrics["time_total_s"], errors="coerce").groupby(
            metrics["trial_id"], sort=False).max()
    last = metrics.drop_duplicates("trial_id", keep="last").set_index("trial_id")
    for col in config_cols:
        out[col] = last[col]
    records = {}
    for trial_id, rec in zip(out.index, out.to_dict("records")):
        rec["trial_id"] = trial_id
        if "wall_time_s" in rec and pd.isna(rec["wall_time_s"]):
            del rec["wall_time_s"]
        records[str(trial_id)] = rec
    return records


# What listing experiments reads of the experiments table.
SUMMARY_COLUMNS = ("experiment", "started_at", "status", "n_trials")


def list_experiments(uri: str | ResultsStore, metric: str = "fid", **storage: Any) -> pd.DataFrame:
    """One row per experiment: ``experiment``, ``n_trials``, ``best_<metric>`` (min),
    ``started_at``, ``status``.

    Reads the experiments table alone (the summary row a sweep keeps current); only an
    experiment without a summary (a store written before summaries, or by hand) has its
    trials and metrics read, for their ids and ``metric`` column alone.
    """
    store = _store(uri, storage)
    best = best_column(metric)
    summaries = store.read("experiments", columns=[*SUMMARY_COLUMNS, best])
    by_name = {str(r["experiment"]): r for r in summaries.to_dict("records")} if not summaries.empty else {}
    rows = []
    for name in store.experiments():
        row = by_name.get(name, {})
        started, status = row.get("started_at"), row.get("status")
        if is_missing(row.get("n_trials")) or best not in row:
            summary = summarize(store, name, [metric])
        else:
            summary = {"n_trials": int(row["n_trials"]), best: row[best]}
        if is_missing(started):
            started = _first_seen(store, name)
        best_value = summary[best]
        rows.append({"experiment": name, "n_trials": summary["n_trials"],
                     best: math.nan if is_missing(best_value) else float(best_value),
                     "started_at": started, "status": status})
    return pd.DataFrame(rows, columns=["experiment", "n_trials", best, "started_at", "status"])


def _first_seen(store: ResultsStore, experiment: str) -> pd.Timestamp | None:
    """Earliest report time, else earliest write time, of an experiment."""
    metrics = store.read("metrics", experiment, columns=["reported_at", "written_at"])
    if "reported_at" in metrics.columns and metrics["reported_at"].notna().any():
        return metrics["reported_at"].min()
    trials = store.read("trials", experiment, columns=["written_at"])
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
