"""Reference statistics in the results store: written once (local disk and S3), read by workers from there,
and each entry's real-vs-real FID floor."""
from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
import scipy.linalg
import torch

from gensweep.platform.metrics.refstats import RefStats, RefStatsKey, RefStatsRegistry
from gensweep.platform.spec import parse_spec
from gensweep.platform.trial.evaluation import WorkerEvaluator, prepare_reference
from tests.eval_support import tiny_data  # noqa: F401 - fixture
from tests.results_support import store_uri  # noqa: F401 - fixture


def make_key(**overrides) -> RefStatsKey:
    fields = dict(dataset="toy-ab12cd34", split="train", resolution=16, protocol="toy-v1", n=40, resize="pad", seed=3)
    return RefStatsKey(**{**fields, **overrides})


def feats(seed: int, n: int = 40, d: int = 4) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


@pytest.fixture
def root(store_uri):  # noqa: F811 - the imported fixture
    """A registry root on local disk or on the loopback S3 server."""
    return f"{store_uri}/refstats"


def test_two_writers_racing_publish_one_entry(root):
    a, b = RefStatsRegistry(root), RefStatsRegistry(root)
    first = a.publish(RefStats.from_features(make_key(), feats(0)))
    second = b.publish(RefStats.from_features(make_key(), feats(1)))  # lost the race: gets the winner's
    assert first.computed and not second.computed
    np.testing.assert_array_equal(second.features, feats(0))
    data = [n for n in a.folder.names() if n.endswith(".npz")]
    assert len(data) == 1, data  # the loser removed its own data object
    assert json.loads(a.folder.read(f"{make_key().slug}.json"))["data"] == data[0]


def test_a_writer_that_died_mid_write_leaves_no_entry_and_no_wait(root):
    reg = RefStatsRegistry(root, lock_timeout=30, lease_ttl_s=1.0)
    slug = make_key().slug
    reg.folder.write(f"{slug}.deadbeef.npz", b"half an npz")  # its data object, never committed
    reg.folder.write(f"{slug}.lock", json.dumps({"owner": "dead", "expires": time.time() - 1}).encode())
    assert not reg.exists(make_key())
    t0 = time.monotonic()
    stats = reg.get_or_compute(make_key(), lambda: feats(2))
    assert stats.computed and time.monotonic() - t0 < 10  # took over the expired lease
    np.testing.assert_array_equal(RefStatsRegistry(root).load(make_key()).features, feats(2))
    assert not reg.folder.exists(f"{slug}.lock")  # released


def test_concurrent_callers_compute_once(root):
    calls, out = [], {}

    def compute():
        calls.append(1)
        time.sleep(1.0)  # the others find the lease held and wait
        return feats(4)

    def call(i):
        out[i] = RefStatsRegistry(root, lock_timeout=60, poll_s=0.05).get_or_compute(make_key(), compute)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    assert len(calls) == 1 and sum(s.computed for s in out.values()) == 1
    assert all(np.array_equal(s.mu, out[0].mu) for s in out.values())


def independent_fid(a: np.ndarray, b: np.ndarray) -> float:
    """FID as pytorch-fid writes it: np.cov and scipy's sqrtm on float64."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    m1, m2, s1, s2 = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = np.real(scipy.linalg.sqrtm(s1 @ s2))
    return float(((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_each_entry_records_a_real_vs_real_floor(root):
    f = feats(5, n=41)  # odd: one record is left out of both halves
    stats = RefStatsRegistry(root).get_or_compute(make_key(n=41, seed=7), lambda: f)
    order = np.random.default_rng(7).permutation(41)
    expected = independent_fid(f[order[:20]], f[order[20:40]])
    assert stats.fid_floor == pytest.approx(expected, rel=1e-6)
    assert expected > 0 and "halves of 20 (seed 7)" in stats.fid_floor_note
    loaded = RefStatsRegistry(root).load(make_key(n=41, seed=7))
    assert loaded.fid_floor == pytest.approx(expected, rel=1e-6)
    sidecar = json.loads(RefStatsRegistry(root).folder.read(f"{make_key(n=41, seed=7).slug}.json"))
    assert sidecar["fid_floor"] == pytest.approx(expected, rel=1e-6)
    # published statistics without features: recorded as having no floor
    mu, sigma = f.mean(0).astype(np.float64), np.cov(f, rowvar=False)
    imported = RefStatsRegistry(root).publish(RefStats.from_moments(make_key(dataset="published", seed=None), mu, sigma))
    again = RefStatsRegistry(root).load(imported.key)
    assert again.features is None and again.fid_floor is None and "not available" in again.fid_floor_note


def test_workers_read_the_statistics_from_the_store_not_a_local_cache(tiny_data, s3_bucket, tmp_path,  # noqa: F811
                                                                      monkeypatch):
    monkeypatch.setenv("GENSWEEP_CACHE", str(tmp_path / "driver-cache"))
    results = f"s3://{s3_bucket}/sweeps"
    spec = parse_spec({"name": "s3ref", "trainable": {"steps": 4, "eval_every": 4, "batch_size": 8},
                       "data": {"source": tiny_data, "uri": tiny_data, "resolution": 16},
                       "eval": {"num_samples": 50, "ref_samples": 60, "batch_size": 60}, "results": {"root": results}})
    runtime = prepare_reference(spec, tiny_data, results)
    assert runtime.refstats_root == f"{results}/refstats" and runtime.computed
    assert not (tmp_path / "driver-cache").exists()  # nothing written on the driver's disk
    # a worker on another node: its own HOME and cache; it gets the runtime as plain data
    monkeypatch.setenv("HOME", str(tmp_path / "other-home"))
    monkeypatch.setenv("GENSWEEP_CACHE", str(tmp_path / "other-cache"))
    from gensweep.platform.trial.handoff import EvalRuntime

    worker = WorkerEvaluator.from_config(EvalRuntime.from_plain(runtime.to_plain()), torch.device("cpu"))
    assert worker.ref.key == runtime.key and worker.ref.fid_floor == runtime.fid_floor is not None
