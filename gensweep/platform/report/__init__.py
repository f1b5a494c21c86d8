"""Ablation reports of an experiment in the results store: ``gensweep report EXPERIMENT``.

:func:`build_report` returns a self-contained HTML page (PNG figures embedded as
data URIs), designed for 10 to 10,000 trials: the leaderboard's best rows (every
trial in a CSV beside the page), the metric over training as median and quantile
bands, per-factor effects at equal budget with bootstrap confidence intervals,
search-space coverage, Optuna parameter importance on a bounded subsample, a
two-factor interaction heatmap, the Pareto front of best metric vs compute cost and
the sample grids of the best trials.
"""
from .build import SECTIONS, Rendered, build_report, render_report, write_report
from .data import ReportData, load_report_data, sample_grids
from .stats import (
    Importance,
    bootstrap_ci,
    build_study,
    factor_effects,
    infer_distribution,
    interaction_table,
    param_importances,
    pareto_front,
)

__all__ = [
    "SECTIONS",
    "build_report",
    "write_report",
    "render_report",
    "Rendered",
    "ReportData",
    "load_report_data",
    "sample_grids",
    "Importance",
    "bootstrap_ci",
    "build_study",
    "factor_effects",
    "infer_distribution",
    "interaction_table",
    "param_importances",
    "pareto_front",
]
