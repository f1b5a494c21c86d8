"""How wall time grows with trials per sweep, workers per trial, dataset size and evaluation N.

Each axis varies one thing around a small base sweep (DCGAN width 16, batch 64, 150 steps,
three FIDs at N=500 on ``mnist-lenet`` features, random search over lr x loss, no scheduler) and fits
``y = a + b * x`` by least squares over every measured point (benchmarks/trend.py):

* ``trials``  -- trials per sweep at ``--concurrent`` at once (inline launcher): sweep wall time
  (``run_sweep`` from call to return) and each trial's wall time;
* ``workers`` -- Ray Train workers per trial (train launcher, one trial at a time), ``--cpus``
  split evenly among them (Ray sets a worker's OMP_NUM_THREADS to its CPUs) and the global batch
  (``--batch``) split too, so every level trains the same images: trial wall time and images/s (the trainable's ``images_per_s``, all workers' images, mean over its report
  windows);
* ``dataset`` -- MNIST images (a seeded, class-stratified ``data.fraction`` of the 5,000 bundled
  digits; reference statistics over all of them): dataset preparation and reference statistics
  (each timed on its own, before the sweep), sweep wall time (which also reads the prepared
  dataset into the object store once) and trial wall time;
* ``eval``    -- ``eval.num_samples``: seconds of an evaluation (the trainable's ``eval_time_s``:
  generate N images, features, FID, and the 64-image sample grid), the first of each trial apart
  from the later ones (it also pays one-off warm-up), and all of them as a share of trial wall time.

Trial wall times come from the results store (``trials.wall_time_s``), per-report numbers from
its ``metrics`` table. The sweeps of an axis share one local Ray instance and follow an untimed
one-trial warm-up sweep (in its own root: it also reads the bundled MNIST source, cached per
process); except on the ``dataset`` axis the dataset and reference statistics are prepared before
the timed sweeps. Results go to ``--out`` (JSON; axes already there from an earlier run are kept)
and a markdown table of every axis in it is printed. Run one axis per command to keep each under ten minutes:

    PYTHONPATH=. python benchmarks/bench_scaling.py --axis trials --out scaling.json
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from benchmarks.sweep_support import local_ray, machine, markdown, results_root
from benchmarks.trend import fit_line, reading
from gensweep.platform.data import load_manifest, open_source
from gensweep.platform.data.ensure import ensure_dataset, storage_of
from gensweep.platform.trial.evaluation import prepare_reference
from gensweep.platform.results import ResultsStore
from gensweep.platform.sweep.runner import run_sweep
from gensweep.platform.spec import ExperimentSpec, parse_spec


@dataclass(frozen=True)
class Quantity:
    name: str
    unit: str


@dataclass(frozen=True)
class Axis:
    x_label: str  # what the levels count, for the table
    x_unit: str  # one level step, for the slope's unit
    slope_per: int  # the slope is shown per this many x units
    levels: tuple[int, ...]
    quantities: tuple[Quantity, ...]
    # (level, results root, options) -> measured values of each quantity at that level
    measure: Callable[[int, str, argparse.Namespace], dict[str, list[float]]]
    prewarm: bool = True  # prepare dataset and reference statistics in the timed root beforehand


@dataclass
class Sweep:
    wall_s: float
    trials: pd.DataFrame  # indexed by trial_id
    metrics: pd.DataFrame


def spec_for(root: str, name: str, args: argparse.Namespace, **overrides: dict[str, Any]) -> ExperimentSpec:
    """The base sweep with some sections' fields replaced (``resources.launcher`` always explicit)."""
    base: dict[str, Any] = {
        "name": name,
        "seed": args.seed,
        "trainable": {"steps": args.steps, "eval_every": max(1, args.steps // args.evals), "width": 16,
                      "batch_size": args.batch, "num_classes": 0},
        "space": {"lr": {"type": "loguniform", "low": 1e-4, "high": 1e-3}, "loss": ["ns", "hinge"]},
        "search": {"algorithm": "random", "num_trials": args.repeats, "max_concurrent": args.concurrent},
        "scheduler": {"kind": "none"},
        "resources": {"launcher": "inline"},
        "data": {"source": "mnist"},
        "eval": {"num_samples": args.eval_n, "metrics": ["fid"]},
        "results": {"root": root},
    }
    for section, fields in overrides.items():
        base[section] = {**base[section], **fields}
    return parse_spec(base)


def run(spec: ExperimentSpec) -> Sweep:
    """One timed sweep; its trials and metrics rows from the results store. An errored trial fails the run."""
    t0 = time.perf_counter()
    outcome = run_sweep(spec, verbose=0)
    wall = time.perf_counter() - t0
    if outcome.num_errors or outcome.num_diverged:
        raise RuntimeError(f"sweep {outcome.experiment}: {outcome.num_errors} errored and {outcome.num_diverged}"
                           " diverged trial(s); its timings would not be comparable")
    store = ResultsStore.open(outcome.results_root)
    return Sweep(wall, store.read("trials", outcome.experiment).set_index("trial_id"),
                 store.read("metrics", outcome.experiment))


def prepare(spec: ExperimentSpec, root: str) -> tuple[float, float]:
    """Seconds to prepare the spec's dataset, then its reference statistics (each found or made)."""
    t0 = time.perf_counter()
    uri = ensure_dataset(spec.data, root)
    t1 = time.perf_counter()
    prepare_reference(spec, uri, root)
    return t1 - t0, time.perf_counter() - t1


def warm_up(root: str, args: argparse.Namespace) -> None:
    """An untimed one-trial sweep in its own root: the first sweep of a process also pays one-off
    imports and Tune start-up, which would otherwise land on the first level only."""
    warm = str(Path(root) / "warm-up")
    run(spec_for(warm, "scale-warm-up", args, search={"num_trials": 1}, trainable={"steps": 2, "eval_every": 2}))


def trial_walls(s: Sweep) -> list[float]:
    return [float(v) for v in s.trials["wall_time_s"]]


def measure_trials(level: int, root: str, args: argparse.Namespace) -> dict[str, list[float]]:
    s = run(spec_for(root, f"scale-trials-{level}", args, search={"num_trials": level}))
    return {"sweep wall": [s.wall_s], "trial wall": trial_walls(s)}


def measure_workers(level: int, root: str, args: argparse.Namespace) -> dict[str, list[float]]:
    if args.batch % level or args.cpus % level:
        raise ValueError(f"--batch {args.batch} and --cpus {args.cpus} must split evenly over {level} workers")
    s = run(spec_for(root, f"scale-workers-{level}", args, trainable={"batch_size": args.batch // level},
                     search={"max_concurrent": 1},
                     resources={"launcher": "train", "workers": level, "cpus_per_worker": args.cpus // level}))
    rate = s.metrics.groupby("trial_id")["images_per_s"].mean()
    return {"trial wall": trial_walls(s), "images/s": [float(v) for v in rate]}


def measure_dataset(level: int, root: str, args: argparse.Namespace) -> dict[str, list[float]]:
    total = open_source("mnist").count
    if level > total:
        raise ValueError(f"dataset level {level} exceeds the {total} bundled MNIST images")
    spec = spec_for(root, f"scale-dataset-{level}", args, data={"fraction": level / total})
    data_s, ref_s = prepare(spec, root)
    count = load_manifest(ensure_dataset(spec.data, root), storage_of(spec.data)).count
    if count != level:
        raise RuntimeError(f"data.fraction {level / total} prepared {count} images, not {level}")
    s = run(spec)
    return {"dataset preparation": [data_s], "reference statistics": [ref_s], "sweep wall": [s.wall_s],
            "trial wall": trial_walls(s)}


def measure_eval(level: int, root: str, args: argparse.Namespace) -> dict[str, list[float]]:
    s = run(spec_for(root, f"scale-eval-{level}", args, eval={"num_samples": level}))
    evals = s.metrics.dropna(subset=["eval_time_s"]).sort_values(["trial_id", "step"])
    first = evals.groupby("trial_id").head(1)
    per_trial = evals.groupby("trial_id")["eval_time_s"].sum()
    share = per_trial / s.trials["wall_time_s"].reindex(per_trial.index)
    return {"first evaluation of a trial": [float(v) for v in first["eval_time_s"]],
            "later evaluations": [float(v) for v in evals.drop(first.index)["eval_time_s"]],
            "eval share of trial wall": [float(v) for v in share]}


SECONDS = "s"
AXES: dict[str, Axis] = {
    "trials": Axis("trials per sweep", "trial", 1, (2, 4, 6, 8),
                   (Quantity("sweep wall", SECONDS), Quantity("trial wall", SECONDS)), measure_trials),
    "workers": Axis("workers per trial", "worker", 1, (1, 2),
                    (Quantity("trial wall", SECONDS), Quantity("images/s", "img/s")), measure_workers),
    "dataset": Axis("MNIST images", "image", 1000, (500, 1000, 2500, 5000),
                    (Quantity("dataset preparation", SECONDS), Quantity("reference statistics", SECONDS),
                     Quantity("sweep wall", SECONDS), Quantity("trial wall", SECONDS)), measure_dataset,
                    prewarm=False),
    "eval": Axis("eval.num_samples", "sample", 1000, (250, 500, 1000, 2000),
                 (Quantity("first evaluation of a trial", SECONDS), Quantity("later evaluations", SECONDS),
                  Quantity("eval share of trial wall", "fraction")), measure_eval),
}


def measure_axis(name: str, args: argparse.Namespace) -> dict[str, Any]:
    axis = AXES[name]
    levels = [int(v) for v in args.levels.split(",")] if args.levels else list(axis.levels)
    points: dict[str, list[list[float]]] = {q.name: [] for q in axis.quantities}
    t0 = time.perf_counter()
    with results_root(args.root) as root, local_ray(args.cpus):
        warm_up(root, args)
        if axis.prewarm:
            prepare(spec_for(root, "scale-prewarm", args), root)
        for level in levels:
            values = axis.measure(level, root, args)
            for q in axis.quantities:
                points[q.name] += [[level, v] for v in values[q.name]]
            print(f"[bench] {name} = {level}: " + ", ".join(f"{k} {sum(v) / len(v):.3g}" for k, v in values.items()),
                  flush=True)
    quantities = {q.name: {"unit": q.unit, "points": points[q.name]} for q in axis.quantities}
    return {"levels": levels, "quantities": quantities, "axis_wall_s": time.perf_counter() - t0,
            "machine": machine(), "finished_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "options": {k: v for k, v in vars(args).items() if k not in ("axis", "out", "root")}}


def with_fits(measured: dict[str, Any]) -> dict[str, Any]:
    """The axis's quantities with their least-squares line and its reading (made from the points,
    so axes kept from an earlier run are fitted the same way)."""
    for m in measured["quantities"].values():
        xs, ys = [p[0] for p in m["points"]], [p[1] for p in m["points"]]
        trend = fit_line(xs, ys)
        m["fit"], m["reading"] = trend.to_dict(), reading(trend, xs, ys)
    return measured


def number(v: float) -> str:
    """Three significant digits, without an exponent from 1,000 up."""
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"


def table(axes: dict[str, Any]) -> str:
    rows = []
    for name in (n for n in AXES if n in axes):
        axis, measured = AXES[name], axes[name]
        per = f" per {axis.slope_per:,} {axis.x_unit}s" if axis.slope_per > 1 else f" per {axis.x_unit}"
        for q, m in measured["quantities"].items():
            by_level: dict[float, list[float]] = {}
            for x, y in m["points"]:
                by_level.setdefault(x, []).append(y)
            fit = m["fit"]
            rows.append([
                axis.x_label, q, " / ".join(f"{x:g}" for x in by_level),
                " / ".join(number(sum(v) / len(v)) for v in by_level.values()), fit["n"],
                f"{number(fit['a'])} {m['unit']}", f"{number(fit['b'] * axis.slope_per)} {m['unit']}{per}",
                f"{fit['r2']:.2f}", f"{fit['r2_means']:.2f}", m["reading"],
            ])
    return markdown(["axis", "measured", "levels", "mean per level", "points", "a (intercept)", "b (slope)",
                     "R² points", "R² level means", "trend"], rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--axis", action="append", choices=sorted(AXES), help="repeatable; default: every axis")
    ap.add_argument("--levels", default=None, help="comma-separated levels (one --axis only); default: the axis's")
    ap.add_argument("--steps", type=int, default=150, help="training steps per trial")
    ap.add_argument("--evals", type=int, default=3, help="evaluations per trial")
    ap.add_argument("--eval-n", type=int, default=500, help="eval.num_samples away from the eval axis")
    ap.add_argument("--batch", type=int, default=64, help="global batch (split over a trial's workers)")
    ap.add_argument("--repeats", type=int, default=2, help="trials per level away from the trials axis")
    ap.add_argument("--concurrent", type=int, default=2, help="trials at once (the workers axis runs one)")
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray instance")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--root", default=None, help="results root (default: a temporary folder per axis)")
    ap.add_argument("--out", required=True, help="JSON file; axes measured now replace the same axes in it")
    args = ap.parse_args(argv)
    names = args.axis or list(AXES)
    if args.levels and len(names) != 1:
        ap.error("--levels needs exactly one --axis")

    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {"axes": {}}
    for name in names:
        results["axes"][name] = measure_axis(name, args)
        results["axes"] = {k: with_fits(v) for k, v in results["axes"].items()}
        out.write_text(json.dumps(results, indent=1))
    print(f"\n{machine()}\n")
    print(table(results["axes"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
