"""The ``gensweep`` command line: one module per command, each defining ``register(subparsers)``.

Shared options (``--root``, ``--address``/``--num-cpus``) are defined once in :mod:`.options`.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional

# Command modules, in the order ``gensweep --help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "gensweep.cli.run",
    "gensweep.cli.resume",
    "gensweep.cli.results",
    "gensweep.cli.report",
    "gensweep.cli.data",
    "gensweep.cli.eval",
    "gensweep.cli.sample",
    "gensweep.cli.export",
    "gensweep.cli.refstats",
    "gensweep.cli.dashboard",
    "gensweep.cli.cluster",
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gensweep", description="Ablation sweeps of generative models on Ray.")
    sub = p.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return p


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
