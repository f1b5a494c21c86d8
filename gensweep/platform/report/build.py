"""Assemble the ablation report of one experiment: analyses, figures, HTML."""
from __future__ import annotations

import datetime as _dt
import os
from typing import Any

import numpy as np
import pandas as pd

from gensweep.platform.results import ResultsStore

from . import html as H
from . import plots, stats
from .data import ReportData, load_report_data, sample_grids

SECTIONS = ("leaderboard", "fid-curves", "factor-effects", "importance", "interaction", "pareto", "samples")


def _resolve(store: ResultsStore, experiment: str) -> str:
    from gensweep.platform.report.text import resolve_experiment

    return resolve_experiment(store, experiment)


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
    **storage: Any,
) -> str:
    """The ablation report of ``experiment`` (an id, or a spec name meaning its latest
    run) in the results store at ``uri``, as a self-contained HTML page.

    ``n_boot``/``seed``: bootstrap resamples and generator seed of the confidence
    intervals (and the importance evaluator's seed); ``top``: how many of the best
    trials' sample grids to show; ``workers``: workers per trial for the cost axis
    when the trials table has no cpu_hours/gpu_hours (default: the spec's).
    ``storage``: backend options of :meth:`ResultsStore.open` (also used to read
    sample grids).  Raises ``KeyError`` for an unknown experiment.
    """
    store = uri if isinstance(uri, ResultsStore) else ResultsStore.open(uri, **storage)
    name = _resolve(store, experiment)
    data = load_report_data(store, name, metric=metric, mode=mode, workers=workers)
    label = plots.metric_name(metric)
    sections = [
        ("leaderboard", "Leaderboard", _leaderboard(data)),
        ("fid-curves", f"{label} over training", _curves(data)),
        ("factor-effects", "Per-factor effects", _effects(data, n_boot, seed)),
    ]
    importance = stats.param_importances(data.per_trial, data.factors, data.best_col, mode=mode, seed=seed)
    sections += [
        ("importance", "Parameter importance", _importance(importance)),
        ("interaction", "Two-factor interaction", _interaction(data, importance)),
        ("pareto", f"Pareto front: best {label} vs cost", _pareto(data)),
        ("samples", f"Sample grids of the best {top} trials", _samples(data, top, storage)),
    ]
    n_scored = len(data.scored())
    statuses = data.per_trial["status"].value_counts().to_dict() if not data.per_trial.empty else {}
    header = (
        f'<p class="meta">Experiment <b>{H.esc(name)}</b> &middot; results store {H.esc(store.uri)} &middot; '
        f"{len(data.per_trial)} trials ({H.esc(', '.join(f'{k}: {v}' for k, v in sorted(statuses.items())))}), "
        f"{n_scored} with a {H.esc(metric)} &middot; metric: {H.esc(metric)} ({H.esc(mode)}imize) &middot; "
        f"searched factors: {H.esc(', '.join(data.factors) or 'none')} &middot; generated "
        f"{_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} by gensweep report</p>"
    )
    return H.page(f"Ablation report: {name}", header, sections)


def write_report(uri: str | ResultsStore, experiment: str, output: str, **options: Any) -> str:
    """Build the report and write it to the local file ``output``; returns the path."""
    text = build_report(uri, experiment, **options)
    folder = os.path.dirname(os.path.abspath(output))
    os.makedirs(folder, exist_ok=True)
    tmp = f"{output}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, output)
    return output


# ------------------------------------------------------------------ sections
def _leaderboard(data: ReportData) -> str:
    if data.per_trial.empty:
        return H.note("No trial of this experiment is in the results store.")
    pt = data.per_trial
    cols = ["rank", "trial", "status", f"best {data.metric}", "best step", "last step", "cost (h)",
            *data.factors, *(["seed"] if "seed" in pt.columns else []), "reason"]
    reasons = data.board["reason"] if "reason" in data.board.columns else [None] * len(pt)
    rows = []
    for i, reason in enumerate(reasons):
        rec = pt.iloc[i]
        rank = i + 1 if np.isfinite(rec[data.best_col]) else ""
        rows.append([rank, rec["trial_id"], rec["status"], rec[data.best_col], rec["best_step"], rec["last_step"],
                     rec["cost_hours"], *(rec[f] for f in data.factors),
                     *([rec["seed"]] if "seed" in pt.columns else []), reason])
    numeric = [True, False, False, True, True, True, True,
               *(_is_numeric_column(pt[f]) for f in data.factors),
               *([True] if "seed" in pt.columns else []), False]
    return (H.table(cols, rows, table_id="leaderboard-table", numeric=numeric)
            + H.method(f"Best {data.metric} = the {'lowest' if data.mode == 'min' else 'highest'} value a trial "
                       f"reported during training; cost: {data.cost_label}."))


def _is_numeric_column(column: pd.Series) -> bool:
    values = column.dropna()
    return not values.empty and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _curves(data: ReportData) -> str:
    m = data.metrics
    if m.empty or data.metric not in m.columns or not pd.to_numeric(m[data.metric], errors="coerce").notna().any():
        return H.note(f"No {data.metric} was reported by any trial.")
    ranked = data.scored()["trial_id"].astype(str).tolist()
    png = plots.fid_curves(m, data.metric, ranked)
    return H.img("plot-fid-curves", png, f"{data.metric} over training per trial",
                 caption="Every trial's evaluations; the best three trials in colour.")


def _effects(data: ReportData, n_boot: int, seed: int) -> str:
    if not data.factors:
        return H.note("No searched factor: no config/<param> column takes two or more values in this experiment.")
    if data.scored().empty:
        return H.note(f"No trial reported a {data.metric}.")
    out = [H.method(
        f"For each level of a factor, every trial run at that level (the other factors and the seeds pooled) gives "
        f"one value: its best {data.metric} over training. Shown: the mean of those values with a 95% percentile "
        f"bootstrap confidence interval ({n_boot} resamples of the level's trials with replacement; the resampling "
        f"unit is the trial, i.e. one seed of one configuration; numpy generator seeded with {seed}), and the best "
        f"trial of the level. Numeric factors with more than {stats.MAX_LEVELS} distinct values are cut into "
        f"{stats.N_BINS} quantile ranges.")]
    cards = []
    for i, factor in enumerate(data.factors):
        eff = stats.factor_effects(data.per_trial, factor, data.best_col, mode=data.mode, n_boot=n_boot, seed=seed)
        head = f"<h3>{H.esc(factor)}</h3>"
        if eff.empty:
            cards.append(head + H.note(f"No trial with a {data.metric} has a value for {factor}."))
            continue
        cards.append(head + H.table(
            ["level", "trials", f"mean best {data.metric}", "95% CI low", "95% CI high", f"best {data.metric}"],
            eff[["level", "n", "mean", "ci_low", "ci_high", "best"]].itertuples(index=False),
            table_id=f"effect-table-{i}", numeric=[False, True, True, True, True, True])
            + H.img(f"plot-effect-{i}", plots.factor_effect(eff, factor, data.metric),
                    f"effect of {factor} on best {data.metric}"))
    return "".join(out) + H.row(*cards)


def _importance(imp: stats.Importance) -> str:
    text = H.method(
        f"Importance of each searched factor for the trials' best value, from {imp.evaluator} "
        f"via optuna.importance.get_param_importances (normalized to sum to 1), on an in-memory Optuna study holding "
        f"one completed trial per trial of this experiment ({imp.n_trials} scored trials). Distributions are "
        f"inferred from the config columns: categorical for strings and bools, int for ints, float for floats "
        f"(log scale when positive and spanning more than a decade).")
    if imp.values is None:
        return H.note(imp.note or "Parameter importance is not available.") + text
    rows = [[k, v] for k, v in imp.values.items()]
    return ((H.note(imp.note) if imp.note else "") + H.row(H.img("plot-importance", plots.importance_bars(imp.values, imp.evaluator), "parameter importance"),
                  H.table(["factor", "importance"], rows, table_id="importance-table", numeric=[False, True]))
            + text)


def _interaction(data: ReportData, imp: stats.Importance) -> str:
    if len(data.factors) < 2:
        return H.note(f"An interaction heatmap needs two searched factors; this experiment has {len(data.factors)}.")
    if data.scored().empty:
        return H.note(f"No trial reported a {data.metric}.")
    if imp.values:
        f1, f2 = list(imp.values)[:2]
        why = "the two most important factors"
    else:
        f1, f2 = data.factors[:2]
        why = "the first two searched factors (importance was not available)"
    means, counts = stats.interaction_table(data.per_trial, f1, f2, data.best_col)
    if not np.isfinite(means.to_numpy(dtype=float)).any():
        return H.note(f"No trial with a {data.metric} has values for both {f1} and {f2}.")
    rows = [[idx, *(means.loc[idx, c] for c in means.columns)] for idx in means.index]
    return (H.row(H.img("plot-interaction", plots.interaction_heatmap(means, counts, data.metric, data.mode),
                        f"interaction of {f1} and {f2}"),
                  H.table([f"{f1} \\ {f2}", *map(str, means.columns)], rows, table_id="interaction-table",
                          numeric=[False, *([True] * len(means.columns))]))
            + H.method(f"Cells: mean best {data.metric} of the trials at each pair of levels of {why}; "
                       f"n = trials per cell."))


def _pareto(data: ReportData) -> str:
    pt = data.scored()
    pt = pt[np.isfinite(pd.to_numeric(pt["cost_hours"], errors="coerce"))]
    if pt.empty:
        return H.note(f"No trial has both a {data.metric} and a cost ({data.cost_label}).")
    costs = pt["cost_hours"].to_numpy(dtype=float)
    values = pt[data.best_col].to_numpy(dtype=float)
    front = stats.pareto_front(costs, values, data.mode)
    ids = pt["trial_id"].astype(str).tolist()
    order = np.argsort(costs[front], kind="stable")
    rows = [[np.asarray(ids)[front][k], costs[front][k], values[front][k]] for k in order]
    return (H.row(H.img("plot-pareto", plots.pareto(costs, values, front, ids, data.cost_label, data.metric,
                                                     data.mode),
                        f"best {data.metric} vs cost", caption=f"x axis: {data.cost_label}"),
                  H.table(["trial", "cost (h)", f"best {data.metric}"], rows, table_id="pareto-table",
                          numeric=[False, True, True]))
            + H.method(f"A trial is on the front when no other trial is both cheaper (or as cheap) and better "
                       f"(or as good). {data.cost_note[0].upper() + data.cost_note[1:]}."))


def _samples(data: ReportData, top: int, storage: dict[str, Any]) -> str:
    grids = sample_grids(data, top=top, **storage)
    if not grids:
        return H.note(f"No trial reported a {data.metric}.")
    figs = []
    for rank, g in enumerate(grids, start=1):
        title = f"#{rank} {g.trial_id}: best {data.metric} {g.best:.4g}"
        if g.data is None:
            figs.append(f"<figure><b>{H.esc(title)}</b>{H.note(g.error or 'no image')}</figure>")
            continue
        figs.append(H.img(f"sample-grid-{rank}", g.data, f"samples of trial {g.trial_id}", g.mime or "image/png",
                          caption=f"{title} (grid from step {g.step})", css_class="sample-grid"))
    return f'<div class="grids">{"".join(figs)}</div>'
