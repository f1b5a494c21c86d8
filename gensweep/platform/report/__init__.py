"""Ablation reports of an experiment in the results store: ``gensweep report EXPERIMENT``.

:func:`build_report` returns a self-contained HTML page (PNG figures embedded as
data URIs): leaderboard, the metric over training, per-factor effects with
bootstrap confidence intervals, Optuna parameter importance, a two-factor
interaction heatmap, the Pareto front of best metric vs compute cost and the
sample grids of the best trials.
"""
from .build import SECTIONS, build_report, write_report
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
