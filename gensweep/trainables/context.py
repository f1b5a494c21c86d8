"""The thin context a trainable receives from whoever runs it.

Trainables are plain PyTorch: they never import Ray Tune or the platform. The platform
hands them an object with this interface (under Ray Train), and tests or benchmarks hand
them :class:`LocalContext` (in-process), so the same loop runs in both places.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Iterator, Mapping, Optional, Protocol, runtime_checkable

import torch

Batch = Mapping[str, torch.Tensor]
# (count, seed) -> images NCHW in [-1, 1]; a family's samplers also take ``labels=`` (class indices)
SampleFn = Callable[[int, int], torch.Tensor]


def chosen_labels(labels: Optional[torch.Tensor], drawn: Optional[torch.Tensor], count: int,
                  num_classes: int) -> Optional[torch.Tensor]:
    """The class labels a sampler uses: ``drawn`` (its seeded uniform draw) unless the caller chose
    ``labels``, which must be ``count`` indices in ``[0, num_classes)`` of a conditional model."""
    if labels is None:
        return drawn
    if num_classes <= 0:
        raise ValueError("this model is unconditional (num_classes: 0): it cannot sample a chosen class")
    labels = torch.as_tensor(labels, dtype=torch.long).reshape(-1).cpu()
    if labels.numel() != count:
        raise ValueError(f"got {labels.numel()} labels for {count} samples")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"class labels must lie in [0, {num_classes}); got {sorted(set(labels.tolist()))[:10]}")
    return labels


@runtime_checkable
class TrialContext(Protocol):
    rank: int
    world_size: int
    device: torch.device
    config: Mapping[str, Any]

    def epoch_batches(self, epoch: int) -> Iterator[Batch]:
        """This worker's shard of the training data for one epoch."""

    def broadcast_parameters(self, module: torch.nn.Module) -> None:
        """Make every rank start from rank 0's parameters and buffers."""

    def reduce_gradients(self, module: torch.nn.Module) -> None:
        """Average ``module``'s gradients across ranks (after backward, before the step)."""

    def sync_buffers(self, module: torch.nn.Module) -> None:
        """Make ``module``'s buffers equal on every rank: floating ones (BatchNorm running statistics)
        averaged across ranks, the others (counters) taken from rank 0; every rank must call it."""

    def evaluate(self, sample_fn: SampleFn, step: int) -> dict[str, Any]:
        """Score a generator given as ``sample_fn(count, seed)``; every rank must call it."""

    def report(self, metrics: Mapping[str, Any], state: Mapping[str, Any] | None = None) -> None:
        """Report metrics (and optionally a checkpoint state dict); every rank calls it."""

    def load_state(self) -> dict[str, Any] | None:
        """The state dict of the latest checkpoint, or None for a fresh start."""

    def checkpoint_due(self, step: int) -> bool:
        """True when the runner asks for a checkpoint now (it is stopping): the loop then evaluates
        and reports with its state at this step; every rank calls it at every step."""

    def save_samples(self, images: torch.Tensor, step: int, name: str = "samples",
                     columns: int | None = None) -> str | None:
        """Store a sample grid named ``name`` (``columns`` images a row; None: square); returns its
        path (rank 0) or None."""

    def loader_wait_s(self) -> float:
        """Seconds spent waiting for data since the start (for throughput reports)."""


class SingleProcess:
    """The data-parallel collectives of a single-process context: there is nothing to share."""

    def checkpoint_due(self, step: int) -> bool:
        return False

    def broadcast_parameters(self, module: torch.nn.Module) -> None:
        return None

    def reduce_gradients(self, module: torch.nn.Module) -> None:
        return None

    def sync_buffers(self, module: torch.nn.Module) -> None:
        return None


class LocalContext(SingleProcess):
    """In-process context: an iterator of batches, in-memory checkpoints, a plain list of reports.

    Used by unit tests and by the bare-PyTorch side of the overhead benchmark.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        batches: Callable[[int], Iterator[Batch]],
        *,
        evaluator: Callable[[SampleFn, int], dict[str, Any]] | None = None,
        state: dict[str, Any] | None = None,
        device: str = "cpu",
    ):
        self.rank = 0
        self.world_size = 1
        self.device = torch.device(device)
        self.config = dict(config)
        self._batches = batches
        self._evaluator = evaluator
        self._state = state
        self.reports: list[dict[str, Any]] = []
        self.states: list[dict[str, Any]] = []
        self.samples: list[tuple[int, torch.Tensor]] = []
        self.named_samples: dict[str, list[tuple[int, torch.Tensor]]] = {}  # other grids (e.g. "classes")
        self._wait = 0.0

    def epoch_batches(self, epoch: int) -> Iterator[Batch]:
        it = iter(self._batches(epoch))
        while True:
            t0 = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                return
            self._wait += time.perf_counter() - t0
            yield batch

    def evaluate(self, sample_fn: SampleFn, step: int) -> dict[str, Any]:
        if self._evaluator is None:
            return {}
        return self._evaluator(sample_fn, step)

    def report(self, metrics: Mapping[str, Any], state: Mapping[str, Any] | None = None) -> None:
        self.reports.append(dict(metrics))
        if state is not None:
            self._state = _detached_copy(state)
            self.states.append(self._state)

    def load_state(self) -> dict[str, Any] | None:
        return None if self._state is None else _detached_copy(self._state)

    def save_samples(self, images: torch.Tensor, step: int, name: str = "samples",
                     columns: int | None = None) -> str | None:
        kept = (step, images.detach().cpu())
        self.samples.append(kept) if name == "samples" else self.named_samples.setdefault(name, []).append(kept)
        return None

    def loader_wait_s(self) -> float:
        return self._wait


def _detached_copy(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, Mapping):
        return {k: _detached_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_detached_copy(v) for v in obj)
    return obj
