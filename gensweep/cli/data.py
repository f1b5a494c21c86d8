"""`gensweep data prepare SOURCE DEST`: a dataset to fingerprinted Parquet shards + manifest."""
from __future__ import annotations

import argparse
import sys


def register(sub) -> None:
    data = sub.add_parser("data", help="prepare datasets")
    dsub = data.add_subparsers(dest="data_command", required=True)
    p = dsub.add_parser("prepare", help="convert a source to Parquet shards with a manifest")
    p.add_argument("source", help="'mnist', an image folder, a .npz/.npy file, CIFAR python archive, Hugging Face"
                   " Parquet/Arrow, WebDataset .tar shards (local or s3://), or torchvision:NAME")
    p.add_argument("dest", help="local path or s3://bucket/prefix")
    p.add_argument("--resolution", type=int, help="square side in pixels (default: the source's)")
    p.add_argument("--channels", type=int, choices=[1, 3], help="1 gray or 3 RGB (default: the source's)")
    p.add_argument("--resize", default="pad", choices=["pad", "stretch", "center-crop", "resize"],
                   help="to a square: pad, stretch ('resize' is its older name) or center-crop")
    p.add_argument("--resize-filter", default="bicubic",
                   choices=["bicubic", "bilinear", "lanczos", "box", "hamming", "nearest"],
                   help="PIL filter of every resize (default bicubic, antialiased when shrinking)")
    p.add_argument("--bad-records", default="fail", choices=["fail", "skip"],
                   help="an unreadable image: fail naming it, or skip and count it")
    p.add_argument("--fraction", type=float, default=1.0, help="stratified, seeded subset for limited-data studies")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shard-rows", type=int, default=2048)
    p.add_argument("--endpoint-url", help="S3 endpoint (default: AWS_ENDPOINT_URL or AWS)")
    p.add_argument("--region")
    p.add_argument("--profile", help="AWS profile (credentials come only from the environment/profile)")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=prepare_command)


def prepare_command(args: argparse.Namespace) -> int:
    from gensweep.platform.data import (
        DatasetExistsError,
        SourceError,
        StorageOptions,
        prepare,
    )

    storage = StorageOptions(endpoint_url=args.endpoint_url, region=args.region, profile=args.profile)
    try:
        m = prepare(args.source, args.dest, resolution=args.resolution, channels=args.channels, resize=args.resize,
                    resize_filter=args.resize_filter, bad_records=args.bad_records, fraction=args.fraction, seed=args.seed, shard_rows=args.shard_rows, storage=storage,
                    overwrite=args.overwrite)
    except (DatasetExistsError, SourceError, OSError, ValueError) as e:
        print(f"gensweep: {e}", file=sys.stderr)
        return 2
    print(f"{args.dest}: {m.count} images {m.resolution}x{m.resolution}x{m.channels}, labels {m.labels}, "
          f"{len(m.shards)} shards, fingerprint {m.fingerprint}")
    if m.skipped_records:
        print(f"skipped {m.skipped_records} unreadable images (--bad-records skip), e.g. {', '.join(m.skipped_examples)}")
    if m.ignored_files:
        print(f"ignored {m.ignored_files} files that are not images, e.g. {', '.join(m.ignored_examples)}")
    return 0
