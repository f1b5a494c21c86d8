"""``gensweep run [SPEC]``: run a sweep (no SPEC: the embedded default MNIST GAN sweep)."""
from __future__ import annotations

import argparse

from gensweep.cli.options import add_experiment_option, add_ray, add_root_override, print_err, stopped_status


def register(sub) -> None:
    run = sub.add_parser("run", help="run a sweep (no SPEC: the embedded default MNIST GAN sweep)")
    run.add_argument("spec", nargs="?", help="experiment spec YAML")
    run.add_argument("--dry-run", action="store_true",
                     help="validate the spec, run the preflight (storage, data source, backbone, Optuna storage,"
                     " resources) without starting Ray or creating anything, print the resolved spec and exit")
    add_experiment_option(run)
    add_root_override(run, "override results.root")
    run.add_argument("--or-resume", action="store_true",
                     help="with --experiment: resume that experiment when the store already holds it "
                          "(a requeued batch job), else run it")
    add_ray(run)
    run.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from gensweep.platform.spec import SpecError, default_spec, load_spec

    try:
        spec = load_spec(args.spec) if args.spec else default_spec()
        if args.results_root:
            spec = spec.model_copy(update={"results": spec.results.model_copy(update={"root": args.results_root})})
    except SpecError as e:
        print_err(str(e))
        return 2
    if args.dry_run:
        from gensweep.platform.sweep.preflight import preflight

        try:
            warnings = preflight(spec, address=args.address, num_cpus=args.num_cpus, create=False)
        except SpecError as e:
            print_err(str(e))
            return 2
        res = spec.resources
        print(spec.to_yaml(), end="")
        for warning in warnings:
            print(f"# warning: {warning}")
        print("# preflight passed: storage, data source, backbone, resources (Ray not started)")
        print(f"# each trial runs with launcher {res.trial_launcher} (resources.launcher: {res.launcher},"
              f" workers: {res.workers})")
        return 0
    from gensweep.platform.report.text import print_outcome
    from gensweep.platform.sweep.resume import resumable, resume_sweep
    from gensweep.platform.sweep.runner import run_sweep
    from gensweep.platform.sweep.interrupt import StopNow, SweepInterrupted

    try:
        if args.or_resume and args.experiment and resumable(args.experiment, spec.results.root):
            print(f"[gensweep] {args.experiment} is in {spec.results.root}: resuming it", flush=True)
            outcome = resume_sweep(args.experiment, root=spec.results.root, address=args.address,
                                   num_cpus=args.num_cpus)
        else:
            outcome = run_sweep(spec, address=args.address, experiment=args.experiment, num_cpus=args.num_cpus)
    except (SweepInterrupted, StopNow) as e:
        return stopped_status(e)
    except SpecError as e:  # the preflight (storage, data, resources) failed: nothing started
        print_err(str(e))
        return 2
    print_outcome(outcome)
    return 0 if outcome.num_errors == 0 else 1
