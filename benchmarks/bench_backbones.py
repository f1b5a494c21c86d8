"""Feature throughput (images/s) of each registered backbone on CPU.

For each backbone: build it (load time reported separately), one warm-up
batch, then time ``--repeats`` forward passes on random [-1, 1] images at the
given input size (default 32x32 gray, i.e. MNIST-sized generator output; the
backbone does its own resize).  Inception is slow on CPU, so it gets few
images.  Besides wall-clock img/s it prints images per CPU-second, which is
less distorted when other jobs share the machine.

Usage: python benchmarks/bench_backbones.py [--threads 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from gensweep.platform.metrics import BACKBONES, get_backbone

# name -> (batch size, timed batches)
DEFAULT_WORK = {"mnist-lenet": (500, 10), "inception-v3-tf": (4, 3)}


def bench(name: str, batch: int, repeats: int, channels: int, size: int) -> dict:
    t0 = time.perf_counter()
    backbone = get_backbone(name)
    load_s = time.perf_counter() - t0
    x = torch.rand(batch, channels, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        backbone(x)  # warm-up
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(repeats):
            out = backbone(x)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    n = batch * repeats
    return {
        "backbone": name,
        "protocol": backbone.protocol,
        "feature_dim": int(out["features"].shape[1]),
        "images": n,
        "batch": batch,
        "load_s": load_s,
        "wall_s": wall,
        "cpu_s": cpu,
        "img_per_s": n / wall,
        "img_per_cpu_s": n / cpu,  # robust to other load on the machine
    }


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--json", type=str, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, input {args.channels}x{args.size}x{args.size}, "
          f"load avg {os.getloadavg()[0]:.1f}")
    rows = []
    for name in BACKBONES:
        batch, repeats = DEFAULT_WORK.get(name, (32, 3))
        r = bench(name, batch, repeats, args.channels, args.size)
        rows.append(r)
        print(f"{name:16s} {r['img_per_s']:10.1f} img/s  {r['img_per_cpu_s']:10.1f} img/cpu-s  ({r['images']} images in {r['wall_s']:.2f} s, "
              f"cpu {r['cpu_s']:.2f} s, load {r['load_s']:.2f} s, {r['feature_dim']}-d)  [{r['protocol']}]")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return rows


if __name__ == "__main__":
    main()
