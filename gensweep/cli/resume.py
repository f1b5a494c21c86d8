"""``gensweep resume EXPERIMENT``: finish a sweep whose driver died."""
from __future__ import annotations

import argparse

from gensweep.cli.options import add_experiment, add_ray, add_root, print_err, stopped_status


def register(subparsers) -> None:
    p = subparsers.add_parser("resume", help="finish a sweep whose driver died (restores Tune's experiment state)")
    add_experiment(p, "experiment id (as given to or printed by `gensweep run`)")
    add_root(p, "results root of the sweep (local path or s3://)")
    add_ray(p)
    p.set_defaults(func=cmd_resume)


def cmd_resume(args: argparse.Namespace) -> int:
    from gensweep.platform.report.text import print_outcome
    from gensweep.platform.spec import SpecError
    from gensweep.platform.sweep.resume import resume_sweep
    from gensweep.platform.sweep.interrupt import StopNow, SweepInterrupted

    try:
        outcome = resume_sweep(args.experiment, root=args.root, address=args.address, num_cpus=args.num_cpus)
    except (SweepInterrupted, StopNow) as e:
        return stopped_status(e)
    except SpecError as e:
        print_err(str(e))
        return 2
    print_outcome(outcome)
    return 0 if outcome.num_errors == 0 else 1
