"""Metrics as a registry: each metric one registered function with its paper and columns; the spec,
the evaluator and `gensweep eval` take names and columns from it."""

from __future__ import annotations

import numpy as np
import pytest

from gensweep.platform.metrics import (
    METRICS,
    EvalProtocol,
    Metric,
    RefStats,
    RefStatsKey,
    compute_metrics,
    frechet_distance,
    inception_score,
    kid,
    mean_cov,
    precision_recall,
)
from gensweep.platform.spec import SpecError, parse_spec
from gensweep.trainables.registry import UnknownComponent


def _features(n: int, seed: int, shift: float = 0.0) -> np.ndarray:
    return (np.random.default_rng(seed).normal(size=(n, 6)) + shift).astype(np.float32)


@pytest.fixture(scope="module")
def ref() -> RefStats:
    key = RefStatsKey(dataset="toy", split="train", resolution=8, protocol="toy-v1", n=80, resize="pad")
    return RefStats.from_features(key, _features(80, 0))


@pytest.fixture(scope="module")
def fake() -> dict[str, np.ndarray]:
    return {"features": _features(40, 1, shift=0.3), "logits": np.random.default_rng(2).normal(size=(40, 10))}


@pytest.fixture
def scratch_registry(monkeypatch):
    """Registrations made during the test are dropped after it (the registry has no removal)."""
    monkeypatch.setattr(METRICS, "_entries", dict(METRICS._entries))
    return METRICS


def test_every_metric_is_registered_with_a_paper_and_its_columns():
    assert METRICS.names() == ["fid", "kid", "pr", "is", "intra_fid"]  # registration order: the order of the columns
    refs = METRICS.describe()
    assert "Heusel" in refs["fid"] and "Bińkowski" in refs["kid"]
    assert "Kynkäänniemi" in refs["pr"] and "Salimans" in refs["is"]
    assert {n: METRICS.get(n).columns for n in METRICS} == {
        "fid": ("fid",), "kid": ("kid", "kid_std"), "pr": ("precision", "recall"), "is": ("is", "is_std"),
        "intra_fid": ("intra_fid",)}
    assert METRICS.shown_columns() == ("fid", "kid", "precision", "recall", "is", "intra_fid")  # spreads left out
    assert [n for n in METRICS if METRICS.get(n).needs_logits] == ["is"]
    with pytest.raises(UnknownComponent, match="allowed: fid, intra_fid, is, kid, pr"):
        METRICS.get("lpips")


def test_registry_scores_equal_the_distance_functions(ref, fake):
    protocol = EvalProtocol(num_samples=40, batch_size=8, metrics=("is", "pr", "kid", "fid"), kid_subsets=5,
                            kid_subset_size=20, is_splits=4)
    out = compute_metrics(fake, ref, protocol)
    assert list(out) == ["fid", "kid", "kid_std", "precision", "recall", "is", "is_std"]  # whatever the spec's order
    mu, sigma = mean_cov(fake["features"])
    assert out["fid"] == frechet_distance(ref.mu, ref.sigma, mu, sigma)
    assert (out["kid"], out["kid_std"]) == kid(ref.features, fake["features"], subsets=5, subset_size=20, seed=0)
    idx = np.sort(np.random.default_rng(0).choice(80, 40, replace=False))  # equal-size sets, fixed subset
    assert (out["precision"], out["recall"]) == precision_recall(ref.features[idx], fake["features"], k=3)
    assert (out["is"], out["is_std"]) == inception_score(fake["logits"], splits=4)
    assert compute_metrics(fake, ref, EvalProtocol(num_samples=40, metrics=["kid"], kid_subsets=5,
                                                   kid_subset_size=20)).keys() == {"kid", "kid_std"}


def test_only_metrics_that_read_logits_ask_for_them():
    assert EvalProtocol(metrics=("fid", "kid", "pr")).logits_metrics() == []
    assert EvalProtocol(metrics=("fid", "is")).logits_metrics() == ["is"]


def test_a_metric_must_write_the_columns_it_registered(ref, fake, scratch_registry):
    @scratch_registry.metric("misnamed", columns=("gap",), ref="a test metric")
    def misnamed(fake, ref, protocol):
        return {"frechet": 1.0}

    with pytest.raises(RuntimeError, match=r"metric 'misnamed' returned columns \['frechet'\]; registered \['gap'\]"):
        compute_metrics(fake, ref, EvalProtocol(num_samples=40, metrics=("misnamed",)))


def test_one_registered_function_is_a_metric_for_the_spec_the_evaluator_and_the_cli(ref, fake, scratch_registry):
    @scratch_registry.metric("gap", columns=("mean_gap",), ref="a test metric: distance between feature means")
    def mean_gap(fake, ref, protocol):
        return {"mean_gap": float(np.abs(fake["features"].mean(0) - ref.mu).sum())}

    assert isinstance(METRICS.get("gap"), Metric) and METRICS.describe()["gap"].startswith("a test metric")
    spec = parse_spec({"name": "x", "eval": {"metrics": ["gap", "fid"]}})
    assert spec.eval.metrics == ["gap", "fid"]
    out = compute_metrics(fake, ref, EvalProtocol(num_samples=40, metrics=spec.eval.metrics))
    assert list(out) == ["fid", "mean_gap"] and out["mean_gap"] == mean_gap(fake, ref, None)["mean_gap"]
    assert METRICS.shown_columns()[-1] == "mean_gap"  # what `gensweep eval` prints


def test_unregistered_names_are_refused_naming_the_registered_ones():
    with pytest.raises(SpecError, match=r"eval.metrics.1: must be one of 'fid', 'kid', 'pr', 'is' or 'intra_fid'"):
        parse_spec({"name": "x", "eval": {"metrics": ["fid", "lpips"]}})
    with pytest.raises(SpecError, match="eval.metrics.0: must be one of"):
        parse_spec({"name": "x", "eval": {"metrics": [3]}})
    with pytest.raises(ValueError, match=r"unknown metrics \['lpips'\]; allowed: fid, kid, pr, is"):
        EvalProtocol(metrics=("fid", "lpips"))
