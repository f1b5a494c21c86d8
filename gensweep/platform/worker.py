"""What runs on every Ray Train worker: the platform side of the TrialContext.

``train_loop_per_worker`` builds a :class:`RayTrainContext` and hands it to the trainable
family's loop. Everything Ray-specific (reports, checkpoints, dataset shards, process group)
stays here; the trainable only sees the context interface.
"""
from __future__ import annotations

import os
import tempfile
import time
from typing import Any, Iterator, Mapping

import torch
import torch.distributed as dist

import ray.train
import ray.train.torch

from gensweep.platform import images
from gensweep.platform.data import ShardLoader, StorageOptions
from gensweep.platform.artifacts import put_bytes
from gensweep.platform.data.storage import join_uri
from gensweep.platform.evaluation import WorkerEvaluator
from gensweep.trainables.families import FAMILIES

STATE_FILE = "state.pt"


class RayTrainContext:
    def __init__(self, cfg: Mapping[str, Any]):
        ctx = ray.train.get_context()
        self.rank = ctx.get_world_rank()
        self.world_size = ctx.get_world_size()
        self.device = ray.train.torch.get_device()
        self.config = dict(cfg["trial"])
        self._cfg = cfg
        data = cfg["data"]
        self._loader = ShardLoader(
            ray.train.get_dataset_shard("train"),
            batch_size=self.config["batch_size"],
            seed=int(data["seed"]) * 7919 + int(self.config.get("seed", 0)),
            rank=self.rank,
            hflip=bool(data.get("hflip", False)),
            device=self.device,
        )
        self._evaluator = WorkerEvaluator.from_config(cfg["eval_runtime"], device=self.device)
        self._artifacts = cfg["artifacts_uri"]
        self._storage = StorageOptions(**(cfg.get("storage") or {}))

    # -- data ------------------------------------------------------------------------
    def epoch_batches(self, epoch: int) -> Iterator[Mapping[str, torch.Tensor]]:
        return self._loader.epoch_batches(epoch)

    def loader_wait_s(self) -> float:
        return self._loader.wait_s

    # -- data parallel ---------------------------------------------------------------
    def broadcast_parameters(self, module: torch.nn.Module) -> None:
        if self.world_size == 1:
            return
        with torch.no_grad():
            for t in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(t.data, src=0)

    def reduce_gradients(self, module: torch.nn.Module) -> None:
        if self.world_size == 1:
            return
        params = [p for p in module.parameters() if p.grad is not None]
        if not params:
            return
        flat = torch.cat([p.grad.flatten() for p in params])
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for p in params:
            n = p.grad.numel()
            p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
            offset += n

    # -- evaluation, reports, checkpoints -------------------------------------------
    def evaluate(self, sample_fn, step: int) -> dict[str, Any]:
        return self._evaluator.evaluate(sample_fn, step, rank=self.rank, world_size=self.world_size)

    def report(self, metrics: Mapping[str, Any], state: Mapping[str, Any] | None = None) -> None:
        metrics = dict(metrics)
        if state is None or self.rank != 0:
            ray.train.report(metrics, checkpoint=None)
            return
        with tempfile.TemporaryDirectory(prefix="gensweep-ckpt-") as d:
            torch.save(dict(state), os.path.join(d, STATE_FILE))
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(d))

    def load_state(self) -> dict[str, Any] | None:
        ckpt = ray.train.get_checkpoint()
        if ckpt is None:
            return None
        with ckpt.as_directory() as d:
            return load_state_file(os.path.join(d, STATE_FILE), self.device)

    def save_samples(self, imgs: torch.Tensor, step: int) -> str | None:
        if self.rank != 0:
            return None
        uri = join_uri(self._artifacts, f"samples-step{step:07d}.png")
        return put_bytes(uri, images.png_bytes(imgs), self._storage)


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be loaded (truncated, corrupt, or not a gensweep state)."""


def load_state_file(path: str, device: torch.device | str = "cpu") -> dict[str, Any]:
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} has no {STATE_FILE}") from None
    except Exception as e:  # torch raises several types for truncated or foreign files
        raise CheckpointError(f"checkpoint {path} cannot be loaded ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict) or "step" not in state:
        raise CheckpointError(f"checkpoint {path} is not a gensweep trial state (no 'step')")
    return state


def train_loop_per_worker(cfg: dict[str, Any]) -> None:
    t0 = time.perf_counter()
    family = FAMILIES.get(cfg["family"])
    ctx = RayTrainContext(cfg)
    family.train(ctx)
    if ctx.rank == 0:
        print(f"[gensweep] worker loop finished in {time.perf_counter() - t0:.1f}s", flush=True)
