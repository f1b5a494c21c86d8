"""Report sections about factors: per-factor effects at equal budget, search-space coverage,
parameter importance and the two-factor interaction."""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import html as H
from . import plots, stats
from .analysis import Analysis
from .labels import short_label

NOT_ESTIMABLE = f"not estimable (n < {stats.MIN_N})"
FEW_TRIALS = 5  # a level with fewer trials than this gets a caveat under its factor's effect


def few_trials_caveat(eff: pd.DataFrame, factor: str) -> str:
    """A warning naming the levels of ``factor`` that rest on fewer than ``FEW_TRIALS`` trials
    (empty when none does)."""
    few = eff[eff["n"] < FEW_TRIALS]
    if few.empty:
        return ""
    levels = ", ".join(f"{short_label(lv)} (n={n})" for lv, n in zip(few["level"], few["n"]))
    return H.note(f"Caveat: {len(few)} of {len(eff)} levels of {factor} rest on fewer than {FEW_TRIALS} trials: "
                  f"{levels}. Read their means as hints; more trials (or seeds) at these levels would firm "
                  f"them up.")


def effects(a: Analysis) -> str:
    d = a.data
    if not d.factors:
        return H.note("No searched factor: no config/<param> column takes two or more values in this experiment.")
    compared = a.compared()
    if compared.empty:
        return H.note(f"No trial reported a {d.metric}.")
    label = a.value_label()
    numeric = [f for f in d.factors if a.kinds[f] == stats.NUMERIC]
    out = [H.method(a.budget.description(d.metric)), H.method(
        f"For each level of a factor, every compared trial run at that level (the other factors and the seeds pooled) "
        f"gives one value: its {label}. Shown: n, the number of such trials, the mean of their values with a 95% "
        f"percentile bootstrap confidence interval ({a.n_boot} resamples of the level's trials with replacement; the "
        f"resampling unit is the trial, i.e. one seed of one configuration; numpy generator seeded with {a.seed}), "
        f"and the best trial of the level. A level with fewer than {stats.MIN_N} trials gets no interval. "
        + (f"Numeric factors ({', '.join(numeric)}) are analysed as numbers: each trial is plotted against the "
           f"factor's value and the table cuts the values into quantile ranges of at least {stats.MIN_N} trials "
           f"(at most {stats.N_BINS}). " if numeric else "")
        + "A numeric factor counts as a set of levels when the spec's space makes it categorical (or a short int "
          "range), or, without a spec, when it has few values each run by two or more trials.")]
    cards = []
    for i, factor in enumerate(d.factors):
        kind = a.kinds[factor]
        eff = stats.factor_effects(compared, factor, a.value_col, mode=d.mode, n_boot=a.n_boot, seed=a.seed,
                                   kind=kind)
        head = f"<h3>{H.esc(factor)}{' (numeric)' if kind == stats.NUMERIC else ''}</h3>"
        if eff.empty:
            cards.append(head + H.note(f"No compared trial has a value for {factor}."))
            continue
        rows = [[r.level, r.n, r.mean, r.ci_low if r.estimable else NOT_ESTIMABLE,
                 r.ci_high if r.estimable else NOT_ESTIMABLE, r.best] for r in eff.itertuples(index=False)]
        cards.append(head + few_trials_caveat(eff, factor) + H.table(
            ["level", "trials", f"mean {label}", "95% CI low", "95% CI high", label], rows,
            table_id=f"effect-table-{i}", numeric=[False, True, True, True, True, True])
            + H.img(f"plot-effect-{i}", _effect_plot(a, eff, factor, compared), f"effect of {factor} on {label}"))
    return "".join(out) + H.row(*cards)


def _effect_plot(a: Analysis, eff: pd.DataFrame, factor: str, compared: pd.DataFrame) -> bytes:
    y_label = a.axis(compared=True)
    if a.kinds[factor] != stats.NUMERIC:
        return plots.factor_effect(eff, factor, y_label)
    rows = compared[compared[factor].notna()]
    labels, _ = stats.level_labels(rows[factor].tolist(), kind=stats.NUMERIC)
    x = pd.to_numeric(rows[factor], errors="coerce").to_numpy(dtype=float)
    points = pd.DataFrame({"x": x, "y": rows[a.value_col].to_numpy(dtype=float), "level": labels})
    param = a.coverage.params.get(factor)
    log_x = (getattr(param, "type", None) == "loguniform" or bool(getattr(param, "log", False))) if param is not None \
        else bool(x.size and x.min() > 0 and x.max() / x.min() > 10.0)
    return plots.factor_effect(eff, factor, y_label, points=points, log_x=log_x)


def coverage(a: Analysis) -> str:
    cov = a.coverage
    if not cov.rows:
        return H.note(cov.note or "The saved spec has no search space.")
    unsampled = [r[0] for r in cov.rows if r[3]]
    summary = (f"Never sampled: levels of {', '.join(unsampled)} (listed below)." if unsampled
               else "Every level of every categorical and int parameter was run by at least one trial.")
    return (H.note(summary) if unsampled else H.method(summary)) + H.table(
        ["parameter", "space", "sampled", "never sampled"], cov.rows, table_id="coverage-table") + H.method(
        "From the search space of the spec saved with the experiment; a level no trial ran has no estimate in the "
        "effects above, which is not evidence that it does badly.")


def importance(a: Analysis) -> str:
    imp = a.importance
    used = (f"all {imp.n_used} scored trials" if imp.n_used == imp.n_trials
            else f"a seeded random subsample of {imp.n_used} of the {imp.n_trials} scored trials (numpy generator "
                 f"seeded with {a.seed}; the cap keeps the report's cost linear in the number of trials)")
    text = H.method(
        f"Importance of each searched factor for the trials' {a.value_label()}, from {imp.evaluator} via "
        f"optuna.importance.get_param_importances (normalized to sum to 1), on an in-memory Optuna study holding "
        f"one completed trial per trial used: {used}. Distributions are inferred from the config columns: "
        f"categorical for strings and bools, int for ints, float for floats (log scale when positive and spanning "
        f"more than a decade).")
    if imp.values is None:
        return H.note(imp.note or "Parameter importance is not available.") + text
    rows = [[k, v] for k, v in imp.values.items()]
    return ((H.note(imp.note) if imp.note else "")
            + H.row(H.img("plot-importance", plots.importance_bars(imp.values, imp.evaluator), "parameter importance"),
                    H.table(["factor", "importance"], rows, table_id="importance-table", numeric=[False, True]))
            + text)


def interaction(a: Analysis) -> str:
    d, imp = a.data, a.importance
    if len(d.factors) < 2:
        return H.note(f"An interaction heatmap needs two searched factors; this experiment has {len(d.factors)}.")
    compared = a.compared()
    if compared.empty:
        return H.note(f"No trial reported a {d.metric}.")
    if imp.values:
        f1, f2 = list(imp.values)[:2]
        why = "the two most important factors"
    else:
        f1, f2 = d.factors[:2]
        why = "the first two searched factors (importance was not available)"
    means, counts = stats.interaction_table(compared, f1, f2, a.value_col, kinds=(a.kinds.get(f1), a.kinds.get(f2)))
    if not np.isfinite(means.to_numpy(dtype=float)).any():
        return H.note(f"No compared trial has values for both {f1} and {f2}.")
    rows = [[idx, *(means.loc[idx, c] for c in means.columns)] for idx in means.index]
    filled = counts.to_numpy()[np.isfinite(means.to_numpy(dtype=float))]
    thin = int((filled < FEW_TRIALS).sum())
    caveat = (H.note(f"Caveat: {thin} of {filled.size} cells rest on fewer than {FEW_TRIALS} trials (fewest: "
                     f"{int(filled.min())}); their means are hints, not findings.") if thin else "")
    return caveat + (H.row(H.img("plot-interaction", plots.interaction_heatmap(means, counts, a.axis(compared=True), d.mode),
                        f"interaction of {f1} and {f2}"),
                  H.table([f"{f1} \\ {f2}", *map(str, means.columns)], rows, table_id="interaction-table",
                          numeric=[False, *([True] * len(means.columns))]))
            + H.method(f"Cells: mean {a.value_label()} of the trials at each pair of levels of {why} "
                       f"(numeric factors in quantile ranges); n = trials per cell."))
