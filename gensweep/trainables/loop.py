"""What every family's training loop shares: resumable batch order, and evaluate-then-report.

A trial state ``st`` carries ``step``, ``epoch`` and ``batch_in_epoch`` (saved in every
checkpoint), so a resumed trial continues mid-epoch at the batch after the last one it trained
on, and sees the same batches in the same order as an uninterrupted run.
"""
from __future__ import annotations

import time

import torch
from typing import Any, Iterator, Protocol, Sequence

from gensweep.trainables.context import Batch, SampleFn, TrialContext


class Position(Protocol):
    step: int
    epoch: int
    batch_in_epoch: int


def training_batches(ctx: TrialContext, st: Position, total_steps: int) -> Iterator[Batch]:
    """This worker's batches from ``st``'s position on, until ``st.step`` reaches ``total_steps``.

    The caller trains on each batch and advances ``st.step``; this advances the epoch and the
    position inside it, and skips the batches a resumed trial already trained on.
    """
    while st.step < total_steps:
        seen = 0
        for i, batch in enumerate(ctx.epoch_batches(st.epoch)):
            seen += 1
            if i < st.batch_in_epoch:
                continue
            st.batch_in_epoch = i + 1
            yield batch
            if st.step >= total_steps:
                return
        if seen == 0:
            raise RuntimeError(f"epoch {st.epoch} gave no batch: the data shard is empty or smaller than a batch")
        st.epoch += 1
        st.batch_in_epoch = 0


CLASS_GRID_CLASSES = 16  # classes a per-class grid shows (the first ones)
CLASS_GRID_COLUMNS = 8  # samples per class at most


def class_grid_labels(num_classes: int, grid_size: int) -> tuple[torch.Tensor, int]:
    """``(labels, columns)`` of a per-class grid: one row per class (the first ``CLASS_GRID_CLASSES``),
    ``grid_size / classes`` samples a row (2 to ``CLASS_GRID_COLUMNS``)."""
    shown = min(num_classes, CLASS_GRID_CLASSES)
    columns = min(CLASS_GRID_COLUMNS, max(2, grid_size // shown))
    return torch.arange(shown).repeat_interleave(columns), columns


def evaluation_metrics(ctx: TrialContext, samplers: Sequence[tuple[str, SampleFn]], step: int,
                       grid_size: int, num_classes: int = 0) -> dict[str, Any]:
    """Score each ``(tag, sample_fn)``, save a sample grid of the first, and time it all; for a
    conditional model (``num_classes`` > 0) also a per-class grid (``class_grid``: row k, class k).

    The first sampler's scores are the trial's headline metrics (``fid``, ...); with a non-empty
    tag every sampler's scores and evaluation time are also reported as ``<metric>/<tag>``.
    """
    out: dict[str, Any] = {}
    t_eval = time.perf_counter()
    for j, (tag, sample) in enumerate(samplers):
        t0 = time.perf_counter()
        scores = ctx.evaluate(sample, step)
        if tag:
            out.update({f"{k}/{tag}": v for k, v in scores.items()})
            out[f"eval_time_s/{tag}"] = time.perf_counter() - t0
        if j == 0:
            out.update(scores)
    path = ctx.save_samples(samplers[0][1](grid_size, 0), step)
    if path:
        out["sample_grid"] = path
    if num_classes:
        labels, columns = class_grid_labels(num_classes, grid_size)
        images = samplers[0][1](len(labels), 0, labels=labels)
        path = ctx.save_samples(images, step, name="classes", columns=columns)
        if path:
            out["class_grid"] = path
    out["eval_time_s"] = time.perf_counter() - t_eval
    return out
