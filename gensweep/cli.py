"""The ``gensweep`` command line."""
from __future__ import annotations

import argparse
import sys
from typing import Optional


def _print_err(msg: str) -> None:
    print(f"gensweep: {msg}", file=sys.stderr)


def cmd_run(args: argparse.Namespace) -> int:
    from gensweep.platform.spec import SpecError, default_spec, load_spec

    try:
        spec = load_spec(args.spec) if args.spec else default_spec()
        if args.results_root:
            spec = spec.model_copy(update={"results": spec.results.model_copy(update={"root": args.results_root})})
    except SpecError as e:
        _print_err(str(e))
        return 2
    if args.dry_run:
        res = spec.resources
        print(spec.to_yaml(), end="")
        print(f"# each trial runs with launcher {res.trial_launcher} (resources.launcher: {res.launcher},"
              f" workers: {res.workers})")
        return 0
    from gensweep.platform.report_text import print_outcome
    from gensweep.platform.runner import run_sweep

    try:
        outcome = run_sweep(spec, address=args.address, experiment=args.experiment, num_cpus=args.num_cpus)
    except SpecError as e:  # the preflight (storage, data, resources) failed: nothing started
        _print_err(str(e))
        return 2
    print_outcome(outcome)
    return 0 if outcome.num_errors == 0 else 1


def cmd_results(args: argparse.Namespace) -> int:
    from gensweep.platform.report_text import results_command

    return results_command(args)


# Modules that add more subcommands: each defines ``register(subparsers)``.
SUBCOMMAND_MODULES: tuple[str, ...] = (
    "gensweep.platform.report.cli",
    "gensweep.cluster.cli",
    "gensweep.platform.data_cli",
    "gensweep.platform.resume",
    "gensweep.platform.eval_cli",
)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    p = argparse.ArgumentParser(prog="gensweep", description="Ablation sweeps of generative models on Ray.")
    sub = p.add_subparsers(dest="command", required=True)
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(sub)

    run = sub.add_parser("run", help="run a sweep (no SPEC: the embedded default MNIST GAN sweep)")
    run.add_argument("spec", nargs="?", help="experiment spec YAML")
    run.add_argument("--dry-run", action="store_true", help="print the resolved spec (and the launcher each trial resolves to) and exit")
    run.add_argument("--address", help="Ray cluster address (default: start a local instance)")
    run.add_argument("--experiment", help="experiment id (default: <spec name>-<UTC time>)")
    run.add_argument("--results-root", help="override results.root")
    run.add_argument("--num-cpus", type=int, help="CPUs for a local Ray instance (default: all)")
    run.set_defaults(func=cmd_run)

    res = sub.add_parser("results", help="query the results store (no Ray needed)")
    res.add_argument("--root", default="./gensweep_results", help="results root (local path or s3://)")
    rsub = res.add_subparsers(dest="results_command", required=True)
    rsub.add_parser("ls", help="list experiments")
    show = rsub.add_parser("show", help="leaderboard of an experiment")
    show.add_argument("experiment", help="experiment id, or a spec name (its latest run)")
    show.add_argument("--metric", default="fid")
    show.add_argument("--mode", default="min", choices=["min", "max"])
    exp = rsub.add_parser("export", help="export an experiment's metrics")
    exp.add_argument("experiment")
    exp.add_argument("--format", default="csv", choices=["csv", "parquet"])
    exp.add_argument("-o", "--output", required=True)
    res.set_defaults(func=cmd_results)
    return p


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
