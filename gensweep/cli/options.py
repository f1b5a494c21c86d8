"""Options shared by several commands, defined once."""
from __future__ import annotations

import argparse
import sys

from gensweep.platform.storage.layout import DEFAULT_ROOT


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


def add_root(parser: argparse.ArgumentParser, help: str = "results root (local path or s3://)") -> None:
    """``--root``: the results root a command reads (default ``./gensweep_results``)."""
    parser.add_argument("--root", default=DEFAULT_ROOT, help=f"{help} (default: {DEFAULT_ROOT})")


def add_ray(parser: argparse.ArgumentParser) -> None:
    """``--address`` and ``--num-cpus``: which Ray to run on."""
    parser.add_argument("--address", help="Ray cluster address (default: start a local instance)")
    parser.add_argument("--num-cpus", type=int, help="CPUs for a local Ray instance (default: all)")


def add_experiment(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", help="experiment id, or a spec name (its latest run)")
