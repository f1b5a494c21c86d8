"""Report figures as PNG bytes (matplotlib's Agg canvas; no pyplot, no display needed)."""
from __future__ import annotations

import io
from typing import Sequence

import numpy as np
import pandas as pd

DPI = 100


def metric_name(metric: str) -> str:
    """``fid`` -> ``FID`` (short metric names are acronyms); others unchanged."""
    return metric.upper() if len(metric) <= 3 and metric.isalpha() else metric


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    return buf.getvalue()


def fid_curves(metrics: pd.DataFrame, metric: str, ranked: Sequence[str], highlight: int = 3) -> bytes:
    """``metric`` against step, one line per trial; the ``highlight`` best (first in
    ``ranked``) drawn thick and named in the legend."""
    fig = _figure(9, 4.8)
    ax = fig.add_subplot(1, 1, 1)
    order = {t: i for i, t in enumerate(ranked)}
    df = metrics[["trial_id", "step", metric]].copy()
    df[metric] = pd.to_numeric(df[metric], errors="coerce")
    df = df.dropna(subset=[metric])
    trials = sorted(df["trial_id"].astype(str).unique(), key=lambda t: (order.get(t, len(order)), t))
    import matplotlib

    palette = matplotlib.colormaps["tab10"]
    for i, tid in enumerate(reversed(trials)):
        rank = order.get(tid, len(order))
        g = df[df["trial_id"].astype(str) == tid].sort_values("step")
        if rank < highlight:
            ax.plot(g["step"], g[metric], marker="o", ms=3, lw=2.4, color=palette(rank % 10),
                    label=f"#{rank + 1} {tid}", zorder=3)
        else:
            ax.plot(g["step"], g[metric], lw=1.0, color="0.6", alpha=0.7, zorder=1,
                    label="other trials" if i == 0 else None)
    ax.set_xlabel("step")
    ax.set_ylabel(metric_name(metric))
    ax.set_title(f"{metric_name(metric)} over training ({len(trials)} trials)")
    ax.grid(alpha=0.3)
    if trials:
        ax.legend(fontsize=8, loc="best")
    return _png(fig)


def factor_effect(effects: pd.DataFrame, factor: str, metric: str) -> bytes:
    """Mean best value per level with its bootstrap CI (error bars) and the level's best (x)."""
    fig = _figure(min(14.0, max(4.0, 1.1 * len(effects) + 2)), 3.4)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(effects))
    mean = effects["mean"].to_numpy(dtype=float)
    err = np.vstack([mean - effects["ci_low"].to_numpy(dtype=float), effects["ci_high"].to_numpy(dtype=float) - mean])
    ax.errorbar(x, mean, yerr=err, fmt="o", color="tab:blue", capsize=6, lw=2, label="mean, 95% bootstrap CI")
    ax.scatter(x, effects["best"].to_numpy(dtype=float), marker="x", color="tab:red", s=50, zorder=3,
               label="best trial")
    ax.set_xticks(x)
    ax.set_xticklabels([f"{lv}\n(n={n})" for lv, n in zip(effects["level"], effects["n"])], fontsize=8)
    ax.set_xlim(-0.6, len(effects) - 0.4)
    ax.set_xlabel(factor)
    ax.set_ylabel(f"best {metric_name(metric)} per trial")
    ax.set_title(f"effect of {factor}")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7, loc="best")
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
    fig = _figure(min(14.0, max(4.5, 1.2 * means.shape[1] + 2.5)), min(12.0, max(3.2, 0.8 * means.shape[0] + 1.8)))
    ax = fig.add_subplot(1, 1, 1)
    data = np.ma.masked_invalid(means.to_numpy(dtype=float))
    im = ax.imshow(data, cmap="viridis_r" if mode == "min" else "viridis", aspect="auto")
    fig.colorbar(im, ax=ax, label=f"mean best {metric_name(metric)} ({'lower' if mode == 'min' else 'higher'} is better)")
    ax.set_xticks(range(means.shape[1]))
    ax.set_xticklabels([str(c) for c in means.columns], fontsize=8)
    ax.set_yticks(range(means.shape[0]))
    ax.set_yticklabels([str(r) for r in means.index], fontsize=8)
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
           cost_label: str, metric: str, mode: str) -> bytes:
    c = np.asarray(costs, dtype=float)
    v = np.asarray(values, dtype=float)
    f = np.asarray(front, dtype=bool)
    fig = _figure(8, 4.6)
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(c[~f], v[~f], color="0.55", s=30, label="trial")
    order = np.argsort(c[f])
    fc, fv = c[f][order], v[f][order]
    ax.step(fc, fv, where="post", color="tab:red", lw=1.5, alpha=0.7)
    ax.scatter(fc, fv, color="tab:red", s=55, zorder=3, label="Pareto front")
    for x, y, name in zip(fc, fv, np.asarray(labels, dtype=object)[f][order]):
        ax.annotate(str(name), (x, y), textcoords="offset points", xytext=(5, 5), fontsize=7)
    ax.set_xlabel(cost_label)
    ax.set_ylabel(f"best {metric_name(metric)} ({'lower' if mode == 'min' else 'higher'} is better)")
    ax.set_title(f"best {metric_name(metric)} vs cost")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _png(fig)
