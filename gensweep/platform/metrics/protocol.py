"""The metrics an evaluation protocol may name, each one registered function, and the protocol.

A metric is a function ``(fake, ref, protocol) -> {column: value}`` of the generated samples'
features (``fake["features"]``; also ``fake["logits"]`` for a metric registered with
``needs_logits``, and ``fake["labels"]``, the class each sample was drawn for, with ``needs_classes``), the reference statistics and the :class:`EvalProtocol` whose options it
reads. It is registered in :data:`METRICS` with a one-line paper reference and the columns it
writes. The spec's ``eval.metrics``, the evaluator and ``gensweep eval`` take names and columns
from the registry, so adding a metric is one registered function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Optional

import numpy as np

from gensweep.trainables.registry import Registry

from .distances import frechet_distance, inception_score, kid, precision_recall
from .refstats import RefStats
from .statistics import mean_cov

__all__ = ["METRICS", "EvalProtocol", "Metric", "MetricRegistry"]

Features = Mapping[str, np.ndarray]
MetricFn = Callable[[Features, RefStats, "EvalProtocol"], dict[str, float]]


@dataclass(frozen=True)
class Metric:
    """A registered metric: its function, the columns it writes (in order), the columns a one-line
    summary shows (spreads such as ``kid_std`` left out), and whether it reads logits."""

    name: str
    fn: MetricFn
    columns: tuple[str, ...]
    shown: tuple[str, ...]
    needs_logits: bool = False
    needs_classes: bool = False  # reads ``fake["labels"]`` and the per-class statistics ``ref.classes``

    def __call__(self, fake: Features, ref: RefStats, protocol: "EvalProtocol") -> dict[str, float]:
        scores = self.fn(fake, ref, protocol)
        if tuple(scores) != self.columns:
            raise RuntimeError(f"metric {self.name!r} returned columns {list(scores)}; registered {list(self.columns)}")
        return scores


class MetricRegistry(Registry[Metric]):
    """Metrics by name, listed in the order they were registered (the order of their columns)."""

    def metric(self, name: str, *, ref: str, columns: tuple[str, ...], shown: Optional[tuple[str, ...]] = None,
               needs_logits: bool = False, needs_classes: bool = False) -> Callable[[MetricFn], MetricFn]:
        """Register the decorated function as metric ``name`` writing ``columns``."""

        def deco(fn: MetricFn) -> MetricFn:
            entry = Metric(name, fn, tuple(columns), tuple(columns if shown is None else shown), needs_logits,
                           needs_classes)
            self.register(name, ref=ref)(entry)
            return fn

        return deco

    def names(self) -> list[str]:
        return list(self._entries)

    def shown_columns(self) -> tuple[str, ...]:
        """The columns a one-line summary of scores shows, over every registered metric."""
        return tuple(c for name in self.names() for c in self.get(name).shown)


METRICS = MetricRegistry("metric")


@dataclass(frozen=True)
class EvalProtocol:
    """How a generator is scored: backbone, sample count, batching, shared latent seed and metric options."""

    backbone: str = "mnist-lenet"
    num_samples: int = 5000
    batch_size: int = 250
    latent_seed: int = 0
    metrics: tuple[str, ...] = ("fid",)
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    kid_seed: int = 0
    pr_k: int = 3
    is_splits: int = 10

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", tuple(self.metrics))
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown:
            raise ValueError(f"unknown metrics {unknown}; allowed: {', '.join(METRICS)}")
        if self.num_samples < 2 or self.batch_size < 1:
            raise ValueError(f"need num_samples >= 2 and batch_size >= 1; got {self.num_samples}, {self.batch_size}")

    def with_samples(self, n: int) -> "EvalProtocol":
        """The same protocol for ``n`` fake samples (batches and KID subsets no larger than ``n``).

        For ``n <= num_samples`` this equals the protocol one would build for ``n`` directly."""
        return replace(
            self, num_samples=n, batch_size=min(self.batch_size, n), kid_subset_size=min(self.kid_subset_size, n)
        )

    def batches(self) -> list[tuple[int, int]]:
        """(batch index, image count) of every generation batch, in order."""
        n, b = self.num_samples, self.batch_size
        return [(i, min(b, n - i * b)) for i in range((n + b - 1) // b)]

    def selected(self) -> list[Metric]:
        """The protocol's metrics, in registration order (so columns keep one order whatever the spec's)."""
        return [METRICS.get(name) for name in METRICS.names() if name in self.metrics]

    def logits_metrics(self) -> list[str]:
        """The protocol's metrics that read the backbone's logits."""
        return [m.name for m in self.selected() if m.needs_logits]

    def class_metrics(self) -> list[str]:
        """The protocol's metrics that score each class on its own (they need class-balanced samples)."""
        return [m.name for m in self.selected() if m.needs_classes]


@METRICS.metric("fid", columns=("fid",),
                ref="Heusel et al. 2017, GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium (FID)")
def score_fid(fake: Features, ref: RefStats, protocol: EvalProtocol) -> dict[str, float]:
    mu, sigma = mean_cov(fake["features"])
    return {"fid": frechet_distance(ref.mu, ref.sigma, mu, sigma)}


@METRICS.metric("kid", columns=("kid", "kid_std"), shown=("kid",),
                ref="Bińkowski et al. 2018, Demystifying MMD GANs (Kernel Inception Distance)")
def score_kid(fake: Features, ref: RefStats, protocol: EvalProtocol) -> dict[str, float]:
    mean, std = kid(ref.features, fake["features"], subsets=protocol.kid_subsets,
                    subset_size=protocol.kid_subset_size, seed=protocol.kid_seed)
    return {"kid": mean, "kid_std": std}


@METRICS.metric("pr", columns=("precision", "recall"),
                ref="Kynkäänniemi et al. 2019, Improved Precision and Recall Metric for Assessing Generative Models")
def score_precision_recall(fake: Features, ref: RefStats, protocol: EvalProtocol) -> dict[str, float]:
    feats, real = fake["features"], ref.features
    if len(real) > len(feats):  # equal-size sets, as Kynkäänniemi et al.; fixed subset
        idx = np.sort(np.random.default_rng(0).choice(len(real), len(feats), replace=False))
        real = real[idx]
    precision, recall = precision_recall(real, feats, k=protocol.pr_k)
    return {"precision": precision, "recall": recall}


@METRICS.metric("is", columns=("is", "is_std"), shown=("is",), needs_logits=True,
                ref="Salimans et al. 2016, Improved Techniques for Training GANs (Inception Score)")
def score_inception(fake: Features, ref: RefStats, protocol: EvalProtocol) -> dict[str, float]:
    mean, std = inception_score(fake["logits"], splits=protocol.is_splits)
    return {"is": mean, "is_std": std}


@METRICS.metric("intra_fid", columns=("intra_fid",), needs_classes=True,
                ref="Miyato & Koyama 2018, cGANs with Projection Discriminator (intra-class FID)")
def score_intra_fid(fake: Features, ref: RefStats, protocol: EvalProtocol) -> dict[str, float]:
    """Mean over the reference's classes of the FID between the samples drawn for class k and
    the reference records of class k (``ref.classes[k]``)."""
    if not ref.classes:
        raise ValueError("intra_fid needs per-class reference statistics (ref.classes is empty)")
    labels = fake["labels"]
    scores = []
    for k, stats in sorted(ref.classes.items()):
        feats = fake["features"][labels == k]
        if len(feats) < 2:
            raise ValueError(f"intra_fid: {len(feats)} samples of class {k}; each class needs >= 2"
                             f" (eval.num_samples >= 2 x {len(ref.classes)} classes)")
        mu, sigma = mean_cov(feats)
        scores.append(frechet_distance(stats.mu, stats.sigma, mu, sigma))
    return {"intra_fid": float(np.mean(scores))}
