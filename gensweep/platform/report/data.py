"""The frames an ablation report is built from, read once from the results store.

One row per trial (``ReportData.per_trial``): its best value of the metric over
training, its searched factors, its replicate seed and its compute cost.  The
searched factors are the trial's ``config/<param>`` columns that take at least two
values in the experiment; a parameter named ``seed`` is the replicate axis of a
grid sweep, not a factor.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from gensweep.platform.results import ResultsStore, backend_for_uri, leaderboard
from gensweep.platform.results.query import BOARD_METRICS, BOARD_TRIALS, training_rows
from gensweep.platform.results.schema import CONFIG_PREFIX

SEED_NAMES = ("seed",)
# What a report reads of the metrics and trials tables besides what its leaderboard needs
# (Parquet column projection): ``ReportData.metrics`` holds these, ``BOARD_METRICS`` and the metric.
# what the report reads beside the leaderboard's columns: the sample grids, the evaluation protocol
# named on the metric axis (backbone, N), the replicate group (config_id) and, per metric, its
# real-vs-real floor (``<metric>_floor``, see report/labels.py)
REPORT_METRICS = ("sample_grid", "class_grid", "backbone", "eval_n", "config_id")
REPORT_TRIALS = ("seed", "gpu_hours", "cpu_hours", "last_step", "started_at", "ended_at")
# Images bigger than this are not embedded (the page would become unwieldy).
MAX_IMAGE_BYTES = 8 * 1024 * 1024


@dataclass
class SampleGrid:
    trial_id: str
    best: float
    step: Any
    uri: str | None
    data: bytes | None = None
    mime: str | None = None
    error: str | None = None
    classes: "SampleGrid | None" = None  # the per-class grid of the same step (conditional models)


@dataclass
class ReportData:
    experiment: str
    metric: str
    mode: str
    metrics: pd.DataFrame
    trials: pd.DataFrame
    board: pd.DataFrame
    per_trial: pd.DataFrame
    factors: list[str]
    cost_label: str
    cost_note: str
    spec: dict[str, Any] = field(default_factory=dict)
    lineage: pd.DataFrame = field(default_factory=pd.DataFrame)  # PBT exploits (the store's lineage table)

    @property
    def best_col(self) -> str:
        return f"best_{self.metric}"

    def scored(self) -> pd.DataFrame:
        """Trials with a finite best metric value."""
        values = pd.to_numeric(self.per_trial[self.best_col], errors="coerce").astype(float)
        return self.per_trial[np.isfinite(values.to_numpy())]


def short_name(column: str) -> str:
    return column[len(CONFIG_PREFIX):] if column.startswith(CONFIG_PREFIX) else column


def is_seed(name: str) -> bool:
    return name in SEED_NAMES or name.rsplit("/", 1)[-1] in SEED_NAMES


def native(value: Any) -> Any:
    """numpy scalars -> Python scalars; NaN/NA -> None."""
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError):
            pass
    return value


def searched_factors(board: pd.DataFrame) -> list[str]:
    """``config/`` columns (short names) with >= 2 distinct values, seeds excluded."""
    out = []
    for col in board.columns:
        if not str(col).startswith(CONFIG_PREFIX):
            continue
        name = short_name(str(col))
        if is_seed(name):
            continue
        values = {repr(native(v)) for v in board[col] if native(v) is not None}
        if len(values) >= 2:
            out.append(name)
    return out


def _spec_of(experiments: pd.DataFrame) -> dict[str, Any]:
    if experiments.empty or "spec" not in experiments.columns:
        return {}
    for text in reversed(experiments["spec"].tolist()):
        if not isinstance(text, str) or not text.strip():
            continue
        try:
            import yaml

            spec = yaml.safe_load(text)
        except Exception:  # noqa: BLE001 - a spec we cannot parse just gives no defaults
            try:
                spec = json.loads(text)
            except ValueError:
                continue
        if isinstance(spec, dict):
            return spec
    return {}


def searched_objectives(spec: dict[str, Any]) -> list[tuple[str, str]]:
    """``(name, mode)`` of a multi-objective search's objectives (``search.metrics``); [] otherwise."""
    listed = ((spec.get("search") or {}).get("metrics") or []) if isinstance(spec, dict) else []
    return [(str(o["name"]), str(o.get("mode", "min"))) for o in listed if isinstance(o, dict) and "name" in o]


def _positive_any(df: pd.DataFrame, col: str) -> bool:
    return col in df.columns and bool((pd.to_numeric(df[col], errors="coerce") > 0).any())


def trial_cost(
    trials: pd.DataFrame, board: pd.DataFrame, spec: dict[str, Any], workers: int | None = None
) -> tuple[pd.Series, str, str]:
    """Compute cost per trial (hours, indexed by trial id), the axis label and a note.

    The trials table's ``gpu_hours`` is used when any is positive, else its
    ``cpu_hours``; otherwise ``wall_time_s`` x workers / 3600, with the workers per
    trial taken from ``workers``, else the spec's ``resources.workers``, else 1.
    """
    for col, label in (("gpu_hours", "GPU-hours"), ("cpu_hours", "CPU-hours")):
        if _positive_any(trials, col):
            hours = pd.to_numeric(trials.set_index("trial_id")[col], errors="coerce")
            hours = hours[~hours.index.duplicated(keep="last")]
            return hours, f"{label} (trials.{col})", f"cost: the trials table's {col} column"
    if workers is None:
        try:
            workers = int((spec.get("resources") or {}).get("workers") or 1)
        except (TypeError, ValueError, AttributeError):
            workers = 1
    wall = pd.to_numeric(board.set_index("trial_id")["wall_time_s"], errors="coerce") if not board.empty \
        else pd.Series(dtype=float)
    hours = wall * workers / 3600.0
    label = f"worker-hours (wall_time_s x {workers} worker{'s' if workers != 1 else ''} / 3600)"
    return hours, label, "cost: no cpu_hours/gpu_hours recorded; wall-clock time x workers per trial"


def load_report_data(
    store: ResultsStore | str,
    experiment: str,
    *,
    metric: str = "fid",
    mode: str = "min",
    workers: int | None = None,
    **storage: Any,
) -> ReportData:
    """Read one experiment's tables (each once, its partition only, only the columns the report
    uses) and derive the per-trial frame."""
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', not {mode!r}")
    store = store if isinstance(store, ResultsStore) else ResultsStore.open(store, **storage)
    experiments = store.read("experiments", experiment, columns=["spec"])
    spec = _spec_of(experiments)
    objectives = [name for name, _ in searched_objectives(spec)]
    metrics = store.read("metrics", experiment, columns=[*BOARD_METRICS, metric, f"{metric}_floor", *REPORT_METRICS,
                                                          *objectives])
    trials = store.read("trials", experiment, columns=[*BOARD_TRIALS, *REPORT_TRIALS])
    board = leaderboard(store, experiment, metric=metric, mode=mode, metrics=metrics, trials=trials)
    metrics = training_rows(metrics)
    if not metrics.empty:
        metrics = metrics.sort_values(["trial_id", "step"], kind="stable").reset_index(drop=True)
    factors = searched_factors(board) if not board.empty else []
    best_col = f"best_{metric}"

    per_trial = pd.DataFrame(
        {
            "trial_id": board["trial_id"].astype(str) if not board.empty else pd.Series(dtype=str),
            "status": board.get("status"),
            best_col: pd.to_numeric(board.get(best_col), errors="coerce"),
            "best_step": board.get("best_step"),
            "last_step": board.get("last_step"),
        }
    )
    for name in factors:
        per_trial[name] = [native(v) for v in board[CONFIG_PREFIX + name]]
    seed_cols = [c for c in board.columns if str(c).startswith(CONFIG_PREFIX) and is_seed(short_name(str(c)))]
    if seed_cols:
        per_trial["seed"] = [native(v) for v in board[seed_cols[0]]]
    elif not trials.empty and "seed" in trials.columns:
        seeds = trials.drop_duplicates("trial_id", keep="last").set_index("trial_id")["seed"]
        per_trial["seed"] = per_trial["trial_id"].map(seeds).map(native)
    if "config_id" in metrics.columns:  # the replicate group: trials of one config, one per seed
        groups = metrics.dropna(subset=["config_id"]).drop_duplicates("trial_id", keep="last")
        per_trial["config_id"] = per_trial["trial_id"].map(
            dict(zip(groups["trial_id"].astype(str), groups["config_id"].astype(str))))
    cost, cost_label, cost_note = trial_cost(trials, board, spec, workers)
    cost.index = cost.index.astype(str)
    per_trial["cost_hours"] = per_trial["trial_id"].map(cost).astype(float)
    return ReportData(
        experiment=experiment,
        metric=metric,
        mode=mode,
        metrics=metrics,
        trials=trials,
        board=board,
        per_trial=per_trial.reset_index(drop=True),
        factors=factors,
        cost_label=cost_label,
        cost_note=cost_note,
        spec=spec,
        lineage=store.read("lineage", experiment),
    )


def image_mime(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def read_image(uri: str, **storage: Any) -> tuple[bytes | None, str | None, str | None]:
    """``(data, mime, error)`` of an image at a local path or store URI."""
    try:
        backend, path = backend_for_uri(uri, **storage)
        data = backend.read_bytes(path, limit=MAX_IMAGE_BYTES + 1)  # never more: a path in the store may be anything
    except Exception as exc:  # noqa: BLE001 - a missing image is reported, not fatal
        return None, None, f"cannot read {uri}: {type(exc).__name__}: {exc}"
    if len(data) > MAX_IMAGE_BYTES:
        return None, None, f"{uri} is over the {MAX_IMAGE_BYTES} byte embedding limit"
    mime = image_mime(data)
    if mime is None:
        return None, None, f"{uri} is not a PNG/JPEG/GIF/WebP image"
    return data, mime, None


def sample_grids(data: ReportData, top: int = 3, **storage: Any) -> list[SampleGrid]:
    """The sample grids of the ``top`` best trials: the grid written at the trial's
    best step when there is one, else its latest grid (with its per-class grid, if any)."""
    scored = data.scored()
    out: list[SampleGrid] = []
    metrics = data.metrics
    has_grids = not metrics.empty and "sample_grid" in metrics.columns
    for _, row in scored.head(top).iterrows():
        tid = str(row["trial_id"])
        grid_uri, step, class_uri = None, None, None
        if has_grids:
            rows = metrics[(metrics["trial_id"].astype(str) == tid) & metrics["sample_grid"].notna()]
            rows = rows[rows["sample_grid"].astype(str) != ""]
            if not rows.empty:
                at_best = rows[rows["step"] == row["best_step"]]
                pick = at_best.iloc[-1] if not at_best.empty else rows.iloc[-1]
                grid_uri, step = str(pick["sample_grid"]), native(pick["step"])
                class_uri = pick.get("class_grid")
        grid = SampleGrid(tid, float(row[data.best_col]), step, grid_uri)
        if grid_uri is None:
            grid.error = "no sample grid recorded"
        else:
            grid.data, grid.mime, grid.error = read_image(grid_uri, **storage)
            if isinstance(class_uri, str) and class_uri:
                grid.classes = SampleGrid(tid, grid.best, step, class_uri)
                grid.classes.data, grid.classes.mime, grid.classes.error = read_image(class_uri, **storage)
        out.append(grid)
    return out
