"""The reference set of ``eval.ref_samples``: a seeded subset, stratified by label, whose seed is in the key."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gensweep.platform.data import prepare, read_arrays
from gensweep.platform.metrics import get_backbone, mean_cov, mnist_split, reference_features
from gensweep.platform.spec import parse_spec
from gensweep.platform.trial.evaluation import WorkerEvaluator, prepare_reference, reference_images, reference_key

N_REF = 100


@pytest.fixture(scope="module")
def sorted_digits(tmp_path_factory) -> str:
    """400 real digits (40 of each class), 16x16, stored class by class as MNIST sources are."""
    digits, labels = mnist_split("train", pad=False)
    keep = np.concatenate([np.flatnonzero(labels == c)[:40] for c in range(10)])
    src = tmp_path_factory.mktemp("src") / "sorted.npz"
    np.savez(src, x=digits[keep], y=labels[keep])
    uri = str(tmp_path_factory.mktemp("data") / "sorted-16")
    prepare(str(src), uri, resolution=16, resize="resize")
    return uri


def spec_for(dataset: str, root, **eval_fields):
    return parse_spec({"name": "refsub", "trainable": {"steps": 4, "eval_every": 4, "batch_size": 8},
                       "data": {"source": dataset, "uri": dataset, "resolution": 16},
                       "eval": {"num_samples": 50, "ref_samples": N_REF, "batch_size": 50, **eval_fields},
                       "results": {"root": str(root)}})


def test_reference_subset_has_the_datasets_class_histogram(sorted_digits, tmp_path):
    images, labels = read_arrays(sorted_digits)
    counts = np.bincount(labels, minlength=10)
    runtime = prepare_reference(spec_for(sorted_digits, tmp_path), sorted_digits, str(tmp_path))
    chosen = reference_images(runtime.key, sorted_digits, None)
    assert chosen.shape[0] == N_REF
    # which records were chosen: match each chosen image back to its record
    rows = {images[i].tobytes(): i for i in range(len(images))}
    picked = np.array([rows[img.tobytes()] for img in chosen])
    hist = np.bincount(labels[picked], minlength=10)
    expected = counts * N_REF / counts.sum()
    assert np.all(np.abs(hist - expected) <= 1), (hist, expected)  # within rounding
    # the statistics the sweep scores against are those of that subset, not of the first N records
    lenet = get_backbone("mnist-lenet")
    ref = WorkerEvaluator.from_config(runtime, torch.device("cpu")).ref
    mu, _ = mean_cov(reference_features(chosen, lenet, batch_size=50))
    np.testing.assert_allclose(ref.mu, mu, rtol=1e-5, atol=1e-6)
    first_mu, _ = mean_cov(reference_features(images[:N_REF], lenet, batch_size=50))
    assert np.abs(ref.mu - first_mu).max() > 1e-3


def test_the_subsets_seed_is_part_of_the_key(sorted_digits, tmp_path):
    lenet = get_backbone("mnist-lenet")
    a = reference_key(sorted_digits, None, lenet, N_REF, 0)
    b = reference_key(sorted_digits, None, lenet, N_REF, 1)
    assert a.seed == 0 and b.seed == 1 and a.slug != b.slug and "seed0" in a.slug
    assert reference_key(sorted_digits, None, lenet, N_REF, 0) == a  # reproducible
    everything = reference_key(sorted_digits, None, lenet, None, 3)
    assert everything.seed is None and everything.n == 400  # all records: no subset, no seed
    ia = reference_images(a, sorted_digits, None)
    ib = reference_images(b, sorted_digits, None)
    assert not np.array_equal(ia, ib)
    np.testing.assert_array_equal(ia, reference_images(a, sorted_digits, None))
    # the spec's eval.ref_seed reaches the key
    r0 = prepare_reference(spec_for(sorted_digits, tmp_path), sorted_digits, str(tmp_path))
    r1 = prepare_reference(spec_for(sorted_digits, tmp_path, ref_seed=1), sorted_digits, str(tmp_path))
    assert (r0.key.seed, r1.key.seed) == (0, 1) and r0.refstats_key != r1.refstats_key
