"""`gensweep sample CHECKPOINT`: draw images from a trained model (a trial checkpoint or an exported file)."""
from __future__ import annotations

import argparse

from gensweep.cli.options import at_least


def register(sub) -> None:
    p = sub.add_parser("sample", help="draw images from a trial checkpoint or an exported .safetensors model")
    p.add_argument("checkpoint", help="a trial checkpoint directory (or its state.pt), local or s3://, or a .safetensors"
                                      " file written by `gensweep export`")
    p.add_argument("-n", "--num", type=at_least(1), default=64, help="images to draw (default: 64)")
    p.add_argument("--class", dest="label", type=int, help="draw only this class (conditional models; default: uniform)")
    p.add_argument("--sampler", help="diffusion sampler (default: the model's first eval setting)")
    p.add_argument("--steps", type=at_least(1), help="diffusion sampling steps (default: the model's first eval setting)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latents / noise (default: 0)")
    p.add_argument("--device", help="torch device (default: cuda when present, else cpu)")
    p.add_argument("-o", "--output", required=True,
                   help="a .png file (one grid of all images) or a folder (one PNG per image, 000000.png, ...)")
    p.set_defaults(func=sample_command)


def open_model(source: str, device: str):
    """The :class:`~gensweep.trainables.export.ExportedModel` of a trial checkpoint or an exported file."""
    from gensweep.platform.trial.checkpoints import load_checkpoint
    from gensweep.trainables.export import load_exported, model_from_state

    if source.endswith(".safetensors"):
        return load_exported(source, device)
    state, _ = load_checkpoint(source, device)
    return model_from_state(state, device)


def write_images(images, output: str) -> list[str]:
    """Write NCHW images in [-1, 1] to ``output``: one grid PNG, or one PNG each into a folder."""
    import os

    from PIL import Image

    from gensweep.platform.trial.images import png_bytes, to_uint8

    if output.lower().endswith(".png"):
        os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
        with open(output, "wb") as f:
            f.write(png_bytes(images))
        return [output]
    os.makedirs(output, exist_ok=True)
    paths = []
    for i, x in enumerate(to_uint8(images)):
        path = os.path.join(output, f"{i:06d}.png")
        Image.fromarray(x[..., 0] if x.shape[-1] == 1 else x).save(path)
        paths.append(path)
    return paths


def sample_command(args: argparse.Namespace) -> int:
    import torch

    from gensweep.cli.options import print_err
    from gensweep.platform.trial.checkpoints import CheckpointError

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        model = open_model(args.checkpoint, device)
        sample = model.sampler(args.sampler, args.steps)
        labels = None if args.label is None else torch.full((args.num,), args.label, dtype=torch.long)
        images = sample(args.num, args.seed, labels=labels)
    except (CheckpointError, ValueError, FileNotFoundError) as e:  # ExportError, unknown sampler: ValueError
        print_err(str(e))
        return 2
    paths = write_images(images, args.output)
    what = "uniform classes" if args.label is None or not model.num_classes else f"class {args.label}"
    print(f"{args.num} {model.family} samples ({what}, seed {args.seed}) -> {args.output}"
          + (f" ({len(paths)} files)" if len(paths) > 1 else ""))
    return 0
