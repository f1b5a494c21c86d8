"""Seeded, stratified subsets of a labelled dataset.

Rounding rule (exact integer arithmetic, no float drift):

1. total ``n = floor(fraction * N + 1/2)`` (round half up), at least 1;
2. each class ``c`` with ``N_c`` members first gets ``floor(n * N_c / N)``;
3. the ``n - sum`` remaining slots go one each to the classes with the largest
   remainders ``(n * N_c) mod N``; ties go to the smaller label.

So class counts are proportional to class sizes (largest-remainder / Hamilton
apportionment), each within one of ``n * N_c / N``, and the total is exactly ``n``.
Members of each class are drawn without replacement by ``numpy.random.default_rng(seed)``,
classes visited in ascending label order; the result is sorted by original index.
Unlabelled records (label -1) form their own stratum.
"""
from __future__ import annotations

import math

import numpy as np


def subset_size(fraction: float, total: int) -> int:
    if not (0.0 < fraction <= 1.0) or math.isnan(fraction):
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    n = int(math.floor(fraction * total + 0.5))
    if total and n < 1:
        raise ValueError(f"fraction {fraction} of {total} records selects nothing")
    return min(n, total)


def class_quotas(labels: np.ndarray, n: int) -> dict[int, int]:
    """Per-label counts summing to exactly ``n`` (see module docstring)."""
    classes, sizes = np.unique(labels, return_counts=True)
    total = int(sizes.sum())
    quotas = {int(c): (n * int(s)) // total for c, s in zip(classes, sizes)}
    remainders = sorted(((n * int(s)) % total, int(c)) for c, s in zip(classes, sizes))
    # largest remainder first; ties -> smaller label first
    order = sorted(remainders, key=lambda r: (-r[0], r[1]))
    for _, c in order[: n - sum(quotas.values())]:
        quotas[c] += 1
    return quotas


def stratified_indices(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted int64 indices of the selected records."""
    labels = np.asarray(labels, dtype=np.int64)
    total = labels.shape[0]
    if fraction == 1.0:
        return np.arange(total, dtype=np.int64)
    n = subset_size(fraction, total)
    rng = np.random.default_rng(seed)
    picked = []
    for label, quota in sorted(class_quotas(labels, n).items()):
        members = np.flatnonzero(labels == label)
        picked.append(rng.choice(members, size=quota, replace=False))
    return np.sort(np.concatenate(picked)).astype(np.int64)
