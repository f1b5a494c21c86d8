"""Every shipped search space runs as a real (small) sweep: Tune + search -> TorchTrainer -> FID -> store.

For each space in ``gensweep/search_spaces`` the script builds a spec through the public API
(``parse_spec`` + ``run_sweep``), with tiny fixed trainable settings of the space's family, a few
trials, ASHA (or no scheduler) and a small FID protocol (``mnist-lenet``), all on one local Ray
instance and one results root (the dataset and reference statistics are prepared once). It prints
one markdown row per space: trials run, their end states, errored trials, the best FID, the
sampled config of the best trial and the sweep's wall time. Exits non-zero if any trial errored.

    PYTHONPATH=. python benchmarks/bench_spaces.py
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from benchmarks.sweep_support import local_ray, machine, markdown, results_root, sampled_config
from gensweep import search_spaces
from gensweep.platform.sweep.runner import run_sweep
from gensweep.platform.spec import parse_spec
from gensweep.trainables.families import FAMILIES

# Per family: tiny fixed trainable settings (a setting the space searches is left to the space),
# trials and generated images per FID. A diffusion trial samples with up to 100 network
# evaluations per image at widths up to 64 (what the space searches), hence fewer of everything.
BUDGET = {
    "gan": {"trainable": {"steps": 40, "eval_every": 20, "width": 8, "z_dim": 16, "batch_size": 32},
            "trials": 4, "eval_n": 200},
    "diffusion": {"trainable": {"steps": 10, "eval_every": 10, "width": 8, "channel_mult": [1, 2], "attn_res": 0,
                                "batch_size": 16, "eval_batch_size": 100},
                  "trials": 2, "eval_n": 100},
}
STATES = ("completed", "stopped", "diverged", "failed")


def family_of(params: dict) -> str:
    """The family whose config has every parameter of the space (the YAML names no family)."""
    fits = [f for f in FAMILIES.names() if set(params) <= set(FAMILIES.get(f).config.model_fields)]
    if len(fits) != 1:
        raise ValueError(f"space parameters {sorted(params)} fit families {fits}; expected exactly one")
    return fits[0]


def space_spec(space: str, root: str, args: argparse.Namespace):
    params = search_spaces.load(space)["params"]
    family = family_of(params)
    budget = BUDGET[family]
    fixed = {k: v for k, v in budget["trainable"].items() if k not in params}
    return parse_spec({
        "name": f"space-{space}",
        "family": family,
        "seed": args.seed,
        "trainable": fixed,
        "space": space,
        "search": {"algorithm": args.algorithm, "num_trials": args.trials or budget["trials"],
                   "max_concurrent": args.concurrent},
        "scheduler": {"kind": args.scheduler, "grace_period": 1},
        "resources": {"launcher": args.launcher},
        "eval": {"num_samples": args.eval_n or budget["eval_n"], "ref_samples": args.ref_n, "metrics": ["fid"]},
        "results": {"root": root},
    })


def run_space(space: str, root: str, args: argparse.Namespace) -> list:
    spec = space_spec(space, root, args)
    t0 = time.perf_counter()
    outcome = run_sweep(spec, experiment=spec.name, num_cpus=args.cpus, verbose=0)
    wall = time.perf_counter() - t0
    board = outcome.leaderboard
    counts = board["status"].value_counts()
    best = board.iloc[0]
    return [
        space, spec.family, len(board), spec.eval.num_samples, " / ".join(str(int(counts.get(s, 0))) for s in STATES),
        outcome.num_errors, f"{best['best_fid']:.1f}", f"`{json.dumps(sampled_config(best))}`", f"{wall:.0f} s",
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spaces", default=",".join(search_spaces.available()))
    ap.add_argument("--trials", type=int, default=None, help="trials per space (default: the family's, see BUDGET)")
    ap.add_argument("--concurrent", type=int, default=2)
    ap.add_argument("--algorithm", default="optuna-tpe", choices=["optuna-tpe", "random"])
    ap.add_argument("--scheduler", default="asha", choices=["asha", "none"])
    ap.add_argument("--launcher", default="train", choices=["auto", "train", "inline"])
    ap.add_argument("--eval-n", type=int, default=None, help="generated images per FID (default: the family's)")
    ap.add_argument("--ref-n", type=int, default=1000, help="real images for the reference statistics")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--root", default=None, help="results root (default: a temporary folder)")
    args = ap.parse_args(argv)

    rows = []
    t0 = time.perf_counter()
    with results_root(args.root) as root, local_ray(args.cpus):
        for space in args.spaces.split(","):
            rows.append(run_space(space, root, args))
            print(f"[bench] {rows[-1]}", flush=True)
    print(f"\n{len(rows)} spaces in {time.perf_counter() - t0:.0f} s on {machine()}; {args.algorithm},"
          f" {args.scheduler} scheduler, FID on mnist-lenet features\n")
    print(markdown(["space", "family", "trials", "FID N", "completed / stopped / diverged / failed", "errored",
                    "best FID", "config of the best trial", "wall"], rows))
    return 1 if any(r[5] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
