"""Options shared by several commands, defined once.

Every option here is accepted in the same place by every command that takes it: after the
command's last word (``gensweep results ls --root R`` as well as ``gensweep report EXP --root R``).
This module and the command modules import nothing heavy at parse time (no torch, pandas,
pyarrow or Ray): ``gensweep --help`` stays quick.
"""
from __future__ import annotations

import argparse
import sys

from gensweep.platform.storage.names import DEFAULT_ROOT, experiment_name_problem


def print_err(msg: str) -> None:
    print(f"gensweep: {msg}", file=sys.stderr)


def at_least(minimum: int):
    """An argparse ``type``: an integer no smaller than ``minimum``."""

    def parse(text: str) -> int:
        n = int(text)
        if n < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {n}")
        return n

    return parse


def add_root(parser: argparse.ArgumentParser, help: str = "results root (local path or s3://)",
             inherited: bool = False) -> None:
    """``--root``: the results root a command reads (default ``./gensweep_results``).

    ``inherited``: a subcommand of a command that takes ``--root`` itself (``results --root R ls``);
    given after the subcommand it wins, and left out it keeps the command's value.
    """
    default = argparse.SUPPRESS if inherited else DEFAULT_ROOT
    parser.add_argument("--root", default=default, help=f"{help} (default: {DEFAULT_ROOT})")


def add_root_override(parser: argparse.ArgumentParser, help: str) -> None:
    """``--root`` (or ``--results-root``) of a command whose root otherwise comes from elsewhere
    (the spec, a checkpoint): the same option name as every other command's."""
    parser.add_argument("--results-root", "--root", dest="results_root", help=help)


def add_ray(parser: argparse.ArgumentParser) -> None:
    """``--address`` and ``--num-cpus``: which Ray to run on."""
    parser.add_argument("--address", help="Ray cluster address (default: start a local instance)")
    parser.add_argument("--num-cpus", type=int, help="CPUs for a local Ray instance (default: all)")


def experiment_name(text: str) -> str:
    """argparse type of every experiment id or spec name a command takes: one safe path segment."""
    problem = experiment_name_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def add_experiment(parser: argparse.ArgumentParser, help: str = "experiment id, or a spec name (its latest run)",
                   optional: bool = False) -> None:
    """The positional experiment of a command (``optional``: may be left out)."""
    extra = {"nargs": "?", "default": None} if optional else {}
    parser.add_argument("experiment", type=experiment_name, help=help, **extra)


def add_experiment_option(parser: argparse.ArgumentParser) -> None:
    """``--experiment``: the id a new sweep gets (``run``, ``submit``)."""
    parser.add_argument("--experiment", type=experiment_name,
                        help="experiment id (default: <spec name>-<UTC time>)")


def stopped_status(exc: BaseException) -> int:
    """The exit status of a sweep a signal stopped: 75 after a graceful stop (checkpointed, flushed:
    "interrupted, resumable"), 130 after a second signal stopped it at once."""
    from gensweep.platform.sweep.interrupt import EXIT_RESUMABLE, EXIT_STOPPED_AT_ONCE, SweepInterrupted

    if isinstance(exc, SweepInterrupted):
        print_err(str(exc))
        return EXIT_RESUMABLE
    print_err(f"{exc}; `gensweep resume` continues from the last state saved")
    return EXIT_STOPPED_AT_ONCE
