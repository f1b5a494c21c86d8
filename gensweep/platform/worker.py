"""The platform side of the TrialContext: what runs where the trainable loop runs.

Two contexts share everything but how they report and checkpoint:
- :class:`RayTrainContext`, on each worker of a Ray Train ``TorchTrainer`` (the default): reports
  and checkpoints go through ``ray.train.report``, reaching Tune via ``TuneReportCallback``;
- :class:`TuneInlineContext`, for single-worker trials run inline in the Tune trial actor
  (``resources.launcher: inline``): reports and checkpoints go through ``ray.tune.report``.
The trainable only sees the context interface, so its loop is the same in both.
"""
from __future__ import annotations

import os
import tempfile
import time
from typing import Any, Iterator, Mapping, Optional

import torch
import torch.distributed as dist

from gensweep.platform import images
from gensweep.platform.artifacts import put_bytes
from gensweep.platform.checkpoints import STATE_FILE, load_state_file, write_checkpoint_dir
from gensweep.platform.data import ShardLoader, StorageOptions
from gensweep.platform.data.storage import join_uri
from gensweep.platform.evaluation import WorkerEvaluator
from gensweep.trainables.families import FAMILIES


class PlatformContext:
    """Data, evaluation, sample grids and checkpoint files; subclasses report and load state."""

    rank: int = 0
    world_size: int = 1

    def __init__(self, cfg: Mapping[str, Any], shard: Any, device: torch.device):
        self.t0 = time.perf_counter()
        self.device = device
        self.config = dict(cfg["trial"])
        data = cfg["data"]
        self._loader = ShardLoader(
            shard,
            batch_size=self.config["batch_size"],
            seed=int(data["seed"]) * 7919 + int(self.config.get("seed", 0)),
            rank=self.rank,
            hflip=bool(data.get("hflip", False)),
            device=self.device,
        )
        self._evaluator = WorkerEvaluator.from_config(cfg["eval_runtime"], device=self.device)
        self._artifacts = cfg["artifacts_uri"]
        self._checkpoint_info = cfg["checkpoint_info"]
        self._storage = StorageOptions(**(cfg.get("storage") or {}))

    # -- data --------------------------------------------------------------------------
    def epoch_batches(self, epoch: int) -> Iterator[Mapping[str, torch.Tensor]]:
        return self._loader.epoch_batches(epoch)

    def loader_wait_s(self) -> float:
        return self._loader.wait_s

    # -- data parallel (single process: nothing to do) -------------------------------
    def broadcast_parameters(self, module: torch.nn.Module) -> None:
        return None

    def reduce_gradients(self, module: torch.nn.Module) -> None:
        return None

    # -- evaluation, artifacts ---------------------------------------------------------
    def evaluate(self, sample_fn, step: int) -> dict[str, Any]:
        return self._evaluator.evaluate(sample_fn, step, rank=self.rank, world_size=self.world_size)

    def save_samples(self, imgs: torch.Tensor, step: int) -> Optional[str]:
        if self.rank != 0:
            return None
        uri = join_uri(self._artifacts, f"samples-step{step:07d}.png")
        return put_bytes(uri, images.png_bytes(imgs), self._storage)

    # -- reports and checkpoints -------------------------------------------------------
    def report(self, metrics: Mapping[str, Any], state: Mapping[str, Any] | None = None) -> None:
        metrics = {**metrics, "loop_time_s": time.perf_counter() - self.t0}
        if state is None or self.rank != 0:
            self._report(metrics, None)
            return
        with tempfile.TemporaryDirectory(prefix="gensweep-ckpt-") as d:
            write_checkpoint_dir(d, state, self._checkpoint_info)
            self._report(metrics, d)

    def load_state(self) -> dict[str, Any] | None:
        ckpt = self._latest_checkpoint()
        if ckpt is None:
            return None
        with ckpt.as_directory() as d:
            return load_state_file(os.path.join(d, STATE_FILE), self.device)

    def _report(self, metrics: dict[str, Any], checkpoint_dir: Optional[str]) -> None:
        raise NotImplementedError

    def _latest_checkpoint(self):
        raise NotImplementedError


class RayTrainContext(PlatformContext):
    def __init__(self, cfg: Mapping[str, Any]):
        import ray.train
        import ray.train.torch

        ctx = ray.train.get_context()
        self.rank = ctx.get_world_rank()
        self.world_size = ctx.get_world_size()
        super().__init__(cfg, ray.train.get_dataset_shard("train"), ray.train.torch.get_device())

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

    def _report(self, metrics: dict[str, Any], checkpoint_dir: Optional[str]) -> None:
        import ray.train

        ckpt = ray.train.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        ray.train.report(metrics, checkpoint=ckpt)

    def _latest_checkpoint(self):
        import ray.train

        return ray.train.get_checkpoint()


class TuneInlineContext(PlatformContext):
    """One worker, in the Tune trial actor itself: no worker group to start, no extra hop."""

    def __init__(self, cfg: Mapping[str, Any], dataset: Any):
        device = torch.device("cuda" if torch.cuda.is_available() and cfg.get("use_gpu") else "cpu")
        super().__init__(cfg, dataset, device)

    def _report(self, metrics: dict[str, Any], checkpoint_dir: Optional[str]) -> None:
        from ray import tune

        ckpt = tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        tune.report(metrics, checkpoint=ckpt)

    def _latest_checkpoint(self):
        from ray import tune

        return tune.get_checkpoint()


def run_family(cfg: Mapping[str, Any], ctx: PlatformContext) -> None:
    FAMILIES.get(cfg["family"]).train(ctx)


def train_loop_per_worker(cfg: dict[str, Any]) -> None:
    """Ray Train's per-worker entry point."""
    run_family(cfg, RayTrainContext(cfg))
