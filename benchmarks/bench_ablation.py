"""FID after one fixed short budget, adversarial loss x regularizer, on MNIST (a factorial grid sweep).

Runs one real sweep through the public API (``parse_spec`` + ``run_sweep``): ``search.algorithm:
grid`` over losses x regularizers (cells that break a combination rule of
``gensweep.trainables.gan.rules`` are dropped by the platform, e.g. WGAN without a Lipschitz
constraint), ``scheduler: none``, every cell with the same steps, architecture, seed and FID
protocol (``mnist-lenet`` features, N generated images against the real digits). The table is
read back from the results store (FID at the last evaluation of each trial). It also prints the
catalog of registered GAN components with their references.

    PYTHONPATH=. python benchmarks/bench_ablation.py --steps 350 --eval-n 1000

With ``--seeds 0,1,2`` every cell runs once per seed (``search.seeds``, the grid's replicate axis)
and each cell shows the mean FID with a 95 % t-interval over its seeds (n per cell).
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd
from scipy import stats

from benchmarks.sweep_support import local_ray, machine, markdown, results_root
from gensweep.platform.results import ResultsStore
from gensweep.platform.sweep.runner import run_sweep
from gensweep.platform.spec import parse_spec
from gensweep.trainables.gan import catalog


def seeds_of(args: argparse.Namespace) -> list[int]:
    return [int(s) for s in args.seeds.split(",")] if args.seeds else [args.seed]


def summarize(values: list[float]) -> str:
    """Mean and 95 % t-interval half-width over a cell's seeds; one value alone has no interval."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return f"{v[0]:.1f} (n=1)"
    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return f"{v.mean():.1f} ± {half:.1f} (n={len(v)})"


def ablation_spec(root: str, args: argparse.Namespace):
    return parse_spec({
        "name": "ablation-loss-reg",
        "seed": args.seed,
        "trainable": {"arch": "dcgan", "width": args.width, "z_dim": 64, "batch_size": args.batch_size,
                      "num_classes": 0, "steps": args.steps, "eval_every": args.steps, "lr": args.lr},
        "space": {"loss": args.losses.split(","), "reg": args.regs.split(",")},
        "search": {"algorithm": "grid", "seeds": seeds_of(args), "max_concurrent": args.concurrent},
        "scheduler": {"kind": "none"},
        "resources": {"launcher": args.launcher},
        "eval": {"num_samples": args.eval_n, "metrics": ["fid"]},
        "results": {"root": root},
    })


def fid_table(store: ResultsStore, experiment: str, spec) -> tuple[str, pd.DataFrame]:
    """Loss x regularizer table of the FID at each trial's last evaluation, from the store alone."""
    metrics = store.read("metrics", experiment)
    trials = store.read("trials", experiment).set_index("trial_id")
    last = metrics.sort_values("step").groupby("trial_id").tail(1).set_index("trial_id")
    scores: dict[tuple[str, str], list[float]] = {}
    other: dict[tuple[str, str], list[str]] = {}
    for trial_id, row in last.iterrows():
        status = trials.loc[trial_id, "status"] if trial_id in trials.index else "running"
        key = (row["config/loss"], row["config/reg"])
        if status == "completed":
            scores.setdefault(key, []).append(float(row["fid"]))
        else:
            other.setdefault(key, []).append(f"{status} ({row['fid']:.1f})")
    for trial_id, row in trials.iterrows():
        if trial_id not in last.index:  # no evaluation at all (failed before the first one)
            other.setdefault((row["config/loss"], row["config/reg"]), []).append(str(row["status"]))
    cells = {key: "; ".join(([summarize(scores[key])] if key in scores else []) + other.get(key, []))
             for key in set(scores) | set(other)}
    losses, regs = spec.space.choices_of("loss"), spec.space.choices_of("reg")
    kept, _ = spec.feasible_cells(spec.space.grid())
    allowed = {(c["loss"], c["reg"]) for c in kept}
    rows = [[f"`{loss}`"] + [cells.get((loss, reg), "" if (loss, reg) in allowed else "n/a (rule)")
                             for reg in regs] for loss in losses]
    return markdown(["loss \\ reg"] + [f"`{r}`" for r in regs], rows), last


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--losses", default="ns,hinge,lsgan,wgan")
    ap.add_argument("--regs", default="none,r1,spectral-norm,gp")
    ap.add_argument("--steps", type=int, default=350, help="generator updates, the same for every cell")
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--eval-n", type=int, default=1000, help="generated images per FID")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", default=None, help="comma-separated replicate seeds (default: --seed alone)")
    ap.add_argument("--concurrent", type=int, default=2)
    ap.add_argument("--launcher", default="train", choices=["auto", "train", "inline"],
                    help="resources.launcher (default train: how the recorded rows were made)")
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--root", default=None, help="results root (default: a temporary folder)")
    args = ap.parse_args(argv)

    print("Registered GAN components (config field, kind, name, reference):\n")
    print(catalog.markdown() + "\n", flush=True)

    with results_root(args.root) as root, local_ray(args.cpus):
        spec = ablation_spec(root, args)
        t0 = time.perf_counter()
        outcome = run_sweep(spec, experiment=spec.name, num_cpus=args.cpus, verbose=0)
        wall = time.perf_counter() - t0
        store = ResultsStore.open(root)
        table, last = fid_table(store, outcome.experiment, spec)
        trials = store.read("trials", outcome.experiment)
        refstats = last["refstats_key"].iloc[0]
    print(f"\nFID ({spec.eval.backbone} features, N={args.eval_n} generated vs reference {refstats}) after"
          f" {args.steps} steps; dcgan width {args.width}, batch {args.batch_size}, lr {args.lr}, seeds {seeds_of(args)};"
          f" {len(trials)} trials, {outcome.num_errors} errored, sweep wall {wall:.0f} s on {machine()}\n")
    print(table)
    mean_loop = last["loop_time_s"].mean()
    print(f"\nmean time in the training loop per trial: {mean_loop:.0f} s")
    return 1 if outcome.num_errors else 0


if __name__ == "__main__":
    sys.exit(main())
