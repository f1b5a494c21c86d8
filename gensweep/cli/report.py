"""``gensweep report EXPERIMENT [--root ROOT] [-o report.html]``."""
from __future__ import annotations

import argparse

from gensweep.cli.options import add_experiment, add_root, print_err


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        help="write an HTML ablation report of an experiment (no Ray needed)",
        description="Self-contained HTML ablation report for 10 to 10,000 trials: leaderboard (every trial in a CSV "
                    "beside the page), metric curves as quantile bands, per-factor effects at equal budget with "
                    "bootstrap CIs, search-space coverage, parameter importance, interaction heatmap, Pareto front, "
                    "sample grids.",
    )
    add_experiment(p)
    add_root(p)
    p.add_argument("-o", "--output", default="report.html", help="output HTML file (default: report.html)")
    p.add_argument("--metric", default="fid", help="metric to rank and analyse (default: fid)")
    p.add_argument("--mode", default="min", choices=["min", "max"])
    p.add_argument("--bootstrap", type=int, default=2000, metavar="N", help="bootstrap resamples (default: 2000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and the importance evaluator")
    p.add_argument("--top", type=int, default=3, help="sample grids of this many best trials (default: 3)")
    p.add_argument("--budget", default="common", choices=["common", "final"],
                   help="compare trials at the last step all of them reached (common, default) or only the trials "
                        "that reached the final step (final)")
    p.add_argument("--importance-trials", type=int, default=500, metavar="N",
                   help="parameter importance on at most N trials, a seeded subsample beyond (default: 500)")
    p.add_argument("--leaderboard-rows", type=int, default=50, metavar="N",
                   help="leaderboard rows on the page; the CSV beside it holds every trial (default: 50)")
    p.add_argument("--workers", type=int, default=None,
                   help="workers per trial for the cost axis when no cpu_hours/gpu_hours are recorded "
                        "(default: the spec's resources.workers)")
    p.set_defaults(func=report_command)


def report_command(args: argparse.Namespace) -> int:
    from gensweep.platform.report.build import write_report
    from gensweep.platform.results import ResultsStore

    store = ResultsStore.open(args.root)
    try:
        path = write_report(store, args.experiment, args.output, metric=args.metric, mode=args.mode,
                            n_boot=args.bootstrap, seed=args.seed, top=args.top, workers=args.workers,
                            budget=args.budget, importance_trials=args.importance_trials,
                            board_rows=args.leaderboard_rows)
    except KeyError as e:
        print_err(e.args[0])
        return 2
    from gensweep.platform.report.build import leaderboard_csv_path

    print(f"wrote {path} and {leaderboard_csv_path(path)}")
    return 0
