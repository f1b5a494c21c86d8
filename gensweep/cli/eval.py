"""`gensweep eval CHECKPOINT`: re-score a stored trial checkpoint and append the result to the store."""
from __future__ import annotations

import argparse
import sys

from gensweep.cli.options import add_root_override, at_least


def register(sub) -> None:
    p = sub.add_parser("eval", help="re-score a trial checkpoint (any backbone, any N); appends to the results store")
    p.add_argument("checkpoint", help="a trial checkpoint directory (or its state.pt), local or s3://")
    p.add_argument("--backbone", help="feature backbone (default: the trial's own)")
    p.add_argument("--num-samples", type=at_least(2), help="fake samples (default: the trial's full eval N)")
    add_root_override(p, "results store to append to (default: the trial's sweep's)")
    p.add_argument("--device", help="torch device (default: cuda when present, else cpu)")
    p.set_defaults(func=eval_command)


def eval_command(args: argparse.Namespace) -> int:
    import torch

    from gensweep.platform.metrics.inception import InceptionWeightsError
    from gensweep.platform.metrics.protocol import METRICS
    from gensweep.platform.metrics.refstats import ProtocolMismatch
    from gensweep.platform.spec import SpecError
    from gensweep.platform.trial.checkpoints import CheckpointError
    from gensweep.platform.trial.reeval import UnknownBackbone, reevaluate

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        row = reevaluate(args.checkpoint, backbone=args.backbone, num_samples=args.num_samples,
                         results_root=args.results_root, device=device)
    except (UnknownBackbone, CheckpointError, ProtocolMismatch, InceptionWeightsError, FileNotFoundError,
            SpecError) as e:
        print(f"gensweep: {e}", file=sys.stderr)
        return 2
    shown = set(METRICS.shown_columns())
    scores = ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k in shown)
    print(f"{row['experiment']} / {row['trial_id']} step {row['step']}: {scores}"
          f" ({row['backbone']}, N={row['eval_n']}); appended to the metrics table")
    return 0
