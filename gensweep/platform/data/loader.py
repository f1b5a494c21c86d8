"""Worker-side batches for training loops: :class:`ShardLoader`.

Pure PyTorch over anything that looks like a Ray ``DataIterator`` (an object with
``iter_batches`` and/or ``iter_torch_batches`` -- e.g. ``ray.train.get_dataset_shard``)
or over in-memory arrays (:meth:`ShardLoader.from_arrays`, no Ray needed). This
module imports neither Ray nor Ray Tune.

Modes:

* **materialized** -- the shard is read once (first epoch) into CPU tensors, sorted by
  the ``index`` column so the content order does not depend on Ray's block arrival
  order; every epoch is then ``torch.randperm`` with a generator seeded by
  ``(seed, epoch, rank)``: fully reproducible, and no per-epoch Ray Data start-up.
* **streaming** -- every epoch runs ``iter_torch_batches`` with a local shuffle buffer
  seeded by ``(seed, epoch, rank)`` and prefetching. The order is reproducible only as
  far as Ray delivers blocks in the same order. A background thread
  (:class:`~gensweep.platform.data.readahead.ReadAhead`) iterates the epochs up to
  ``readahead_batches`` batches ahead of the loop, so the start-up of epoch ``e + 1`` (a new
  Ray Data execution, a shuffle buffer to fill) overlaps the last steps of epoch ``e``;
  :meth:`ShardLoader.close` stops it. ``readahead_batches=0`` iterates in the loop's thread.
  :meth:`ShardLoader.prime` starts the first epoch's pass before the loop asks for it.

``mode="auto"`` (default) materializes when the shard fits in ``materialize_max_bytes``
(of decoded float32 tensors). If ``expected_bytes`` is given (e.g.
:meth:`Manifest.decoded_nbytes` divided by the number of workers) the decision is made up front;
otherwise the first epoch collects batches and, as soon as the limit would be exceeded,
keeps serving that same pass as a stream (in arrival order, batches permuted within
themselves) and streams from then on.

Horizontal flips (``hflip=True``) are drawn per image from a generator seeded by
``(seed, epoch, rank)`` as well. ``wait_s`` / ``epoch_wait_s`` hold the seconds the
consumer spent blocked waiting for the next batch (including the materializing pass
and the copy to ``device``).
"""
from __future__ import annotations

import hashlib
import time
from typing import Any, Iterator

import numpy as np
import torch

from gensweep.platform.data.readahead import ReadAhead
from gensweep.platform.data.records import to_unit_float_chw

MODES = ("auto", "materialize", "stream")
DEFAULT_MATERIALIZE_MAX_BYTES = 512 * 2**20
DEFAULT_READAHEAD_BATCHES = 16
_PERM, _FLIP, _RAY = 0, 1, 2


def derive_seed(seed: int, epoch: int, rank: int, stream: int, bits: int = 63) -> int:
    digest = hashlib.sha256(f"gensweep-loader|{seed}|{epoch}|{rank}|{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << bits) - 1)


def _generator(seed: int, epoch: int, rank: int, stream: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(derive_seed(seed, epoch, rank, stream))
    return g


class ShardLoader:
    def __init__(
        self,
        shard: Any,
        *,
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        materialize_max_bytes: int = DEFAULT_MATERIALIZE_MAX_BYTES,
        hflip: bool = False,
        drop_last: bool = True,
        device: str | torch.device = "cpu",
        mode: str = "auto",
        expected_bytes: int | None = None,
        prefetch_batches: int = 2,
        shuffle_buffer_size: int | None = None,
        readahead_batches: int = DEFAULT_READAHEAD_BATCHES,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if shard is not None and not (hasattr(shard, "iter_torch_batches") or hasattr(shard, "iter_batches")):
            raise TypeError(f"{type(shard).__name__} has neither iter_torch_batches nor iter_batches")
        self.shard = shard
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.rank = int(rank)
        self.materialize_max_bytes = int(materialize_max_bytes)
        self.hflip = bool(hflip)
        self.drop_last = bool(drop_last)
        self.device = torch.device(device)
        self.prefetch_batches = int(prefetch_batches)
        self.shuffle_buffer_size = int(shuffle_buffer_size or max(8 * self.batch_size, 2048))
        if readahead_batches < 0:
            raise ValueError(f"readahead_batches must be >= 0, got {readahead_batches}")
        self._readahead = ReadAhead(self._streamed_batches, readahead_batches) if readahead_batches else None
        self.expected_bytes = expected_bytes
        self._mode = mode  # becomes "materialize" or "stream" once decided
        self._images: torch.Tensor | None = None
        self._labels: torch.Tensor | None = None
        self.wait_s = 0.0
        self.epoch_wait_s = 0.0
        self.materialize_s = 0.0
        self.batches = 0

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_arrays(cls, images: np.ndarray, labels: np.ndarray | None = None, *, batch_size: int,
                    **kwargs) -> "ShardLoader":
        """In-memory loader (no Ray): uint8 images (N,H,W) or (N,H,W,C) and optional labels."""
        images = np.asarray(images)
        if images.dtype != np.uint8:
            raise TypeError(f"images must be uint8, got {images.dtype}")
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4:
            raise ValueError(f"images must be (N,H,W) or (N,H,W,C), got {images.shape}")
        n = images.shape[0]
        labels = np.full(n, -1, dtype=np.int64) if labels is None else np.asarray(labels, dtype=np.int64)
        if labels.shape != (n,):
            raise ValueError(f"labels shape {labels.shape} != ({n},)")
        loader = cls(None, batch_size=batch_size, mode="materialize", **kwargs)
        loader._images = torch.from_numpy(to_unit_float_chw(images))
        loader._labels = torch.from_numpy(labels.copy())
        return loader

    # ------------------------------------------------------------------ properties

    @property
    def mode(self) -> str:
        """'materialize', 'stream', or 'auto' while undecided."""
        return self._mode

    @property
    def materialized(self) -> bool:
        return self._images is not None

    @property
    def rows(self) -> int | None:
        return None if self._images is None else int(self._images.shape[0])

    @property
    def batches_per_epoch(self) -> int | None:
        if self.rows is None:
            return None
        return self.rows // self.batch_size if self.drop_last else -(-self.rows // self.batch_size)

    def stats(self) -> dict[str, Any]:
        return {"mode": self._mode, "rows": self.rows, "wait_s": self.wait_s,
                "epoch_wait_s": self.epoch_wait_s, "materialize_s": self.materialize_s,
                "batches": self.batches}

    def prime(self, epoch: int = 0) -> bool:
        """A shard streamed with read-ahead (``mode="stream"``, or ``"auto"`` with ``expected_bytes``
        above the limit): start reading ``epoch`` now, so its start-up overlaps whatever the
        caller does before the loop (building models, loading reference statistics). Returns
        whether reading started."""
        self._decide_up_front()
        if self._mode != "stream" or self._readahead is None or self.shard is None:
            return False
        self._readahead.start(epoch)
        return True

    def _decide_up_front(self) -> None:
        if self._mode == "auto" and self.expected_bytes is not None and self.shard is not None:
            self._mode = "materialize" if self.expected_bytes <= self.materialize_max_bytes else "stream"

    def close(self) -> None:
        """Stop reading ahead (a streamed shard); the loader can still be iterated afterwards."""
        if self._readahead is not None:
            self._readahead.close()

    # ------------------------------------------------------------------ iteration

    def epoch_batches(self, epoch: int) -> Iterator[dict[str, torch.Tensor]]:
        """Batches ``{"image": float32 [B,C,H,W] in [-1,1], "label": int64 [B]}`` of one epoch."""
        self.epoch_wait_s = 0.0
        self._decide_up_front()
        if self._images is not None:
            source = self._materialized_batches(epoch)
        elif self._mode == "stream":
            source = self._readahead.epoch(epoch) if self._readahead is not None else self._streamed_batches(epoch)
        else:
            source = self._first_pass(epoch)
        flip = _generator(self.seed, epoch, self.rank, _FLIP) if self.hflip else None
        while True:
            t0 = time.perf_counter()
            batch = next(source, None)
            if batch is not None:
                batch = self._finish(batch, flip)
            waited = time.perf_counter() - t0
            self.wait_s += waited
            self.epoch_wait_s += waited
            if batch is None:
                return
            self.batches += 1
            yield batch

    def _finish(self, batch: dict[str, torch.Tensor], flip: torch.Generator | None) -> dict[str, torch.Tensor]:
        image, label = batch["image"], batch["label"]
        if flip is not None:
            mask = torch.rand(image.shape[0], generator=flip) < 0.5
            image = torch.where(mask.view(-1, 1, 1, 1), image.flip(-1), image)
        if image.device != self.device:
            image = image.to(self.device, non_blocking=True)
            label = label.to(self.device, non_blocking=True)
        return {"image": image, "label": label}

    def _materialized_batches(self, epoch: int) -> Iterator[dict[str, torch.Tensor]]:
        n = self._images.shape[0]
        perm = torch.randperm(n, generator=_generator(self.seed, epoch, self.rank, _PERM))
        stop = (n // self.batch_size) * self.batch_size if self.drop_last else n
        for start in range(0, stop, self.batch_size):
            idx = perm[start:start + self.batch_size]
            yield {"image": self._images[idx], "label": self._labels[idx]}

    def _ray_seed(self, epoch: int) -> int:
        return derive_seed(self.seed, epoch, self.rank, _RAY, bits=31)

    def _streamed_batches(self, epoch: int) -> Iterator[dict[str, torch.Tensor]]:
        kwargs = dict(batch_size=self.batch_size, drop_last=self.drop_last,
                      local_shuffle_buffer_size=self.shuffle_buffer_size,
                      local_shuffle_seed=self._ray_seed(epoch), prefetch_batches=self.prefetch_batches)
        if hasattr(self.shard, "iter_torch_batches"):
            for b in self.shard.iter_torch_batches(device="cpu", **kwargs):
                yield {"image": b["image"].to(torch.float32), "label": b["label"].to(torch.int64)}
        else:
            for b in self.shard.iter_batches(batch_format="numpy", **kwargs):
                yield _numpy_to_torch(b)

    def _numpy_batches(self) -> Iterator[dict[str, np.ndarray]]:
        kwargs = dict(batch_size=self.batch_size, drop_last=False, prefetch_batches=self.prefetch_batches)
        if hasattr(self.shard, "iter_batches"):
            yield from self.shard.iter_batches(batch_format="numpy", **kwargs)
        else:
            for b in self.shard.iter_torch_batches(device="cpu", **kwargs):
                yield {k: v.numpy() for k, v in b.items()}

    def _first_pass(self, epoch: int) -> Iterator[dict[str, torch.Tensor]]:
        """Collect the shard; materialize it if it fits, else serve this pass as a stream."""
        t0 = time.perf_counter()
        limit = float("inf") if self._mode == "materialize" else self.materialize_max_bytes
        collected: list[dict[str, np.ndarray]] = []
        size = 0
        batches = self._numpy_batches()
        for b in batches:
            collected.append(b)
            size += sum(np.asarray(v).nbytes for k, v in b.items() if k in ("image", "label", "index"))
            if size > limit:
                self._mode = "stream"
                yield from self._overflow_pass(epoch, collected, batches)
                return
        self._materialize(collected)
        self.materialize_s = time.perf_counter() - t0
        self._mode = "materialize"
        yield from self._materialized_batches(epoch)

    def _materialize(self, collected: list[dict[str, np.ndarray]]) -> None:
        if not collected:
            raise ValueError("the data shard is empty: nothing to train on")
        images = np.concatenate([b["image"] for b in collected])
        labels = np.concatenate([b["label"] for b in collected]).astype(np.int64)
        if "index" in collected[0]:
            order = np.argsort(np.concatenate([b["index"] for b in collected]), kind="stable")
            images, labels = images[order], labels[order]
        self._images = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
        self._labels = torch.from_numpy(np.ascontiguousarray(labels))

    def _overflow_pass(self, epoch: int, collected: list, rest: Iterator) -> Iterator[dict[str, torch.Tensor]]:
        g = _generator(self.seed, epoch, self.rank, _PERM)

        def all_batches():
            yield from collected
            collected.clear()  # release memory as we go
            yield from rest

        for b in all_batches():
            n = len(b["label"])
            if n < self.batch_size and self.drop_last:
                continue
            perm = torch.randperm(n, generator=g)
            t = _numpy_to_torch(b)
            yield {"image": t["image"][perm], "label": t["label"][perm]}


def _numpy_to_torch(b: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {"image": torch.as_tensor(np.asarray(b["image"], dtype=np.float32)),
            "label": torch.as_tensor(np.asarray(b["label"]).astype(np.int64))}
