"""Reference-statistics registry: readable keys, compute-once (in and across processes), protocol checks."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from pathlib import Path

import numpy as np
import pytest

from gensweep.platform.metrics import (
    ProtocolMismatch,
    RefStats,
    RefStatsKey,
    RefStatsRegistry,
    dataset_fingerprint,
    mean_cov,
)

PROTOCOL = "mnist-lenet-v1:32px:gray-bt601:bilinear-aa"


def make_key(**overrides) -> RefStatsKey:
    fields = dict(dataset="mnist-ab12cd34", split="train", resolution=32, protocol=PROTOCOL, n=64, resize="pad")
    fields.update(overrides)
    return RefStatsKey(**fields)


def fake_features(n=64, d=8, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def test_key_slug_is_readable_and_distinct():
    key = make_key()
    assert key.slug.startswith("mnist-ab12cd34__train__32px__mnist-lenet-v1-32px-gray-bt601-bilinear-aa__n64__pad__")
    assert "/" not in key.slug and ":" not in key.slug
    assert make_key(resize="bilinear").slug != key.slug and make_key(protocol=PROTOCOL + "x").slug != key.slug
    # sanitising must not merge keys: the hash tail tells "a:b" and "a-b" apart
    assert make_key(split="a:b").slug != make_key(split="a-b").slug
    with pytest.raises(Exception):
        key.n = 3  # frozen
    fp = dataset_fingerprint("mnist", np.arange(10, dtype=np.uint8))
    assert fp.startswith("mnist-") and len(fp) == len("mnist-") + 8
    assert fp != dataset_fingerprint("mnist", np.arange(1, 11, dtype=np.uint8))


def test_second_call_loads_without_computing(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return fake_features()

    reg = RefStatsRegistry(tmp_path)
    first = reg.get_or_compute(make_key(), compute)
    second = RefStatsRegistry(tmp_path).get_or_compute(make_key(), compute)  # fresh object, same disk
    third = reg.get_or_compute(make_key(), compute)
    assert len(calls) == 1 and reg.compute_count == 1
    assert first.computed and not second.computed and not third.computed
    mu, sigma = mean_cov(fake_features())
    np.testing.assert_array_equal(second.mu, mu)
    np.testing.assert_array_equal(second.sigma, sigma)
    np.testing.assert_array_equal(second.features, fake_features())
    assert second.features.dtype == np.float32 and second.sigma.dtype == np.float64
    sidecar = json.loads((tmp_path / f"{make_key().slug}.json").read_text())
    assert sidecar["key"] == make_key().to_dict()
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]  # no temp files left behind
    # a different key is a different entry
    reg.get_or_compute(make_key(split="test"), compute)
    assert len(calls) == 2


def test_failed_compute_leaves_nothing(tmp_path):
    reg = RefStatsRegistry(tmp_path)

    def boom():
        raise RuntimeError("no data")

    with pytest.raises(RuntimeError):
        reg.get_or_compute(make_key(), boom)
    assert not reg.exists(make_key())
    assert reg.get_or_compute(make_key(), fake_features).computed


def _worker(root: str, marker_dir: str, idx: int, nprocs: int, out: str) -> None:
    # start together: wait until every process is up before asking the registry
    Path(marker_dir, f"ready{idx}").touch()
    deadline = time.time() + 60
    while len(os.listdir(marker_dir)) < nprocs and time.time() < deadline:
        time.sleep(0.01)

    def compute():
        with open(Path(root).parent / "computations.log", "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(1.0)  # a slow computation so the others pile up on the lock
        return fake_features(seed=7)

    stats = RefStatsRegistry(root).get_or_compute(make_key(), compute)
    Path(out).write_text(json.dumps({"computed": stats.computed, "mu0": float(stats.mu[0])}))


def test_concurrent_processes_compute_once(tmp_path):
    ctx = mp.get_context("spawn")
    root, markers = tmp_path / "refstats", tmp_path / "markers"
    markers.mkdir()
    nprocs = 3
    outs = [tmp_path / f"out{i}.json" for i in range(nprocs)]
    procs = [ctx.Process(target=_worker, args=(str(root), str(markers), i, nprocs, str(outs[i]))) for i in range(nprocs)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join(timeout=120)
        assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
    results = [json.loads(o.read_text()) for o in outs]
    assert sum(r["computed"] for r in results) == 1
    assert len((tmp_path / "computations.log").read_text().split()) == 1
    assert len({r["mu0"] for r in results}) == 1


def test_protocol_mismatch_names_the_field():
    ref = RefStats.from_features(make_key(), fake_features())
    ref.check_compatible(protocol=PROTOCOL, resolution=32, n=999)  # n is not required to match by default
    with pytest.raises(ProtocolMismatch, match=r"protocol: reference='mnist-lenet-v1.*' vs other='inception-v3-tf"):
        ref.check_compatible(protocol="inception-v3-tf-2015-12-05:299px:rgb:u8-quant:bilinear-torch")
    with pytest.raises(ProtocolMismatch, match=r"resolution: reference=32 vs other=64"):
        ref.check_compatible(resolution=64)
    with pytest.raises(ProtocolMismatch, match=r"n: reference=64 vs other=999"):
        ref.check_compatible(n=999, match_n=True)
    other = RefStats.from_features(make_key(split="test", resize="bilinear"), fake_features(seed=1))
    with pytest.raises(ProtocolMismatch) as info:
        ref.frechet_to(other)
    assert "resize: reference='pad' vs other='bilinear'" in str(info.value) and "protocol" not in str(info.value)
    same_protocol = RefStats.from_features(make_key(split="test"), fake_features(seed=1))
    assert ref.frechet_to(same_protocol) > 0
