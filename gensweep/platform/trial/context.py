"""The platform side of the TrialContext: what runs where the trainable loop runs.

Two contexts share everything but how they report and checkpoint:
- :class:`RayTrainContext`, on each worker of a Ray Train ``TorchTrainer`` (``resources.launcher:
  train``, and ``auto`` with several workers): reports and checkpoints go through
  ``ray.train.report``, reaching Tune via ``TuneReportCallback``;
- :class:`TuneInlineContext`, for single-worker trials run inline in the Tune trial actor
  (``resources.launcher: inline``, and ``auto`` with one worker): reports and checkpoints go
  through ``ray.tune.report``; a trial Tune restarts resumes from its latest Tune checkpoint.
The trainable only sees the context interface, so its loop is the same in both.
"""
from __future__ import annotations

import datetime
import json
import logging
import os
import tempfile
import time
from typing import Any, Iterator, Mapping, Optional

import torch
import torch.distributed as dist

from gensweep.platform.data import ShardLoader
from gensweep.platform.data.blocks import SharedBlocks
from gensweep.platform.storage.artifacts import put_bytes
from gensweep.platform.storage.secrets import apply_secrets_file
from gensweep.platform.storage.uris import join_uri
from gensweep.platform.trial import images
from gensweep.platform.trial.checkpoints import (
    REPORT_FILE,
    STATE_FILE,
    load_state_file,
    read_report,
    report_record,
    write_checkpoint_dir,
)
from gensweep.platform.trial.evaluation import WorkerEvaluator
from gensweep.platform.trial.handoff import WorkerConfig
from gensweep.platform.trial.report_metrics import best_setting, compute_hours, with_setting
from gensweep.platform.trial.stop import STOP_FIELD, stop_requested
from gensweep.trainables.context import SingleProcess
from gensweep.trainables.errors import Diverged
from gensweep.trainables.families import FAMILIES
from gensweep.trainables.sampling import GRID_FIELD, setting_tag

logger = logging.getLogger(__name__)

DIVERGED_FILE = "diverged.json"  # in the trial's artifacts folder: step and reason of a divergence


def match_torch_threads() -> int:
    """Give torch the thread count Ray gave this process, and return it.

    Ray sets ``OMP_NUM_THREADS`` to a task's or actor's CPU share when it assigns the process,
    and torch reads it only when first imported. A process that imported torch earlier, such as
    a worker of a cluster whose Ray preloads torch (``preload_python_modules``), keeps a thread
    per core, and concurrent trials then oversubscribe the cores (the slowdown: BENCHMARKS.md).
    """
    want = os.environ.get("OMP_NUM_THREADS", "")
    if want.isdigit() and int(want) > 0 and torch.get_num_threads() != int(want):
        torch.set_num_threads(int(want))
    return torch.get_num_threads()


class PlatformContext(SingleProcess):
    """Data, evaluation, sample grids and checkpoint files; subclasses report and load state."""

    rank: int = 0
    world_size: int = 1

    def __init__(self, cfg: WorkerConfig, shard: Any, device: torch.device):
        match_torch_threads()
        self.t0 = time.perf_counter()
        self.started_at = time.time()  # epoch seconds: places the loop on the trial's timeline
        self.device = device
        self.config = dict(cfg.trial)
        self._loader = ShardLoader(
            shard,
            batch_size=self.config["batch_size"],
            seed=cfg.data_seed * 7919 + int(self.config.get("seed", 0)),
            rank=self.rank,
            hflip=cfg.hflip,
            readahead_batches=cfg.readahead_batches,
            expected_bytes=cfg.expected_shard_bytes,
            materialize_max_bytes=cfg.max_worker_bytes,
            device=self.device,
        )
        self._evaluator = WorkerEvaluator.from_config(cfg.eval_runtime, device=self.device)
        self._fid_floor = cfg.eval_runtime.fid_floor
        self._artifacts = cfg.artifacts_uri
        self._checkpoint_info = cfg.checkpoint_info
        self._storage = cfg.storage
        self._resumed_from: Optional[int] = None
        self._resumed_report: Optional[dict[str, Any]] = None  # the report saved with that checkpoint
        self._reported = False
        self._results = cfg.results  # where a backfilled row goes
        self._held, self._objective = dict(cfg.held), tuple(cfg.objective)
        self._setting_tags = [setting_tag(s) for s in self.config.get(GRID_FIELD) or []]
        self._experiment = str(cfg.checkpoint_info.get("experiment", ""))
        self._stop_answered: Optional[str] = None  # the stop request this trial checkpoints for
        self._stop_report: Optional[str] = None  # ... set until that checkpoint is reported
        self._stop_checked_at = 0.0
        if self._latest_checkpoint() is None:  # a fresh trial starts at epoch 0: stream it while we build
            self._loader.prime(0)

    # -- data --------------------------------------------------------------------------
    def epoch_batches(self, epoch: int) -> Iterator[Mapping[str, torch.Tensor]]:
        return self._loader.epoch_batches(epoch)

    def loader_wait_s(self) -> float:
        return self._loader.wait_s

    def close_data(self) -> None:
        """Stop the loader's read-ahead thread (a streamed shard) once the loop has returned."""
        self._loader.close()

    # -- evaluation, artifacts ---------------------------------------------------------
    def evaluate(self, sample_fn, step: int) -> dict[str, Any]:
        return self._evaluator.evaluate(sample_fn, step, rank=self.rank, world_size=self.world_size)

    def save_samples(self, imgs: torch.Tensor, step: int, name: str = "samples",
                     columns: Optional[int] = None) -> Optional[str]:
        if self.rank != 0:
            return None
        uri = join_uri(self._artifacts, f"{name}-step{step:07d}.png")
        # retried through a storage outage (backoff under a deadline) instead of failing the trial
        return put_bytes(uri, images.png_bytes(imgs, columns), self._storage)

    # -- reports and checkpoints -------------------------------------------------------
    STOP_POLL_S = 1.0  # how often a trial reads the driver's stop request
    STOP_POLL_STEPS = 10  # multi-worker: every rank asks rank 0 at the same steps

    def checkpoint_due(self, step: int) -> bool:
        """True once per stop request of the sweep's driver (:mod:`gensweep.platform.trial.stop`):
        the loop then evaluates and reports a checkpoint at this step. Every rank gets rank 0's answer."""
        if self.world_size > 1:
            if step % self.STOP_POLL_STEPS:
                return False
            token = self._poll_stop() if self.rank == 0 else None
            flag = torch.tensor([1 if token else 0], dtype=torch.int32)
            dist.broadcast(flag, src=0)
            return bool(flag.item())
        now = time.monotonic()
        if now - self._stop_checked_at < self.STOP_POLL_S:
            return False
        self._stop_checked_at = now
        return self._poll_stop() is not None

    def hold_if_stopping(self, limit_s: float = 600.0) -> None:
        """A trial that starts while its driver is stopping trains nothing: it waits (bounded) for the
        driver to end it; it goes on if the request is withdrawn."""
        t_end = time.monotonic() + limit_s
        while self._experiment and time.monotonic() < t_end:
            try:
                if stop_requested(self._experiment) is None:
                    return
            except Exception:  # noqa: BLE001 - the GCS is unreachable: nothing to wait for
                return
            time.sleep(self.STOP_POLL_S)

    def _poll_stop(self) -> Optional[str]:
        try:
            token = stop_requested(self._experiment)
        except Exception:  # noqa: BLE001 - the GCS is unreachable: the trial keeps training
            return None
        if token is None or token == self._stop_answered:
            return None
        self._stop_answered = self._stop_report = token
        logger.info("stop requested by the driver: checkpointing at once")
        return token

    def _with_platform_metrics(self, metrics: Mapping[str, Any]) -> dict[str, Any]:
        out = {**metrics, "loop_time_s": time.perf_counter() - self.t0, "loop_started_at": self.started_at}
        if self._stop_report is not None:  # the checkpoint the driver's stop asked for (see .stop)
            out[STOP_FIELD], self._stop_report = self._stop_report, None
        if self._resumed_from is not None:  # this worker (group) started from a checkpoint
            out["resumed_from_step"] = self._resumed_from
        out["worker_pid"] = os.getpid()  # changes when Train restarts a failed worker group
        out["loader_mode"] = self._loader.mode  # materialize (shared blocks or a share in memory) or stream
        # the reference set's real-vs-real FID (NaN: not available), for reading scores beside it
        out["fid_floor"] = float("nan") if self._fid_floor is None else float(self._fid_floor)
        before = (self._resumed_report or {}).get("metrics")
        out.update(compute_hours(self._held, out["loop_time_s"], before))
        if self._setting_tags:
            tag = best_setting(out, self._setting_tags, *self._objective)
            out = with_setting(out, tag if tag is not None else self._setting_tags[0])
        return out

    def report(self, metrics: Mapping[str, Any], state: Mapping[str, Any] | None = None) -> None:
        self._reported = True
        metrics = self._with_platform_metrics(metrics)
        if state is None or self.rank != 0:
            self._report(metrics, None)
            return
        with tempfile.TemporaryDirectory(prefix="gensweep-ckpt-") as d:
            write_checkpoint_dir(d, state, self._checkpoint_info, report=report_record(metrics))
            self._report(metrics, d)

    def load_state(self) -> dict[str, Any] | None:
        ckpt = self._latest_checkpoint()
        if ckpt is None:
            return None
        with ckpt.as_directory() as d:
            state = load_state_file(os.path.join(d, STATE_FILE), self.device)
            report = read_report(os.path.join(d, REPORT_FILE))
        self._resumed_from = int(state["step"])
        self._resumed_report = report
        if report is not None and self.rank == 0:
            self._backfill(report)
        return state

    def _backfill(self, report: dict[str, Any]) -> None:
        """Make sure the report saved with the checkpoint we resume from has its metrics row.

        Train registers a checkpoint before Tune's driver receives its report; a driver killed
        in between never records that report, yet the trial resumes *after* it. So the row is
        written here, from the copy saved in the checkpoint, stamped with the time of the
        original report: a row the results callback did write (always later) wins the store's
        de-duplication, so this only fills a gap, never overwrites.
        """
        if self._results is None:
            return
        try:
            from gensweep.platform.results import ResultsStore, metrics_row

            r = self._results
            metrics = report["metrics"]
            row = metrics_row(r.experiment, r.trial_id, metrics["step"], metrics,
                              reported_at=report["reported_at"], columns=r.columns, backfilled=True)
            stamp = datetime.datetime.fromtimestamp(float(report["reported_at"]), tz=datetime.timezone.utc)
            ResultsStore.open(r.root).write("metrics", [row], written_at=stamp)
        except Exception:  # noqa: BLE001 - a backfill must never stop the trial
            logger.warning("could not backfill the metrics row of the resumed checkpoint", exc_info=True)

    def finish(self) -> None:
        """After the loop returned: a run resumed from its final checkpoint (the trial had finished
        training when its driver died) has nothing left to train and so reports nothing; report
        that checkpoint's saved metrics again (the same row, so no duplicate) so the trial ends
        with its result, as Tune requires."""
        if not self._reported and self._resumed_report is not None:
            self._report(dict(self._resumed_report["metrics"]), None)

    def record_divergence(self, exc: Diverged) -> None:
        """Rank 0 writes where and why the trial diverged next to its artifacts, for
        :func:`~gensweep.platform.trial.launch.run_trial` to raise once the workers have returned
        (every rank diverges at the same step: the check is agreed after the all-reduce)."""
        if self.rank == 0:
            record = json.dumps({"step": exc.step, "reason": exc.reason}).encode()
            put_bytes(join_uri(self._artifacts, DIVERGED_FILE), record, self._storage)

    def _report(self, metrics: dict[str, Any], checkpoint_dir: Optional[str]) -> None:
        raise NotImplementedError

    def _latest_checkpoint(self):
        raise NotImplementedError


class RayTrainContext(PlatformContext):
    def __init__(self, cfg: WorkerConfig):
        import ray.train
        import ray.train.torch

        ctx = ray.train.get_context()
        self.rank = ctx.get_world_rank()
        self.world_size = ctx.get_world_size()
        if cfg.shared_blocks is not None:  # the driver's materialized dataset (see trial.build_trainer)
            shard = SharedBlocks(**cfg.shared_blocks).shard(self.rank, self.world_size)
        else:
            shard = ray.train.get_dataset_shard("train")
        super().__init__(cfg, shard, ray.train.torch.get_device())

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

    def sync_buffers(self, module: torch.nn.Module) -> None:
        """Floating buffers averaged (one all-reduce per dtype), the others broadcast from rank 0.

        Averaging keeps a BatchNorm running mean equal to the single-process one over the global
        batch (its update is linear in the batch mean); see the README's "How a sweep runs"."""
        if self.world_size == 1:
            return
        by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
        with torch.no_grad():
            for b in module.buffers():
                if b.is_floating_point():
                    by_dtype.setdefault(b.dtype, []).append(b)
                else:
                    dist.broadcast(b, src=0)
            for bufs in by_dtype.values():
                flat = torch.cat([b.flatten() for b in bufs])
                dist.all_reduce(flat)
                flat /= self.world_size
                offset = 0
                for b in bufs:
                    b.copy_(flat[offset : offset + b.numel()].view_as(b))
                    offset += b.numel()

    def _report(self, metrics: dict[str, Any], checkpoint_dir: Optional[str]) -> None:
        import ray.train

        ckpt = ray.train.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        ray.train.report(metrics, checkpoint=ckpt)

    def _latest_checkpoint(self):
        import ray.train

        return ray.train.get_checkpoint()


class TuneInlineContext(PlatformContext):
    """One worker, in the Tune trial actor itself: no worker group to start, no extra hop."""

    def __init__(self, cfg: WorkerConfig, dataset: Any):
        device = torch.device("cuda" if torch.cuda.is_available() and cfg.use_gpu else "cpu")
        super().__init__(cfg, dataset, device)

    def _report(self, metrics: dict[str, Any], checkpoint_dir: Optional[str]) -> None:
        from ray import tune

        ckpt = tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        tune.report(metrics, checkpoint=ckpt)

    def _latest_checkpoint(self):
        from ray import tune

        return tune.get_checkpoint()


def run_family(cfg: WorkerConfig, ctx: PlatformContext) -> Optional[Diverged]:
    """Run the family's loop; a divergence is recorded and returned, not raised, so that Train
    does not restart the worker group for it (it would only diverge again)."""
    ctx.hold_if_stopping()
    try:
        FAMILIES.get(cfg.family).train(ctx)
    except Diverged as exc:
        ctx.record_divergence(exc)
        return exc
    finally:
        ctx.close_data()
    ctx.finish()
    return None


def train_loop_per_worker(plain: dict[str, Any]) -> None:
    """Ray Train's per-worker entry point; ``plain``: :meth:`WorkerConfig.to_plain`."""
    cfg = WorkerConfig.from_plain(plain)
    apply_secrets_file(cfg.secrets_file)
    run_family(cfg, RayTrainContext(cfg))
