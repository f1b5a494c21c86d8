"""``gensweep results ls|show|export|compact``: query the results store (no Ray needed) and
merge the part files of stores written before sweeps compacted as they went."""
from __future__ import annotations

import argparse

from gensweep.cli.options import add_experiment, add_root, print_err


def register(sub) -> None:
    res = sub.add_parser("results", help="query the results store (no Ray needed)")
    add_root(res)
    rsub = res.add_subparsers(dest="results_command", required=True)
    ls = rsub.add_parser("ls", help="list experiments")
    show = rsub.add_parser("show", help="leaderboard of an experiment")
    add_experiment(show)
    show.add_argument("--metric", default="fid")
    show.add_argument("--mode", default="min", choices=["min", "max"])
    exp = rsub.add_parser("export", help="export an experiment's tables")
    add_experiment(exp)
    exp.add_argument("--format", default="csv", choices=["csv", "parquet"])
    exp.add_argument("-o", "--output", required=True,
                     help="a file named *.csv / *.parquet: the metrics table there; else a folder that receives"
                          " <table>.<format> for each table")
    compact = rsub.add_parser("compact", help="merge each table's part files into one per experiment")
    add_experiment(compact, "an experiment id or spec name (default: every experiment)", optional=True)
    for leaf in (ls, show, exp, compact):
        add_root(leaf, inherited=True)
    res.set_defaults(func=results_command)


def results_command(args: argparse.Namespace) -> int:
    from gensweep.platform.report.text import board_lines, board_table, resolve_experiment
    from gensweep.platform.results import (
        ResultsStore,
        export,
        format_table,
        list_experiments,
    )

    store = ResultsStore.open(args.root)
    try:
        if args.results_command == "ls":
            df = list_experiments(store)
            print(format_table(df) if not df.empty else "no experiments")
            return 0
        if args.results_command == "compact":
            names = [resolve_experiment(store, args.experiment)] if args.experiment else store.experiments()
            for name in names:
                removed = store.compact_experiment(name)
                merged = ", ".join(f"{t} {n} -> 1" for t, n in removed.items() if n) or "already compact"
                print(f"{name}: {merged}")
            return 0
        experiment = resolve_experiment(store, args.experiment)
        if args.results_command == "show":
            table = board_table(store, experiment, metric=args.metric, mode=args.mode)
            print(f"Leaderboard of {experiment}:")
            print("\n".join(board_lines(table)))
            return 0
        one_file = args.output.lower().endswith("." + args.format)
        export(store, experiment, args.output, fmt=args.format, tables="metrics" if one_file else None)
        print(f"wrote {args.output}")
        return 0
    except KeyError as e:
        print_err(e.args[0])
        return 2
