"""`gensweep refstats import FILE.npz --name NAME`: register published reference statistics; `refstats ls`."""
from __future__ import annotations

import argparse
import re

from gensweep.cli.options import add_root, print_err


def register(sub) -> None:
    p = sub.add_parser("refstats", help="reference statistics in a results root: import published ones, list them")
    cmds = p.add_subparsers(dest="refstats_command", required=True)
    imp = cmds.add_parser("import", help="register a pytorch-fid / clean-fid .npz (mu, sigma) as eval.reference NAME")
    imp.add_argument("file", help="the .npz (local or s3://) with mu and sigma (and features, if kept)")
    imp.add_argument("--name", required=True, help="the name a spec uses as eval.reference")
    add_root(imp)
    imp.add_argument("--backbone", default="inception-v3-tf",
                     help="the backbone whose features the statistics hold (default: inception-v3-tf)")
    imp.add_argument("--resolution", type=int, required=True,
                     help="side of the real images the statistics were made from (must equal data.resolution)")
    imp.add_argument("--resize", default="unknown", help="how those images were brought to that side (recorded)")
    imp.add_argument("--split", default="train", help="which split of the dataset (recorded; default: train)")
    imp.add_argument("--n", type=int, help="how many real images (recorded; taken from the features when present)")
    imp.set_defaults(func=import_command)
    ls = cmds.add_parser("ls", help="list the imported statistics of a results root")
    add_root(ls)
    ls.set_defaults(func=ls_command)


def _registry(root: str):
    from gensweep.platform.metrics.refstats import RefStatsRegistry
    from gensweep.platform.storage.layout import RootLayout

    return RefStatsRegistry(RootLayout.of(root).refstats)


def import_command(args: argparse.Namespace) -> int:
    from gensweep.platform.metrics.backbones import BACKBONES
    from gensweep.platform.metrics.refstats import REFERENCE_NAME, import_published
    from gensweep.platform.storage.artifacts import get_bytes

    if not re.match(REFERENCE_NAME, args.name):
        print_err(f"--name: {args.name!r} must be letters, digits, '.', '_' or '-' (starting with a letter or digit)")
        return 2
    if args.backbone not in BACKBONES:
        print_err(f"--backbone: unknown backbone {args.backbone!r}; known: {', '.join(sorted(BACKBONES))}")
        return 2
    backbone = BACKBONES[args.backbone]  # the class: its protocol and feature size, without loading weights
    try:
        data = get_bytes(args.file)
        stats = import_published(_registry(args.root), args.name, data, protocol=backbone.protocol,
                                 feature_dim=backbone.feature_dim, resolution=args.resolution, resize=args.resize,
                                 split=args.split, n=args.n, source=args.file)
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        print_err(str(e))
        return 2
    floor = "no FID floor (no features)" if stats.fid_floor is None else f"FID floor {stats.fid_floor:.4g}"
    print(f"{args.name}: {stats.key.slug} ({backbone.protocol}, {args.resolution}px, n={stats.key.n}; {floor});"
          f" use it as eval.reference: {args.name}")
    return 0


def ls_command(args: argparse.Namespace) -> int:
    registry = _registry(args.root)
    for name in registry.names():
        key = registry.named(name)
        print(f"{name}\t{key.protocol}\t{key.resolution}px\tn={key.n}\t{key.slug}")
    return 0
