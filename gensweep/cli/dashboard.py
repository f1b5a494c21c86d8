"""``gensweep dashboard EXPERIMENT``: optuna-dashboard and TensorBoard on a sweep, on 127.0.0.1."""
from __future__ import annotations

import argparse
import time

from gensweep.cli.options import add_experiment, add_root, print_err


def register(sub) -> None:
    p = sub.add_parser("dashboard", help="serve optuna-dashboard and TensorBoard for an experiment (127.0.0.1)")
    add_experiment(p)
    add_root(p)
    p.add_argument("--optuna-port", type=int, default=None, help="optuna-dashboard port (default: a free one)")
    p.add_argument("--tensorboard-port", type=int, default=None, help="TensorBoard port (default: a free one)")
    p.add_argument("--optuna-storage", help="Optuna storage URL (default: the local root's optuna.db)")
    p.add_argument("--no-tensorboard", action="store_true", help="serve optuna-dashboard only")
    p.add_argument("--duration", type=float, default=None, metavar="S",
                   help="stop after S seconds (default: until interrupted)")
    p.set_defaults(func=dashboard_command)


def dashboard_command(args: argparse.Namespace) -> int:
    from gensweep.platform.sweep import dashboards

    try:
        storage = args.optuna_storage or dashboards.optuna_storage_url(args.root)
    except ValueError as e:
        print_err(str(e))
        return 2
    servers = []
    try:
        servers.append(dashboards.start_optuna_dashboard(storage, args.optuna_port))
        print(f"optuna-dashboard: {servers[-1].url}   (study {args.experiment} in {storage})", flush=True)
        if not args.no_tensorboard:
            logdir = dashboards.tensorboard_logdir(args.root, args.experiment)
            servers.append(dashboards.start_tensorboard(logdir, args.tensorboard_port))
            print(f"TensorBoard:      {servers[-1].url}   ({logdir})", flush=True)
        print("Ray dashboard (while a local sweep runs): " + dashboards.ray_dashboard_url(), flush=True)
        deadline = None if args.duration is None else time.monotonic() + args.duration
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic())))
    except KeyboardInterrupt:
        pass
    except (RuntimeError, TimeoutError, FileNotFoundError) as e:
        print_err(str(e))
        return 1
    finally:
        for server in servers:
            server.stop()
    return 0
