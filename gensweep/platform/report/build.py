"""Assemble the ablation report of one experiment: analyses, figures, HTML (and the full
leaderboard as a CSV beside it)."""
from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from typing import Any

import pandas as pd

from gensweep.platform.results import ResultsStore
from gensweep.platform.storage.local_files import publish_file

from . import effect_sections as E
from . import html as H
from . import replicates as R
from . import sections as S
from .analysis import analyse
from .data import ReportData, load_report_data
from .importance import MAX_TRIALS
from .labels import floor_text, metric_name
from .lineage import lineage

SECTIONS = ("leaderboard", "replicates", "fid-curves", "factor-effects", "coverage", "importance", "interaction", "pareto",
            "samples")


@dataclass
class Rendered:
    html: str
    leaderboard: pd.DataFrame  # every trial, best first (the page shows the top rows)


def _resolve(store: ResultsStore, experiment: str) -> str:
    from gensweep.platform.report.text import resolve_experiment

    return resolve_experiment(store, experiment)


def render_report(
    data: ReportData,
    *,
    store_uri: str = "",
    n_boot: int = 2000,
    seed: int = 0,
    top: int = 3,
    budget: str = "common",
    importance_trials: int = MAX_TRIALS,
    board_rows: int = S.BOARD_ROWS,
    csv_name: str | None = None,
    storage: dict[str, Any] | None = None,
) -> Rendered:
    """The report page of already loaded ``data`` (see :func:`build_report` for the options;
    ``csv_name``: the file the page links for the full leaderboard)."""
    a = analyse(data, n_boot=n_boot, seed=seed, budget=budget, importance_trials=importance_trials)
    label = metric_name(data.metric)
    sections = [
        ("leaderboard", "Leaderboard", S.leaderboard(a, board_rows, csv_name)),
        ("replicates", "Configurations over seeds", R.section(a)),
        ("fid-curves", f"{label} over training", S.training_curves(a, top)),
        ("factor-effects", "Per-factor effects at equal budget", E.effects(a)),
        ("coverage", "Search-space coverage", E.coverage(a)),
        ("importance", "Parameter importance", E.importance(a)),
        ("interaction", "Two-factor interaction", E.interaction(a)),
        ("pareto", f"Pareto front: best {label} vs cost", S.pareto(a)),
        ("samples", f"Sample grids of the best {top} trials", S.samples(a, top, storage or {}, store_uri)),
    ]
    if not data.lineage.empty:  # a PBT sweep: who cloned whom
        sections.append(("lineage", "PBT lineage", lineage(data.lineage)))
    pt, name, metric = data.per_trial, data.experiment, data.metric
    statuses = pt["status"].value_counts().to_dict() if not pt.empty else {}
    floor = f" &middot; real-vs-real floor: {H.esc(floor_text(a.floor))}" if a.floor is not None else ""
    header = (
        f'<p class="meta">Experiment <b>{H.esc(name)}</b> &middot; results store {H.esc(store_uri)} &middot; '
        f"{len(pt)} trials ({H.esc(', '.join(f'{k}: {v}' for k, v in sorted(statuses.items())))}), "
        f"{len(data.scored())} with a {H.esc(metric)} &middot; metric: {H.esc(metric)} ({H.esc(data.mode)}imize"
        f"{', ' + H.esc(a.protocol) if a.protocol else ''}){floor} &middot; "
        f"searched factors: {H.esc(', '.join(data.factors) or 'none')} &middot; compared at equal budget: "
        f"{H.esc(a.value_label())} &middot; generated "
        f"{_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} by gensweep report</p>"
    )
    return Rendered(H.page(f"Ablation report: {name}", header, sections), S.leaderboard_frame(a))


def _render(uri: str | ResultsStore, experiment: str, *, metric: str = "fid", mode: str = "min",
            workers: int | None = None, csv_name: str | None = None, storage: dict[str, Any], **options: Any
            ) -> Rendered:
    store = uri if isinstance(uri, ResultsStore) else ResultsStore.open(uri, **storage)
    name = _resolve(store, experiment)
    data = load_report_data(store, name, metric=metric, mode=mode, workers=workers)
    return render_report(data, store_uri=store.uri, csv_name=csv_name, storage=storage, **options)


def build_report(
    uri: str | ResultsStore,
    experiment: str,
    *,
    metric: str = "fid",
    mode: str = "min",
    n_boot: int = 2000,
    seed: int = 0,
    top: int = 3,
    workers: int | None = None,
    budget: str = "common",
    importance_trials: int = MAX_TRIALS,
    board_rows: int = S.BOARD_ROWS,
    **storage: Any,
) -> str:
    """The ablation report of ``experiment`` (an id, or a spec name meaning its latest
    run) in the results store at ``uri``, as a self-contained HTML page.

    ``n_boot``/``seed``: bootstrap resamples and generator seed of the confidence
    intervals (and the importance evaluator's and subsample's seed); ``top``: how many
    of the best trials' sample grids (and curves) to show; ``workers``: workers per trial
    for the cost axis when the trials table has no cpu_hours/gpu_hours (default: the
    spec's); ``budget``: ``common`` or ``final``, how trials that ran for different
    numbers of steps are compared (:mod:`.budget`); ``importance_trials``: at most this
    many trials enter parameter importance; ``board_rows``: leaderboard rows on the page.
    ``storage``: backend options of :meth:`ResultsStore.open` (also used to read
    sample grids).  Raises ``KeyError`` for an unknown experiment.
    """
    return _render(uri, experiment, metric=metric, mode=mode, workers=workers, storage=storage, n_boot=n_boot,
                   seed=seed, top=top, budget=budget, importance_trials=importance_trials,
                   board_rows=board_rows).html


def leaderboard_csv_path(output: str) -> str:
    """``report.html`` -> ``report-leaderboard.csv`` (beside the page)."""
    return os.path.splitext(output)[0] + "-leaderboard.csv"


def _replace(path: str, text: str) -> None:
    publish_file(path, text.encode("utf-8"), fsync=False)


def write_report(uri: str | ResultsStore, experiment: str, output: str, **options: Any) -> str:
    """Build the report and write it to the local file ``output``, with every trial's
    leaderboard row in :func:`leaderboard_csv_path` beside it; returns the page's path.
    ``options``: those of :func:`build_report` (backend options included)."""
    known = {"metric", "mode", "n_boot", "seed", "top", "workers", "budget", "importance_trials", "board_rows"}
    storage = {k: v for k, v in options.items() if k not in known}
    options = {k: v for k, v in options.items() if k in known}
    csv_path = leaderboard_csv_path(output)
    rendered = _render(uri, experiment, csv_name=os.path.basename(csv_path), storage=storage, **options)
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    _replace(csv_path, rendered.leaderboard.to_csv(index=False))
    _replace(output, rendered.html)
    return output
