"""Report figures as PNG bytes (matplotlib's Agg canvas; no pyplot, no display needed).

``FORMAT = "svg"`` makes them SVG with text kept as text (tests/test_report_browser.py measures
the tick labels of the report's figures in a browser that way)."""
from __future__ import annotations

import io
from typing import Sequence

import numpy as np
import pandas as pd

from .curves import Curves
from .labels import metric_name, short_label, short_number

DPI = 100
FORMAT = "png"  # or "svg"
MAX_ANNOTATED = 12  # Pareto points named on the plot (the table lists them all)


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buf, format=FORMAT, dpi=DPI, bbox_inches="tight", facecolor="white")
    return buf.getvalue()


def _palette():
    import matplotlib

    return matplotlib.colormaps["tab10"]


def _bands(ax, bands: pd.DataFrame, color, label: str, wide: bool = True) -> None:
    steps = bands["step"].to_numpy(dtype=float)
    if wide:
        ax.fill_between(steps, bands["q10"], bands["q90"], color=color, alpha=0.12, lw=0)
    ax.fill_between(steps, bands["q25"], bands["q75"], color=color, alpha=0.25, lw=0)
    ax.plot(steps, bands["median"], color=color, lw=2.0, label=label)


def _floor(ax, floor: tuple[float, float] | None) -> None:
    if floor is not None:
        ax.axhline(floor[1], color="black", ls="--", lw=1.0,
                   label=f"real-vs-real floor {short_number(floor[1], 3)}" if floor[0] == floor[1]
                   else f"real-vs-real floor {short_number(floor[0], 3)}-{short_number(floor[1], 3)}")


def fid_curves(c: Curves, metric: str, y_label: str, floor: tuple[float, float] | None = None,
               level_order: Sequence[str] | None = None) -> bytes:
    """Median and 25-75 % / 10-90 % bands of ``metric`` per step over all trials, the best
    trials of ``c.top`` as lines and the real-vs-real ``floor``; beside it, when ``c`` is
    split by a factor, the median and 25-75 % band per level."""
    split = c.by_level is not None
    fig = _figure(13 if split else 9, 4.8)
    ax = fig.add_subplot(1, 2 if split else 1, 1)
    palette = _palette()
    _bands(ax, c.bands, "0.45", f"median of {c.n_trials} trials (bands: 25-75 %, 10-90 %)")
    for rank, (tid, rows) in enumerate(c.top.items()):
        ax.plot(rows["step"], rows["value"], marker="o", ms=3, lw=1.4, color=palette(rank % 10),
                label=f"#{rank + 1} {tid}", zorder=3)
    _floor(ax, floor)
    ax.set_title(f"{metric_name(metric)} over training")
    axes = [ax]
    if split:
        ax2 = fig.add_subplot(1, 2, 2, sharey=ax)
        present = list(dict.fromkeys(c.by_level["level"]))
        order = [lv for lv in (level_order or present) if lv in present]
        for i, level in enumerate(order):
            rows = c.by_level[c.by_level["level"] == level]
            _bands(ax2, rows, palette(i % 10), f"{c.factor}={short_label(level)} (n={int(rows['n'].max())})",
                   wide=False)
        _floor(ax2, floor)
        ax2.set_title(f"median per level of {c.factor} (band: 25-75 %)")
        axes.append(ax2)
    for a in axes:
        a.set_xlabel("step")
        a.set_ylabel(y_label)
        a.grid(alpha=0.3)
        a.legend(fontsize=7, loc="best")
    return _png(fig)


def factor_effect(effects: pd.DataFrame, factor: str, y_label: str, points: pd.DataFrame | None = None,
                  log_x: bool = False) -> bytes:
    """Mean value per level with its bootstrap CI (error bars; a hollow marker where the
    level has too few trials for an interval) and the level's best (x).  ``points``
    (``x``, ``y`` per trial) makes it a numeric factor's plot: every trial as a dot
    against the factor's value, the bins' means at their median value."""
    if points is not None:
        return _numeric_effect(effects, factor, y_label, points, log_x)
    fig = _figure(min(14.0, max(4.0, 1.1 * len(effects) + 2)), 3.4)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(effects))
    _effect_marks(ax, x, effects)
    ax.set_xticks(x)
    ax.set_xticklabels([f"{short_label(lv)}\n(n={n})" for lv, n in zip(effects["level"], effects["n"])], fontsize=8)
    ax.set_xlim(-0.6, len(effects) - 0.4)
    _effect_axes(ax, factor, y_label)
    return _png(fig)


def _effect_marks(ax, x: np.ndarray, effects: pd.DataFrame) -> None:
    mean = effects["mean"].to_numpy(dtype=float)
    ok = effects["estimable"].to_numpy(dtype=bool)
    err = np.vstack([mean - effects["ci_low"].to_numpy(dtype=float), effects["ci_high"].to_numpy(dtype=float) - mean])
    if ok.any():
        ax.errorbar(x[ok], mean[ok], yerr=err[:, ok], fmt="o", color="tab:blue", capsize=6, lw=2,
                    label="mean, 95% bootstrap CI", zorder=2)
    if (~ok).any():
        ax.scatter(x[~ok], mean[~ok], facecolors="none", edgecolors="tab:blue", s=45, zorder=2,
                   label="mean (n < 3: no CI)")
    ax.scatter(x, effects["best"].to_numpy(dtype=float), marker="x", color="tab:red", s=50, zorder=3,
               label="best trial")


def _effect_axes(ax, factor: str, y_label: str) -> None:
    ax.set_xlabel(factor)
    ax.set_ylabel(y_label)
    ax.set_title(f"effect of {factor}")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7, loc="best")


def _numeric_effect(effects: pd.DataFrame, factor: str, y_label: str, points: pd.DataFrame, log_x: bool) -> bytes:
    from matplotlib.ticker import FuncFormatter

    fig = _figure(6.5, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    x, y = points["x"].to_numpy(dtype=float), points["y"].to_numpy(dtype=float)
    ax.scatter(x, y, s=8 if len(x) > 500 else 16, color="0.55", alpha=0.35 if len(x) > 500 else 0.7, lw=0,
               label=f"trial ({len(x)})", rasterized=True)
    centres = np.array([np.median(x[points["level"].to_numpy() == lv]) for lv in effects["level"]])
    _effect_marks(ax, centres, effects)
    if log_x:
        ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: short_number(v, sci=log_x)))
    _effect_axes(ax, factor, y_label)
    return _png(fig)


def importance_bars(importances: dict[str, float], evaluator: str) -> bytes:
    names = list(importances)[::-1]
    fig = _figure(7, min(14.0, 0.45 * len(names) + 1.4))
    ax = fig.add_subplot(1, 1, 1)
    ax.barh(names, [importances[n] for n in names], color="tab:green")
    for i, n in enumerate(names):
        ax.text(importances[n], i, f" {importances[n]:.2f}", va="center", fontsize=8)
    ax.set_xlim(0, max(1.0, max(importances.values()) * 1.15))
    ax.set_xlabel("importance (normalized)")
    ax.set_title(f"parameter importance: {evaluator.split(' (')[0]}")
    return _png(fig)


def interaction_heatmap(means: pd.DataFrame, counts: pd.DataFrame, metric: str, mode: str) -> bytes:
    """Mean value per cell of two factors' levels (short numeric labels), with n per cell."""
    fig = _figure(min(14.0, max(4.5, 1.2 * means.shape[1] + 2.5)), min(12.0, max(3.2, 0.8 * means.shape[0] + 1.8)))
    ax = fig.add_subplot(1, 1, 1)
    data = np.ma.masked_invalid(means.to_numpy(dtype=float))
    im = ax.imshow(data, cmap="viridis_r" if mode == "min" else "viridis", aspect="auto")
    fig.colorbar(im, ax=ax, label=f"mean {metric} ({'lower' if mode == 'min' else 'higher'} is better)")
    ax.set_xticks(range(means.shape[1]))
    ax.set_xticklabels([short_label(c) for c in means.columns], fontsize=8)
    ax.set_yticks(range(means.shape[0]))
    ax.set_yticklabels([short_label(r) for r in means.index], fontsize=8)
    ax.set_xlabel(str(means.columns.name))
    ax.set_ylabel(str(means.index.name))
    finite = data.compressed()
    mid = float(np.mean([finite.min(), finite.max()])) if finite.size else 0.0
    for i in range(means.shape[0]):
        for j in range(means.shape[1]):
            v = means.iat[i, j]
            if np.isfinite(v):
                dark = (v > mid) if mode == "min" else (v < mid)
                ax.text(j, i, f"{v:.3g}\nn={counts.iat[i, j]}", ha="center", va="center", fontsize=8,
                        color="white" if dark else "black")
    ax.set_title(f"{means.index.name} x {means.columns.name}")
    return _png(fig)


def pareto(costs: Sequence[float], values: Sequence[float], front: Sequence[bool], labels: Sequence[str],
           cost_label: str, y_label: str, mode: str) -> bytes:
    """Every trial as a faint dot (small and translucent when there are many), the front as
    a red staircase with its points named (the cheapest ``MAX_ANNOTATED``)."""
    c = np.asarray(costs, dtype=float)
    v = np.asarray(values, dtype=float)
    f = np.asarray(front, dtype=bool)
    fig = _figure(8, 4.6)
    ax = fig.add_subplot(1, 1, 1)
    many = c.size > 300
    ax.scatter(c[~f], v[~f], color="0.6", s=6 if many else 24, alpha=0.25 if many else 0.7, lw=0,
               label=f"other trials ({int((~f).sum())})", rasterized=True, zorder=1)
    order = np.argsort(c[f], kind="stable")
    fc, fv = c[f][order], v[f][order]
    ax.step(fc, fv, where="post", color="tab:red", lw=1.8, zorder=3)
    ax.scatter(fc, fv, color="tab:red", edgecolors="white", s=55, zorder=4, label=f"Pareto front ({int(f.sum())})")
    for x, y, name in list(zip(fc, fv, np.asarray(labels, dtype=object)[f][order]))[:MAX_ANNOTATED]:
        ax.annotate(str(name), (x, y), textcoords="offset points", xytext=(5, 5), fontsize=7, zorder=5)
    ax.set_xlabel(cost_label)
    ax.set_ylabel(f"{y_label} ({'lower' if mode == 'min' else 'higher'} is better)")
    ax.set_title("best value vs cost")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _png(fig)
