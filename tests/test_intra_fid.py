"""Intra-class FID: the registered metric against a direct computation, class-balanced sampling in
the evaluator, per-class reference entries under readable keys, and a conditional trial scored end to end."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import scipy.linalg
import torch

from gensweep.platform.data import prepare
from gensweep.platform.metrics import mnist_split
from gensweep.platform.metrics.evaluator import evaluate
from gensweep.platform.metrics.protocol import METRICS, EvalProtocol
from gensweep.platform.metrics.refstats import RefStats, RefStatsKey, RefStatsRegistry
from gensweep.platform.spec import SpecError
from gensweep.platform.trial.evaluation import WorkerEvaluator, prepare_reference
from gensweep.platform.trial.handoff import EvalRuntime
from gensweep.platform.trial.reeval import reevaluate
from tests.eval_support import run_trial, save_checkpoint, tiny_spec
from tests.test_refstats_subset import sorted_digits  # noqa: F401  (fixture: 40 digits of each class)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
KEY = RefStatsKey(dataset="toy-0000abcd", split="train", resolution=16, protocol="toy-v1", n=90, resize="none", seed=0)


def direct_fid(a: np.ndarray, b: np.ndarray) -> float:
    """FID written out from its definition (Heusel et al. 2017), independent of the package's code."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(s_a @ s_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2 * root))


def synthetic(seed: int, k: int, n: int, shift: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 4)) * (1 + 0.3 * k) + shift * k).astype(np.float32)


def test_intra_fid_equals_the_mean_of_direct_per_class_fids():
    real = {k: synthetic(10 + k, k, 30, 1.0) for k in range(3)}
    fake = {k: synthetic(20 + k, k, 25, 1.2) for k in range(3)}
    ref = RefStats.from_features(KEY, np.concatenate(list(real.values())))
    ref.classes = {k: RefStats.from_features(KEY.of_class(k, 30), real[k]) for k in range(3)}
    labels = np.repeat(np.arange(3), 25)
    feats = np.concatenate([fake[k] for k in range(3)])
    order = np.random.default_rng(0).permutation(len(labels))  # the metric groups by label, not by position
    scores = METRICS.get("intra_fid")({"features": feats[order], "labels": labels[order]}, ref, EvalProtocol(metrics=("intra_fid",)))
    expected = np.mean([direct_fid(fake[k], real[k]) for k in range(3)])
    assert scores["intra_fid"] == pytest.approx(expected, rel=1e-6)
    assert scores["intra_fid"] > 0.1  # the fake classes are shifted: a score that cannot be 0 by accident


def test_intra_fid_needs_two_samples_of_every_class():
    ref = RefStats.from_features(KEY, synthetic(0, 0, 90, 0))
    ref.classes = {k: RefStats.from_features(KEY.of_class(k, 30), synthetic(k, k, 30, 1)) for k in range(3)}
    fake = {"features": synthetic(1, 0, 4, 0), "labels": np.array([0, 0, 1, 1])}
    with pytest.raises(ValueError, match="0 samples of class 2"):
        METRICS.get("intra_fid")(fake, ref, EvalProtocol(metrics=("intra_fid",)))


def test_class_keys_are_readable_and_old_keys_keep_their_digest():
    old = hashlib.sha256(json.dumps({"dataset": "toy-0000abcd", "split": "train", "resolution": 16,
                                     "protocol": "toy-v1", "n": 90, "resize": "none", "seed": 0},
                                    sort_keys=True).encode()).hexdigest()[:8]
    assert KEY.digest == old and "class" not in KEY.slug
    three = KEY.of_class(3, 30)
    assert three.slug.startswith("toy-0000abcd__train__16px__toy-v1__n30__none__seed0__class3__")
    assert three.digest != KEY.digest and RefStatsKey(**three.to_dict()) == three


class ToyBackbone(torch.nn.Module):
    """Features: the image's mean and its first pixel; enough to tell classes apart."""

    name, protocol, feature_dim, has_logits = "toy", "toy-v1", 2, False

    def forward(self, images):
        flat = images.flatten(1)
        return {"features": torch.stack([flat.mean(1), flat[:, 0]], 1)}


def test_evaluator_draws_every_class_equally_and_scores_each():
    calls = []

    def sample_fn(count, seed, labels=None):
        calls.append(labels.clone())
        g = torch.Generator().manual_seed(seed)
        return torch.randn(count, 1, 16, 16, generator=g) * 0.1 + labels[:, None, None, None].float() * 0.3

    real = {k: synthetic(k, 0, 30, 0)[:, :2] * 0.1 + 0.3 * k for k in range(3)}
    ref = RefStats.from_features(KEY, np.concatenate(list(real.values())))
    ref.classes = {k: RefStats.from_features(KEY.of_class(k, 30), real[k]) for k in range(3)}
    protocol = EvalProtocol(backbone="toy", num_samples=30, batch_size=8, metrics=("fid", "intra_fid"))
    scores = evaluate(sample_fn, ToyBackbone(), ref, protocol)
    drawn = torch.cat(calls)
    assert drawn.tolist() == [j % 3 for j in range(30)]  # batches of 8: 0 1 2 0 1 2 0 1 | 2 0 ...
    assert set(scores) >= {"fid", "intra_fid"} and np.isfinite(scores["intra_fid"])
    with pytest.raises(ValueError, match="needs per-class reference statistics"):
        evaluate(sample_fn, ToyBackbone(), RefStats.from_features(KEY, ref.features), protocol)


def test_conditional_trial_reports_intra_fid(sorted_digits, tmp_path):  # noqa: F811  (the imported fixture)
    spec = tiny_spec(tmp_path, sorted_digits, metrics=["fid", "intra_fid"], ladder=[], num_samples=60)
    spec = spec.model_copy(update={"trainable": {**spec.trainable, "num_classes": 10, "conditioning": "projection",
                                                 "steps": 2, "eval_every": 2}})
    ctx, runtime = run_trial(spec, sorted_digits, tmp_path)
    assert [k.label for k in runtime.class_keys] == list(range(10))
    assert sum(k.n for k in runtime.class_keys) == runtime.key.n
    assert EvalRuntime.from_plain(runtime.to_plain()) == runtime
    registry = RefStatsRegistry(tmp_path / "refstats")
    assert all(registry.exists(k) for k in runtime.class_keys)
    last = ctx.reports[-1]
    assert np.isfinite(last["intra_fid"]) and last["intra_fid"] > 0
    again = prepare_reference(spec, sorted_digits, str(tmp_path))  # cached: nothing is computed twice
    assert again.class_keys == runtime.class_keys and not again.computed
    worker = WorkerEvaluator.from_config(again, torch.device("cpu"))
    assert sorted(worker.ref.classes) == list(range(10))

    checkpoint = save_checkpoint(tmp_path / "ckpt", ctx, spec, sorted_digits, tmp_path, runtime)
    row = reevaluate(checkpoint, num_samples=60)  # gensweep eval: same latents, same per-class entries
    assert row["intra_fid"] == pytest.approx(last["intra_fid"], rel=1e-6)
    assert np.isfinite(reevaluate(checkpoint, num_samples=40)["intra_fid"])  # 4 samples of each class


def test_intra_fid_refuses_unsorted_digits(tmp_path, tmp_path_factory):
    src = tmp_path_factory.mktemp("u") / "digits.npy"
    np.save(src, mnist_split("train", pad=False)[0][:60])
    uri = str(tmp_path / "unlabelled")
    prepare(str(src), uri, resolution=16, resize="resize")
    spec = tiny_spec(tmp_path, uri, metrics=["fid", "intra_fid"], ladder=[], ref_samples=60, num_samples=30)
    with pytest.raises(SpecError, match="intra_fid needs a labelled dataset"):
        prepare_reference(spec, uri, str(tmp_path))
