"""`gensweep export CHECKPOINT -o model.safetensors`: a trial's sampling network and config in one file."""
from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("export", help="write a trial checkpoint's EMA generator / denoiser and config to .safetensors")
    p.add_argument("checkpoint", help="a trial checkpoint directory (or its state.pt), local or s3://")
    p.add_argument("-o", "--output", required=True, help="the .safetensors file to write")
    p.set_defaults(func=export_command)


def export_command(args: argparse.Namespace) -> int:
    import os

    from gensweep.cli.options import print_err
    from gensweep.platform.trial.checkpoints import CheckpointError, load_checkpoint
    from gensweep.trainables.export import ExportError, export_model

    if not args.output.endswith(".safetensors"):
        print_err(f"-o {args.output}: the output must be a .safetensors file")
        return 2
    try:
        state, info = load_checkpoint(args.checkpoint)
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        model = export_model(state, args.output)
    except (CheckpointError, ExportError) as e:
        print_err(str(e))
        return 2
    params = sum(p.numel() for p in model.net.parameters())
    print(f"{info['experiment']} / {info['trial_id']} step {state['step']}: {model.family} {model.weights} weights"
          f" ({params:,} parameters) and config -> {args.output};"
          " load with gensweep.trainables.load_exported(path)")
    return 0
