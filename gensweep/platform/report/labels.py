"""Short, readable labels for figures: numbers, bin ranges and the metric axis.

Tables keep exact values (a reader copies them); figures use these shorter forms, so a
log-uniform learning rate reads ``3.2e-4`` on an axis, not ``0.000316227766``.
"""
from __future__ import annotations

import math
from typing import Any

import pandas as pd


def metric_name(metric: str) -> str:
    """``fid`` -> ``FID`` (short metric names are acronyms); others unchanged."""
    return metric.upper() if len(metric) <= 3 and metric.isalpha() else metric


def short_number(value: float, digits: int = 2, sci: bool = False) -> str:
    """At most ``digits`` significant digits; scientific notation without padding for very
    small or large magnitudes: ``1e-4``, ``3.2e-4``, ``0.05``, ``128``, ``2.5e+05`` -> ``2.5e5``.
    ``sci``: scientific for every non-zero value (a log axis reads ``1e-3, 1e-2, 1e-1``)."""
    v = float(value)
    if not math.isfinite(v):
        return str(v)
    if v == int(v) and abs(v) < 1e5 and not (sci and v != 0):
        return str(int(v))
    if v != 0 and (sci or abs(v) < 1e-2 or abs(v) >= 1e5):
        mantissa, exponent = format(v, f".{max(digits - 1, 0)}e").split("e")
        mantissa = mantissa.rstrip("0").rstrip(".") if "." in mantissa else mantissa
        return f"{mantissa}e{int(exponent)}"
    return format(v, f".{digits}g") if abs(v) < 1 else format(v, f".{digits + 1}g")


def short_label(value: Any) -> str:
    """A level as shown on an axis: numbers (also numbers written as text) shortened,
    anything else as text."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        return short_number(value)
    try:
        return short_number(float(str(value)))
    except ValueError:
        return str(value)


def range_label(low: float, high: float) -> str:
    return f"[{short_number(low)}, {short_number(high)}]"


def eval_protocol(metrics: pd.DataFrame, metric: str) -> str:
    """``"mnist-lenet, N=1000"``: the backbone and the number of generated samples the
    metric was computed from (a range when a ladder varied N, several names when
    trials used different backbones); empty when the rows do not say."""
    if metrics.empty or metric not in metrics.columns:
        return ""
    rows = metrics[pd.to_numeric(metrics[metric], errors="coerce").notna()]
    parts = []
    if "backbone" in rows.columns:
        names = sorted({str(b) for b in rows["backbone"].dropna()})
        if names:
            parts.append(" / ".join(names))
    if "eval_n" in rows.columns:
        ns = pd.to_numeric(rows["eval_n"], errors="coerce").dropna()
        if not ns.empty:
            low, high = int(ns.min()), int(ns.max())
            parts.append(f"N={low}" if low == high else f"N={low}-{high}")
    return ", ".join(parts)


def metric_axis(metrics: pd.DataFrame, metric: str, prefix: str = "") -> str:
    """Axis label naming the metric, its backbone and N: ``"best FID (mnist-lenet, N=1000)"``."""
    protocol = eval_protocol(metrics, metric)
    name = f"{prefix}{metric_name(metric)}"
    return f"{name} ({protocol})" if protocol else name


def floor_column(metric: str) -> str:
    """The metrics column holding the real-vs-real floor of ``metric`` (``fid_floor``)."""
    return f"{metric}_floor"


def metric_floor(metrics: pd.DataFrame, metric: str) -> tuple[float, float] | None:
    """``(low, high)`` of the recorded real-vs-real floor of ``metric`` over the rows
    that carry one; None when no row does."""
    col = floor_column(metric)
    if metrics.empty or col not in metrics.columns:
        return None
    values = pd.to_numeric(metrics[col], errors="coerce").dropna()
    if values.empty:
        return None
    return float(values.min()), float(values.max())


def floor_text(floor: tuple[float, float] | None) -> str:
    if floor is None:
        return ""
    low, high = floor
    return format(low, ".3g") if low == high else f"{low:.3g}-{high:.3g}"
