"""Evaluator: fixed-latent batching, protocol checks, and 2-process gloo evaluation == single process."""

from __future__ import annotations

import json
import socket
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch

from gensweep.platform.metrics import (
    EvalProtocol,
    ProtocolMismatch,
    RefStats,
    RefStatsKey,
    evaluate,
    get_backbone,
    mnist_split,
    reference_features,
    torch_distributed_all_gather,
)

# 60 samples in batches of 8 -> 8 batches (last has 4): rank 0 gets 32 rows, rank 1 gets 28 (uneven gather)
PROTOCOL = EvalProtocol(
    backbone="mnist-lenet",
    num_samples=60,
    batch_size=8,
    latent_seed=1234,
    metrics=("fid", "kid", "pr", "is"),
    kid_subsets=10,
    kid_subset_size=30,
    is_splits=3,
)


class TinyGenerator(torch.nn.Module):
    """A fixed random 'generator': z (16-d) -> tanh(linear) -> 1x32x32 image in [-1, 1]."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(99)
        self.weight = torch.randn(16, 32 * 32, generator=g) * 0.5
        self.bias = torch.randn(32 * 32, generator=g) * 0.5

    def sample(self, count: int, seed: int) -> torch.Tensor:
        z = torch.randn(count, 16, generator=torch.Generator().manual_seed(seed))
        return torch.tanh(z @ self.weight + self.bias).view(count, 1, 32, 32)


def make_ref(n: int = 200) -> RefStats:
    backbone = get_backbone("mnist-lenet")
    images, _ = mnist_split("heldout")
    key = RefStatsKey(dataset="mnist-test", split="heldout", resolution=32, protocol=backbone.protocol, n=n, resize="pad")
    return RefStats.from_features(key, reference_features(images[::5][:n], backbone, batch_size=100))


@pytest.fixture(scope="module")
def ref():
    return make_ref()


def test_batches_and_protocol_validation():
    assert PROTOCOL.batches() == [(i, 8) for i in range(7)] + [(7, 4)]
    assert EvalProtocol(metrics=["fid", "kid"]).metrics == ("fid", "kid")
    with pytest.raises(ValueError, match="unknown metrics"):
        EvalProtocol(metrics=("fid", "lpips"))


def test_evaluate_single_process_uses_fixed_latents(ref):
    gen, backbone = TinyGenerator(), get_backbone("mnist-lenet")
    seeds = []

    def sample_fn(count, seed):
        seeds.append(seed)
        return gen.sample(count, seed)

    a = evaluate(sample_fn, backbone, ref, PROTOCOL)
    b = evaluate(gen.sample, backbone, ref, PROTOCOL)
    assert seeds == [1234 + i for i in range(8)]
    assert a == b  # deterministic: same latents, same numbers
    provenance = {"eval_n", "backbone", "eval_protocol", "refstats_key"}
    assert set(a) == {"fid", "kid", "kid_std", "precision", "recall", "is", "is_std"} | provenance
    assert a["eval_n"] == 60 and a["backbone"] == "mnist-lenet" and a["refstats_key"] == ref.key.slug
    assert a["eval_protocol"] == backbone.protocol
    assert a["fid"] > 0 and 0 <= a["precision"] <= 1 and 1 <= a["is"] <= 10
    only_fid = evaluate(gen.sample, backbone, ref, EvalProtocol(num_samples=60, batch_size=8, latent_seed=1234))
    assert set(only_fid) == {"fid"} | provenance and only_fid["fid"] == a["fid"]
    # real digits (shuffled: the file is sorted by class) score far better than the random generator
    digits, _ = mnist_split("train")
    digits = digits[np.random.default_rng(0).permutation(len(digits))]
    real = evaluate(
        lambda c, s: torch.from_numpy(digits[(s - 1234) * 8 : (s - 1234) * 8 + c]).float().unsqueeze(1) / 127.5 - 1,
        backbone,
        ref,
        EvalProtocol(num_samples=60, batch_size=8, latent_seed=1234, metrics=("fid",)),
    )
    assert real["fid"] * 5 < a["fid"]


def test_evaluate_refuses_other_protocols(ref):
    gen, backbone = TinyGenerator(), get_backbone("mnist-lenet")
    with pytest.raises(ProtocolMismatch, match="resolution: reference=32 vs other=64"):
        evaluate(lambda c, s: torch.zeros(c, 1, 64, 64), backbone, ref, PROTOCOL)
    with pytest.raises(ProtocolMismatch, match="backbone"):
        evaluate(gen.sample, backbone, ref, EvalProtocol(backbone="inception-v3-tf"))
    other = RefStats(key=RefStatsKey(**{**ref.key.to_dict(), "protocol": "mnist-lenet-v0"}), mu=ref.mu, sigma=ref.sigma, features=ref.features)
    with pytest.raises(ProtocolMismatch, match="protocol: reference='mnist-lenet-v0'"):
        evaluate(gen.sample, backbone, other, PROTOCOL)
    with pytest.raises(ValueError, match="all_gather"):
        evaluate(gen.sample, backbone, ref, PROTOCOL, rank=0, world_size=2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dist_worker(rank: int, world_size: int, port: int, ref: RefStats, out_dir: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size, timeout=timedelta(seconds=60)
    )
    try:
        gathered = torch_distributed_all_gather(torch.full((rank + 1, 3), float(rank)))  # variable-size rows
        assert [t.shape[0] for t in gathered] == list(range(1, world_size + 1))
        assert all((t == r).all() for r, t in enumerate(gathered))
        solo = dist.new_group([1])  # every rank creates it; only rank 1 is in it: a one-rank gather there
        if rank == 1:
            (own,) = torch_distributed_all_gather(torch.full((2, 3), 5.0), group=solo)
            assert torch.equal(own, torch.full((2, 3), 5.0))
        result = evaluate(
            TinyGenerator().sample,
            get_backbone("mnist-lenet"),
            ref,
            PROTOCOL,
            rank=rank,
            world_size=world_size,
            all_gather=torch_distributed_all_gather,
        )
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()


def _gather_in_a_one_rank_group(tensor: torch.Tensor) -> list[torch.Tensor]:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1,
                            timeout=timedelta(seconds=60))
    try:
        return torch_distributed_all_gather(tensor)
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_match_single_process(ref, tmp_path):
    import torch.multiprocessing as tmp

    # in this process too (mutation tools only see calls made in the test's own process): one rank, its own rows
    rows = torch.arange(6, dtype=torch.float64).view(3, 2)
    (alone,) = _gather_in_a_one_rank_group(rows)
    assert torch.equal(alone, rows) and alone.dtype == torch.float64
    single = evaluate(TinyGenerator().sample, get_backbone("mnist-lenet"), ref, PROTOCOL)

    ctx = tmp.start_processes(
        _dist_worker, args=(2, _free_port(), ref, str(tmp_path)), nprocs=2, join=False, start_method="spawn"
    )
    deadline = time.time() + 180
    try:
        while not ctx.join(timeout=1):
            assert time.time() < deadline, "distributed evaluation timed out"
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert results[0] == results[1]
    for name in ("fid", "kid", "kid_std", "precision", "recall", "is", "is_std"):
        assert results[0][name] == pytest.approx(single[name], rel=1e-6, abs=1e-12), name
    assert results[0]["eval_n"] == single["eval_n"] == 60
    assert results[0]["refstats_key"] == single["refstats_key"]
