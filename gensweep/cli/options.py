"""Options shared by several commands, defined once."""
from __future__ import annotations

import argparse
import sys

from gensweep.platform.storage.layout import DEFAULT_ROOT


def print_err(msg: str) -> None:
    print(f"gensweep: {msg}", file=sys.stderr)


def add_root(parser: argparse.ArgumentParser, help: str = "results root (local path or s3://)") -> None:
    """``--root``: the results root a command reads (default ``./gensweep_results``)."""
    parser.add_argument("--root", default=DEFAULT_ROOT, help=f"{help} (default: {DEFAULT_ROOT})")


def add_ray(parser: argparse.ArgumentParser) -> None:
    """``--address`` and ``--num-cpus``: which Ray to run on."""
    parser.add_argument("--address", help="Ray cluster address (default: start a local instance)")
    parser.add_argument("--num-cpus", type=int, help="CPUs for a local Ray instance (default: all)")


def add_experiment(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", help="experiment id, or a spec name (its latest run)")


def stopped_status(exc: BaseException) -> int:
    """The exit status of a sweep a signal stopped: 75 after a graceful stop (checkpointed, flushed:
    "interrupted, resumable"), 130 after a second signal stopped it at once."""
    from gensweep.platform.sweep.interrupt import EXIT_RESUMABLE, EXIT_STOPPED_AT_ONCE, SweepInterrupted

    if isinstance(exc, SweepInterrupted):
        print_err(str(exc))
        return EXIT_RESUMABLE
    print_err(f"{exc}; `gensweep resume` continues from the last state saved")
    return EXIT_STOPPED_AT_ONCE
