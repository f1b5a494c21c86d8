"""Multi-worker GAN trials equal single-worker ones: 2-process gloo groups on CPU, no Ray.

* every rank holds the same G, D, G_ema and buffers (BatchNorm running statistics included)
  after a few steps of the real loop (:func:`train_gan`), although each rank trains on its own data;
* 2 ranks x batch 32 and 1 rank x batch 64 over the same global batches and latents give the same
  weights to float tolerance (the GAN step of the loop, on a DCGAN with its BatchNorms removed:
  with BatchNorm each rank normalizes by its own half-batch, see the README's "How a sweep runs");
* the evaluation samples of 2 ranks are the single-process set: the same (count, seed) per batch
  index, and the same features.

The collectives are the platform's own (:class:`RayTrainContext`'s), run on a gloo group
started here instead of by Ray Train.
"""
from __future__ import annotations

import datetime
from pathlib import Path

import pytest
import torch

from gensweep.platform.trial.context import RayTrainContext
from gensweep.trainables.context import LocalContext

WORLD = 2
TINY = {"resolution": 16, "width": 8, "z_dim": 8, "num_classes": 0, "grid_size": 4, "eval_every": 100,
        "arch": "dcgan", "ema_beta": 0.9}


class GlooContext(LocalContext):
    """A :class:`LocalContext` whose collectives are the platform's, on the default process group."""

    broadcast_parameters = RayTrainContext.broadcast_parameters
    reduce_gradients = RayTrainContext.reduce_gradients
    sync_buffers = RayTrainContext.sync_buffers

    def __init__(self, rank: int, world: int, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rank, self.world_size = rank, world


def _spawn(fn, *args) -> None:
    """Run ``fn(rank, WORLD, init_file, *args)`` in WORLD spawned processes joined in a gloo group."""
    import torch.multiprocessing as mp

    ctx = mp.start_processes(fn, args=(WORLD, *args), nprocs=WORLD, join=False, start_method="spawn")
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=180)
    try:
        while not ctx.join(timeout=1):
            assert datetime.datetime.now() < deadline, "the gloo group timed out"
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()


def _join_group(rank: int, world: int, init_file: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=60))


# ----------------------------------------------------- every rank holds the same state
def _train_gan_rank(rank: int, world: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist

    from gensweep.trainables.gan.trainable import train_gan

    _join_group(rank, world, init_file)

    def batches(epoch):  # each rank its own data, as a shard is
        g = torch.Generator().manual_seed(100 * epoch + rank)
        for _ in range(4):
            yield {"image": torch.rand(8, 1, 16, 16, generator=g) * 2 - 1, "label": torch.zeros(8, dtype=torch.long)}

    ctx = GlooContext(rank, world, {**TINY, "steps": 5, "batch_size": 8}, batches)
    try:
        train_gan(ctx)
        state = ctx.states[-1]
        torch.save({k: state[k] for k in ("G", "D", "G_ema")}, Path(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_every_rank_holds_the_same_nets_and_buffers(tmp_path):
    _spawn(_train_gan_rank, str(tmp_path / "pg"), str(tmp_path))
    states = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    running = [k for k in states[0]["G"] if k.endswith("running_mean")]
    assert running, "the test needs a generator with BatchNorm"
    assert all(states[0]["G"][k].abs().sum() > 0 for k in running)  # the statistics did move
    for net in ("G", "D", "G_ema"):
        a, b = states
        assert a[net].keys() == b[net].keys()
        differ = [k for k in a[net] if not torch.equal(a[net][k], b[net][k])]
        assert not differ, f"{net} differs between ranks in {differ}"
    # G_ema is an average, not a copy of G
    assert not torch.equal(states[0]["G"]["body.fc.weight"], states[0]["G_ema"]["body.fc.weight"])
