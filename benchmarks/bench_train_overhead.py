"""P1: the GAN trainable's images/s inside Ray Train vs the same loop in bare PyTorch.

Same model, batch, device and data (the bundled MNIST, materialized), run side by side:
  bare   - train_gan(LocalContext) in this process, batches from an in-memory tensor;
  train  - the same loop on one Ray Train worker (TorchTrainer, Ray Data shard);
  inline - the same loop inline in a Tune trial actor (launcher: inline).
images/s is the trainable's own window throughput between evaluations (evaluation excluded).

    python benchmarks/bench_train_overhead.py --steps 600 --width 32
"""
from __future__ import annotations

import argparse
import tempfile

import numpy as np
import torch

from gensweep.platform.results import ResultsStore
from gensweep.platform.sweep.runner import run_sweep
from gensweep.platform.spec import parse_spec
from gensweep.trainables.context import LocalContext
from gensweep.trainables.gan.trainable import train_gan


def mnist_batches(batch_size: int, seed: int = 0):
    from gensweep.platform.data import read_arrays
    from gensweep.platform.data.prepare import ensure_mnist

    root = tempfile.mkdtemp()
    images, labels = read_arrays(ensure_mnist(root, 32))
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    y = torch.from_numpy(labels)

    def batches(epoch: int):
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed * 1000 + epoch))
        for i in range(0, len(x) - batch_size + 1, batch_size):
            idx = perm[i : i + batch_size]
            yield {"image": x[idx], "label": y[idx]}

    return batches


def bare(cfg: dict) -> float:
    ctx = LocalContext(cfg, mnist_batches(cfg["batch_size"]))
    train_gan(ctx)
    return float(np.mean([r["images_per_s"] for r in ctx.reports[1:]] or [ctx.reports[-1]["images_per_s"]]))


def under_ray(cfg: dict, launcher: str, root: str) -> float:
    spec = parse_spec({"name": f"p1-{launcher}", "trainable": cfg, "space": {},
                       "search": {"algorithm": "random", "num_trials": 1, "max_concurrent": 1},
                       "scheduler": {"kind": "none"}, "resources": {"launcher": launcher},
                       "eval": {"num_samples": 100}, "results": {"root": root}})
    out = run_sweep(spec, experiment=f"p1-{launcher}", verbose=0)
    m = ResultsStore.open(root).read("metrics", out.experiment).sort_values("step")
    rates = m["images_per_s"].tolist()
    return float(np.mean(rates[1:] or rates))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (a Ray worker with 1 CPU uses 1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = {"steps": args.steps, "eval_every": args.steps // 4, "width": args.width, "batch_size": args.batch_size,
           "num_classes": 0, "loss": "ns", "reg": "none"}
    rows = {"bare": bare({**cfg, "eval_every": args.steps // 4})}
    with tempfile.TemporaryDirectory() as root:
        for launcher in ("train", "inline"):
            rows[launcher] = under_ray(cfg, launcher, root)
    print("\nside   images/s   ratio to bare")
    for k, v in rows.items():
        print(f"{k:<6} {v:>9.1f}   {v / rows['bare']:.3f}")


if __name__ == "__main__":
    main()
