"""Report sections about trials: leaderboard (top rows, full table as CSV), the metric
over training, the Pareto front and the sample grids of the best trials."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from . import html as H
from . import plots, stats
from .analysis import Analysis, split_factor
from .curves import curves
from gensweep.platform.results.front import final_values, nondominated

from .data import sample_grids, searched_objectives
from .labels import floor_column, floor_text
from .real_data import real_grid

BOARD_ROWS = 50  # leaderboard rows on the page; the CSV holds every trial


def leaderboard_frame(a: Analysis) -> pd.DataFrame:
    """Every trial, best first: the page shows the top rows, the CSV all of them."""
    d = a.data
    pt = d.per_trial
    finite = np.isfinite(pd.to_numeric(pt[d.best_col], errors="coerce").to_numpy(dtype=float))
    rank = np.where(finite, np.cumsum(finite), 0)
    out = pd.DataFrame({"rank": pd.Series(rank, dtype="Int64").where(finite), "trial": pt["trial_id"].astype(str),
                        "status": pt["status"], f"best {d.metric}": pt[d.best_col], "best step": pt["best_step"],
                        "last step": pt["last_step"]})
    if not a.budget.equal_runs and a.budget.step is not None:
        out[a.value_label()] = a.frame[a.value_col].to_numpy()
    out["cost (h)"] = pt["cost_hours"]
    floors = _trial_floors(a)
    if floors is not None:
        out[f"{d.metric} floor"] = pt["trial_id"].astype(str).map(floors).to_numpy()
    for f in d.factors:
        out[f] = pt[f]
    if "seed" in pt.columns:
        out["seed"] = pt["seed"]
    if "config_id" in pt.columns:  # the replicate group (see the "Configurations over seeds" section)
        out["config_id"] = pt["config_id"]
    out["reason"] = d.board["reason"].to_numpy() if "reason" in d.board.columns else None
    return out


def _trial_floors(a: Analysis) -> pd.Series | None:
    """Each trial's real-vs-real floor, when the trials' floors differ (one value goes in the header)."""
    m, col = a.data.metrics, floor_column(a.metric)
    if a.floor is None or a.floor[0] == a.floor[1]:
        return None
    rows = m.dropna(subset=[col])
    return rows.groupby(rows["trial_id"].astype(str))[col].last()


def leaderboard(a: Analysis, board_rows: int = BOARD_ROWS, csv_name: str | None = None) -> str:
    d = a.data
    if d.per_trial.empty:
        return H.note("No trial of this experiment is in the results store.")
    table = leaderboard_frame(a)
    head = table.head(board_rows)
    columns = list(head.columns)
    best = f"best {d.metric}"
    if a.floor is not None and a.floor[0] == a.floor[1]:
        columns[columns.index(best)] = f"{best} (floor {floor_text(a.floor)})"
    numeric = [c in ("rank", best, "best step", "last step", "cost (h)", "seed", a.value_label(),
                     f"{d.metric} floor") or (c in d.factors and a.kinds.get(c) == stats.NUMERIC)
               or (c in d.factors and _is_numeric_column(head[c])) for c in head.columns]
    shown = (f"The best {len(head)} of {len(table)} trials." if len(table) > len(head)
             else f"All {len(table)} trials.")
    link = (f' Every trial: <a href="{H.esc(csv_name)}">{H.esc(csv_name)}</a> (CSV beside this page).'
            if csv_name else "")
    floor = (f" Real-vs-real floor of the reference statistics ({d.metric} of two disjoint halves of the real "
             f"set): {floor_text(a.floor)}; no model can be expected to score below it."
             if a.floor is not None else "")
    return (f'<p class="meta">{H.esc(shown)}{link}</p>'
            + H.table(columns, head.itertuples(index=False), table_id="leaderboard-table", numeric=numeric)
            + H.method(f"Best {d.metric} = the {'lowest' if d.mode == 'min' else 'highest'} value a trial "
                       f"reported during training ({a.protocol or 'protocol not recorded'}); cost: {d.cost_label}."
                       f"{floor}"))


def _is_numeric_column(column: pd.Series) -> bool:
    values = column.dropna()
    return not values.empty and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def training_curves(a: Analysis, top: int = 3) -> str:
    d, m = a.data, a.data.metrics
    if m.empty or d.metric not in m.columns or not pd.to_numeric(m[d.metric], errors="coerce").notna().any():
        return H.note(f"No {d.metric} was reported by any trial.")
    factor, split = split_factor(a)
    levels, order = split if split else (None, None)
    c = curves(m, d.metric, d.scored()["trial_id"].astype(str).tolist(), top=top, levels=levels, factor=factor)
    png = plots.fid_curves(c, d.metric, a.axis(), a.floor, order)
    n = c.bands["n"]
    per_level = f"; right: the median per level of {factor}" if c.by_level is not None else ""
    floor = f"; dashed: the real-vs-real floor {floor_text(a.floor)}" if a.floor is not None else ""
    return H.img("plot-fid-curves", png, f"{d.metric} over training",
                 caption=f"Left: median and 25-75 % / 10-90 % bands over the trials evaluated at each step "
                         f"({int(n.min())} to {int(n.max())} trials per step), the best {len(c.top)} trials as "
                         f"lines{per_level}{floor}. Axis: {a.axis()}.")


def pareto(a: Analysis) -> str:
    d = a.data
    if len(searched_objectives(d.spec)) >= 2:
        return objectives_front(a)
    pt = d.scored()
    pt = pt[np.isfinite(pd.to_numeric(pt["cost_hours"], errors="coerce"))]
    if pt.empty:
        return H.note(f"No trial has both a {d.metric} and a cost ({d.cost_label}).")
    costs = pt["cost_hours"].to_numpy(dtype=float)
    values = pt[d.best_col].to_numpy(dtype=float)
    front = stats.pareto_front(costs, values, d.mode)
    ids = pt["trial_id"].astype(str).to_numpy()
    order = np.argsort(costs[front], kind="stable")
    rows = [[ids[front][k], costs[front][k], values[front][k]] for k in order]
    return (H.row(H.img("plot-pareto", plots.pareto(costs, values, front, ids, d.cost_label, a.axis("best "), d.mode),
                        f"best {d.metric} vs cost", caption=f"x axis: {d.cost_label}"),
                  H.table(["trial", "cost (h)", f"best {d.metric}"], rows, table_id="pareto-table",
                          numeric=[False, True, True]))
            + H.method(f"{int(front.sum())} of {len(pt)} trials are on the front: no other trial is both cheaper "
                       f"(or as cheap) and better (or as good). Each trial's best {d.metric} over training is used "
                       f"here, since the cost axis accounts for how long it ran. "
                       f"{d.cost_note[0].upper() + d.cost_note[1:]}."))


def objectives_front(a: Analysis) -> str:
    """The front of a multi-objective search over its own objectives, valued as the searcher saw them."""
    d = a.data
    objectives = searched_objectives(d.spec)
    names = [n for n, _ in objectives]
    finals = final_values(d.metrics, names).dropna()
    if finals.empty:
        return H.note(f"No trial reported every searched objective ({', '.join(names)}).")
    front = nondominated(finals.to_numpy(), [m for _, m in objectives])
    ids = finals.index.astype(str).to_numpy()
    x, y = finals[names[1]].to_numpy(dtype=float), finals[names[0]].to_numpy(dtype=float)
    order = np.argsort(x[front], kind="stable")
    rows = [[ids[front][k], *finals.to_numpy()[front][k]] for k in order]
    directions = ", ".join(f"{n} ({m})" for n, m in objectives)
    return (H.row(H.img("plot-pareto", plots.pareto(x, y, front, ids, names[1], names[0], objectives[0][1]),
                        f"{names[0]} vs {names[1]}", caption=f"the searched objectives: {directions}"),
                  H.table(["trial", *names], rows, table_id="pareto-table", numeric=[False, *[True] * len(names)]))
            + H.method(f"{int(front.sum())} of {len(finals)} trials are on the front of the searched objectives "
                       f"({directions}): no other trial is at least as good on every one and better on one. Each "
                       "trial is valued by its last report, the values the searcher was told."))


def samples(a: Analysis, top: int, storage: dict[str, Any], root: str = "") -> str:
    """The best trials' sample grids, after a grid of real images from the sweep's dataset."""
    d = a.data
    grids = sample_grids(d, top=top, **storage)
    if not grids:
        return H.note(f"No trial reported a {d.metric}.")
    real, about = real_grid(d.spec, root) if root else (None, "no results root given")
    figs = [H.img("real-data-grid", real, "real images", caption=about, css_class="sample-grid") if real
            else f"<figure><b>real data</b>{H.note(f'No real-data grid: {about}.')}</figure>"]
    for rank, g in enumerate(grids, start=1):
        title = f"#{rank} {g.trial_id}: best {d.metric} {g.best:.4g}"
        if g.data is None:
            figs.append(f"<figure><b>{H.esc(title)}</b>{H.note(g.error or 'no image')}</figure>")
            continue
        figs.append(H.img(f"sample-grid-{rank}", g.data, f"samples of trial {g.trial_id}", g.mime or "image/png",
                          caption=f"{title} (grid from step {g.step})", css_class="sample-grid"))
        c = g.classes
        if c is not None:
            figs.append(H.img(f"class-grid-{rank}", c.data, f"samples of each class, trial {g.trial_id}",
                              c.mime or "image/png", caption=f"#{rank} {g.trial_id}: one row per class (row k: class k)",
                              css_class="sample-grid") if c.data is not None
                        else f"<figure><b>#{rank} per-class grid</b>{H.note(c.error or 'no image')}</figure>")
    return f'<div class="grids">{"".join(figs)}</div>'
