"""P6: how efficiently the trainables use a GPU.

  packing    - the GAN trainable's images/s as one trial alone vs --pack trials sharing the device,
               each trial in its own process, started together: how a sweep packs trials with
               ``gpus_per_worker: 1/pack`` (each trial's Ray Train worker is a process of its own).
               Aggregate = sum of the trials' rates; the ratio to one trial alone is the packing gain.
  options    - images/s of both families with fp32, bf16, channels_last, both, and torch.compile.
  features   - FID feature throughput (images/s) of the inception-v3-tf and mnist-lenet backbones.
  eval share - fraction of a GAN trial's wall time spent evaluating (FID at every eval_every).

images/s is the trainable's own throughput between evaluations; its first window (warm-up,
compilation) is dropped and the median of the others is reported. Data are random images kept
on the host and copied to the device per batch, as the data loader delivers them.

    python benchmarks/bench_gpu.py                          # a CUDA machine (full sizes)
    python benchmarks/bench_gpu.py --device cpu --quick     # smoke check of the script
"""
from __future__ import annotations

import argparse
import datetime
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from gensweep.platform.metrics import get_backbone
from gensweep.platform.metrics.evaluator import EvalProtocol, evaluate
from gensweep.platform.metrics.features import reference_features
from gensweep.platform.metrics.refstats import RefStats, RefStatsKey
from gensweep.trainables.context import LocalContext
from gensweep.trainables.diffusion.trainable import train_diffusion
from gensweep.trainables.efficiency import compile_problem
from gensweep.trainables.gan.trainable import train_gan

TRAIN: dict[str, Callable[[LocalContext], dict[str, Any]]] = {"gan": train_gan, "diffusion": train_diffusion}
VARIANTS: dict[str, dict[str, Any]] = {
    "fp32": {},
    "bf16": {"precision": "bf16"},
    "channels_last": {"channels_last": True},
    "bf16 + channels_last": {"precision": "bf16", "channels_last": True},
    "compile": {"compile": "default"},
    "bf16 + channels_last + compile": {"precision": "bf16", "channels_last": True, "compile": "default"},
}


@dataclass(frozen=True)
class Sizes:
    """Workload sizes; ``full`` mirrors the families' defaults on MNIST-32."""

    gan: dict[str, Any]
    diffusion: dict[str, Any]
    eval_trial: dict[str, Any]  # the GAN trial whose evaluation share is measured
    eval_samples: int  # images scored per evaluation (the spec's eval.num_samples)
    feature_work: dict[str, tuple[int, int]] = field(default_factory=dict)  # backbone -> (batch, timed batches)


FULL = Sizes(
    gan={"steps": 600, "eval_every": 100, "batch_size": 64, "resolution": 32, "channels": 1, "grid_size": 4},
    diffusion={"steps": 300, "eval_every": 50, "batch_size": 64, "resolution": 32, "channels": 1, "grid_size": 4,
               "eval_samplers": ["ddim:2"]},
    eval_trial={"steps": 1000, "eval_every": 200, "batch_size": 64, "resolution": 32, "channels": 1, "grid_size": 64},
    eval_samples=1000,
    feature_work={"inception-v3-tf": (250, 8), "mnist-lenet": (250, 40)},
)
QUICK = Sizes(
    gan={"steps": 6, "eval_every": 2, "batch_size": 8, "resolution": 16, "channels": 1, "width": 8, "z_dim": 8,
         "num_classes": 0, "grid_size": 2},
    diffusion={"steps": 6, "eval_every": 2, "batch_size": 8, "resolution": 16, "channels": 1, "width": 8,
               "channel_mult": [1, 2], "num_classes": 0, "grid_size": 2, "eval_samplers": ["ddim:2"]},
    eval_trial={"steps": 4, "eval_every": 2, "batch_size": 8, "resolution": 32, "channels": 1, "width": 8, "z_dim": 8,
                "num_classes": 0, "grid_size": 2},
    eval_samples=16,
    feature_work={"inception-v3-tf": (2, 1), "mnist-lenet": (64, 2)},
)


def random_batches(cfg: dict[str, Any], seed: int = 0, count: int = 16):
    """``count`` batches of random images and labels per epoch, held on the host."""
    n, res, ch = cfg["batch_size"] * count, cfg["resolution"], cfg["channels"]
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, ch, res, res, generator=g) * 2 - 1
    y = torch.randint(0, 10, (n,), generator=g)

    def batches(epoch: int):
        for i in range(0, n, cfg["batch_size"]):
            yield {"image": x[i : i + cfg["batch_size"]], "label": y[i : i + cfg["batch_size"]]}

    return batches


def window_rate(reports: list[dict[str, Any]]) -> float:
    """Median images/s of the windows after the first (warm-up / compilation)."""
    rates = [r["images_per_s"] for r in reports]
    return statistics.median(rates[1:] or rates)


def train_rate(family: str, cfg: dict[str, Any], device: str) -> float:
    ctx = LocalContext(cfg, random_batches(cfg), device=device)
    TRAIN[family](ctx)
    return window_rate(ctx.reports)


# -- packing ---------------------------------------------------------------------------------
def _packed_trial(cfg: dict[str, Any], device: str, threads: int, seed: int, barrier, out) -> None:
    torch.set_num_threads(threads)
    cfg = {**cfg, "seed": seed}
    ctx = LocalContext(cfg, random_batches(cfg, seed), device=device)
    torch.zeros(1, device=device)  # device context created before the common start
    barrier.wait()
    t0 = time.perf_counter()
    train_gan(ctx)
    out.put({"rate": window_rate(ctx.reports), "images": cfg["steps"] * cfg["batch_size"], "t0": t0,
             "t1": time.perf_counter()})


def packed(cfg: dict[str, Any], device: str, trials: int, threads: int) -> dict[str, float]:
    """``trials`` GAN trials, one process each, started together on ``device``."""
    spawn = mp.get_context("spawn")  # CUDA cannot be used in a forked child
    barrier, out = spawn.Barrier(trials), spawn.Queue()
    procs = [spawn.Process(target=_packed_trial, args=(cfg, device, threads, i, barrier, out)) for i in range(trials)]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"a packed trial exited with code {p.exitcode}")
    span = max(r["t1"] for r in results) - min(r["t0"] for r in results)
    return {"rate": sum(r["rate"] for r in results), "span_rate": sum(r["images"] for r in results) / span}


# -- features and evaluation -------------------------------------------------------------------
def feature_rate(name: str, batch: int, repeats: int, device: str) -> float:
    backbone = get_backbone(name).to(device).eval()
    x = torch.rand(batch, 1, 32, 32, generator=torch.Generator().manual_seed(0)).mul(2).sub(1).to(device)
    with torch.no_grad():
        backbone(x)  # warm-up
        sync(device)
        t0 = time.perf_counter()
        for _ in range(repeats):
            backbone(x)
        sync(device)
    return batch * repeats / (time.perf_counter() - t0)


def eval_share(cfg: dict[str, Any], backbone_name: str, samples: int, device: str) -> dict[str, float]:
    """Fraction of a GAN trial's wall time spent in evaluation (FID of ``samples`` images per eval)."""
    backbone = get_backbone(backbone_name).to(device).eval()
    real = torch.rand(samples, 1, cfg["resolution"], cfg["resolution"], generator=torch.Generator().manual_seed(1))
    key = RefStatsKey(dataset="random", split="train", resolution=cfg["resolution"], protocol=backbone.protocol,
                      n=samples, resize="none")
    ref = RefStats.from_features(key, reference_features(real * 2 - 1, backbone, batch_size=250))
    protocol = EvalProtocol(backbone=backbone_name, num_samples=samples, batch_size=min(250, samples))
    ctx = LocalContext(cfg, random_batches(cfg), device=device,
                       evaluator=lambda sample, step: evaluate(sample, backbone, ref, protocol))
    t0 = time.perf_counter()
    train_gan(ctx)
    wall = time.perf_counter() - t0
    spent = sum(r["eval_time_s"] for r in ctx.reports)
    return {"share": spent / wall, "eval_s": spent, "wall_s": wall, "evals": len(ctx.reports)}


def sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


# -- report ------------------------------------------------------------------------------------
def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def describe(device: str) -> str:
    d = torch.device(device)
    name = torch.cuda.get_device_name(d) if d.type == "cuda" else platform.processor() or platform.machine()
    return (f"{datetime.date.today()}, {name}, torch {torch.__version__}, "
            f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke check of the script, not a measurement")
    p.add_argument("--pack", type=int, default=4, help="trials sharing the device in the packing measurement")
    p.add_argument("--threads", type=int, default=1, help="CPU threads per trial process")
    p.add_argument("--no-compile", action="store_true", help="leave out the torch.compile variants")
    args = p.parse_args(argv)
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        sys.exit("bench_gpu: no CUDA device is visible (torch.cuda.is_available() is False); run it on a GPU "
                 "machine, or pass --device cpu --quick for a smoke check of the script")
    sizes = QUICK if args.quick else FULL
    torch.set_num_threads(args.threads)
    print(f"# bench_gpu ({'quick smoke check' if args.quick else 'full'}) on {args.device}: {describe(args.device)}")
    print(f"command: python benchmarks/bench_gpu.py {' '.join(argv if argv is not None else sys.argv[1:])}\n")

    one = packed(sizes.gan, args.device, 1, args.threads)
    many = packed(sizes.gan, args.device, args.pack, args.threads)
    print(f"## Packing: GAN trials on one device (batch {sizes.gan['batch_size']}, {sizes.gan['resolution']}px)\n")
    print(table(["trials", "aggregate img/s (window medians)", "aggregate img/s (all images / wall span)", "ratio"], [
        ["1", f"{one['rate']:,.0f}", f"{one['span_rate']:,.0f}", "1.00x"],
        [str(args.pack), f"{many['rate']:,.0f}", f"{many['span_rate']:,.0f}",
         f"{many['rate'] / one['rate']:.2f}x (span: {many['span_rate'] / one['span_rate']:.2f}x)"],
    ]) + "\n")

    problem = "left out (--no-compile)" if args.no_compile else compile_problem(torch.device(args.device).type)
    rates: dict[tuple[str, str], float] = {}
    for name, opts in VARIANTS.items():
        for family in TRAIN:
            if not ("compile" in opts and problem):
                rates[name, family] = train_rate(family, {**getattr(sizes, family), **opts}, args.device)

    def cell(name: str, family: str) -> str:
        if (name, family) not in rates:
            return f"n/a: {problem}"
        return f"{rates[name, family]:,.0f} ({rates[name, family] / rates['fp32', family]:.2f}x)"

    print("## Options: training images/s (x fp32)\n")
    print(table(["setting", *TRAIN], [[name, *(cell(name, f) for f in TRAIN)] for name in VARIANTS]) + "\n")

    rows = []
    for name, (batch, repeats) in sizes.feature_work.items():
        try:
            rows.append([name, f"{feature_rate(name, batch, repeats, args.device):,.0f}", f"{batch} x {repeats}"])
        except RuntimeError as e:  # e.g. the Inception weights package is not installed
            rows.append([name, f"n/a: {e}", ""])
    print("## FID features: images/s (32x32 gray input, the backbone resizes)\n")
    print(table(["backbone", "img/s", "batch x timed batches"], rows) + "\n")

    rows = []
    for name in sizes.feature_work:
        try:
            r = eval_share(sizes.eval_trial, name, sizes.eval_samples, args.device)
        except RuntimeError as e:
            rows.append([name, f"n/a: {e}", "", ""])
            continue
        rows.append([name, f"{100 * r['share']:.1f} %", f"{r['eval_s']:.2f} s of {r['wall_s']:.2f} s", str(r["evals"])])
    t = sizes.eval_trial
    print(f"## Evaluation share of a GAN trial ({t['steps']} steps, FID of {sizes.eval_samples} samples "
          f"every {t['eval_every']} steps)\n")
    print(table(["backbone", "share of wall time", "eval / wall", "evals"], rows))


if __name__ == "__main__":
    main()
