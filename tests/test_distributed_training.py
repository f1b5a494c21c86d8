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

import copy
import datetime
from pathlib import Path

import pytest
import torch
from torch import nn

from gensweep.platform.metrics.backbones import Backbone
from gensweep.platform.metrics.evaluator import EvalProtocol, generate_features, torch_distributed_all_gather
from gensweep.platform.trial.context import RayTrainContext
from gensweep.trainables.context import LocalContext
from gensweep.trainables.gan.architectures.layers import CondBatchNorm
from gensweep.trainables.gan.config import GanConfig
from gensweep.trainables.gan.phases import StepInputs
from gensweep.trainables.gan.state import GanState
from gensweep.trainables.gan.trainable import gan_phases, sampler, train_gan, train_step
from gensweep.trainables.rng import seed_everything

WORLD = 2
TINY = {"resolution": 16, "width": 8, "z_dim": 8, "num_classes": 0, "grid_size": 4, "eval_every": 100,
        "arch": "dcgan", "ema_beta": 0.9}
GLOBAL_BATCH, STEPS = 64, 3
EVAL = EvalProtocol(num_samples=10, batch_size=3, latent_seed=7)  # 4 batches, the last one of 1


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


# ----------------------------------------------------------------- what each rank runs
def _gan_loop(rank: int, world: int) -> dict:
    """The real loop, each rank on its own data (as a shard is); returns its final checkpoint state."""

    def batches(epoch):
        g = torch.Generator().manual_seed(100 * epoch + rank)
        for _ in range(4):
            yield {"image": torch.rand(8, 1, 16, 16, generator=g) * 2 - 1, "label": torch.zeros(8, dtype=torch.long)}

    ctx = GlooContext(rank, world, {**TINY, "steps": 5, "batch_size": 8}, batches)
    train_gan(ctx)
    return ctx.states[-1]


def _global_batch_steps(rank: int, world: int, ctx) -> dict:
    """STEPS GAN steps (:func:`train_step`) of a BatchNorm-free DCGAN on this rank's slice of the same
    global batches and latents, whatever ``world`` is; returns G, D and G_ema."""
    cfg = GanConfig.model_validate({**TINY, "steps": STEPS, "batch_size": GLOBAL_BATCH // world})
    seed_everything(cfg.seed * 1000)
    st = GanState(cfg, torch.device("cpu"))
    for m in st.G.modules():
        if isinstance(m, CondBatchNorm):
            m.bn = nn.Identity()
    st.G_ema = copy.deepcopy(st.G).eval().requires_grad_(False)
    st.opt["G"] = torch.optim.Adam(st.G.parameters(), **st.adam["G"])
    for net in (st.G, st.D, st.G_ema):
        ctx.broadcast_parameters(net)
    phases = gan_phases(st)
    per = GLOBAL_BATCH // world
    for step in range(STEPS):
        g = torch.Generator().manual_seed(step)
        real = (torch.rand(GLOBAL_BATCH, 1, 16, 16, generator=g) * 2 - 1)[rank * per : (rank + 1) * per]

        def z_fn(n: int, g=g) -> torch.Tensor:  # this rank's rows of a global latent batch
            return torch.randn(n * world, cfg.z_dim, generator=g)[rank * n : (rank + 1) * n]

        train_step(st, phases, StepInputs(step=step, real=real, labels=None, z_fn=z_fn), ctx, {}, {})
    return {name: copy.deepcopy(net.state_dict()) for name, net in (("G", st.G), ("D", st.D), ("G_ema", st.G_ema))}


class Pixels(Backbone):
    """A feature extractor without arithmetic: the first 32 pixels of each image."""

    name, feature_dim, protocol = "pixels", 32, "pixels-v0"

    def forward(self, images: torch.Tensor) -> dict:
        return {"features": images.flatten(1)[:, : self.feature_dim]}


def _eval_features(state: dict, rank: int, world: int) -> tuple[list[tuple[int, int]], torch.Tensor]:
    """The (count, seed) of every sample call this rank made, and the gathered features, when
    the EMA generator of ``state`` is scored over ``world`` ranks."""
    cfg = GanConfig.model_validate(state["config"])
    st = GanState(cfg, torch.device("cpu"))
    st.G_ema.load_state_dict(state["G_ema"])
    sample, calls = sampler(st.sample_net(), cfg, torch.device("cpu")), []

    def recorded(count: int, seed: int) -> torch.Tensor:
        calls.append((count, seed))
        return sample(count, seed)

    gather = torch_distributed_all_gather if world > 1 else None
    feats = generate_features(recorded, Pixels(), EVAL, rank=rank, world_size=world, all_gather=gather)
    return calls, torch.from_numpy(feats["features"])


def _rank_main(rank: int, world: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist

    _join_group(rank, world, init_file)
    try:
        state = _gan_loop(rank, world)
        ctx = GlooContext(rank, world, {}, lambda epoch: iter(()))
        out = {
            "loop": {k: state[k] for k in ("G", "D", "G_ema", "config")},
            "global_batch": _global_batch_steps(rank, world, ctx),
            "eval": _eval_features(state, rank, world),
        }
        torch.save(out, Path(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    """What each rank of one 2-process gloo group ended with (one group serves every test here)."""
    d = tmp_path_factory.mktemp("ranks")
    _spawn(_rank_main, str(d / "pg"), str(d))
    return [torch.load(d / f"rank{r}.pt") for r in range(WORLD)]


# ----------------------------------------------------------------------------- the tests
def test_every_rank_holds_the_same_nets_and_buffers(ranks):
    states = [r["loop"] for r in ranks]
    running = [k for k in states[0]["G"] if k.endswith("running_mean")]
    assert running, "the test needs a generator with BatchNorm"
    assert all(states[0]["G"][k].abs().sum() > 0 for k in running)  # the statistics did move
    a, b = states
    differ = {net: [k for k in a[net] if not torch.equal(a[net][k], b[net][k])] for net in ("G", "D", "G_ema")}
    assert differ == {"G": [], "D": [], "G_ema": []}, "nets differ between ranks"
    # G_ema is an average, not a copy of G
    assert not torch.equal(a["G"]["body.fc.weight"], a["G_ema"]["body.fc.weight"])


def test_two_ranks_of_32_equal_one_rank_of_64(ranks):
    single = _global_batch_steps(0, 1, LocalContext({}, lambda epoch: iter(())))
    cfg = GanConfig.model_validate({**TINY, "steps": STEPS})
    seed_everything(cfg.seed * 1000)  # the initialization the runs started from
    fresh = GanState(cfg, torch.device("cpu"))
    for net in ("G", "D", "G_ema"):
        for k, want in single[net].items():
            for r in range(WORLD):
                got = ranks[r]["global_batch"][net][k]
                torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6, msg=f"rank {r} {net}.{k}")
    # the steps moved the weights far beyond that tolerance (so a wrong average could not pass)
    moved = (single["G"]["body.fc.weight"] - fresh.G.state_dict()["body.fc.weight"]).abs().max()
    assert moved > 1e-4


def test_evaluation_samples_are_the_single_process_set(ranks):
    calls = [ranks[r]["eval"][0] for r in range(WORLD)]
    single_calls, single_feats = _eval_features(ranks[0]["loop"], 0, 1)
    batches = EVAL.batches()
    assert single_calls == [(n, EVAL.latent_seed + i) for i, n in batches]
    for r in range(WORLD):  # batch i on rank i % 2, with the single process's seed
        assert calls[r] == [(n, EVAL.latent_seed + i) for i, n in batches if i % WORLD == r]
        torch.testing.assert_close(ranks[r]["eval"][1], single_feats, rtol=0, atol=1e-6)
    assert single_feats.shape == (EVAL.num_samples, Pixels.feature_dim)
