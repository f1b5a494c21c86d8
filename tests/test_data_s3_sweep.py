"""A sweep whose training data is read from an S3 bucket (loopback moto server) by Ray Data."""
from __future__ import annotations

import math
import os

import pytest

from gensweep.cli import main as cli_main
from gensweep.platform.data import StorageOptions, load_manifest
from gensweep.platform.results import ResultsStore
from gensweep.platform.sweep.runner import run_sweep
from gensweep.platform.spec import parse_spec
from tests.s3_server import S3Server, free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def s3_and_ray():
    import ray

    server = S3Server(port=free_port()).start()
    saved = {k: os.environ.get(k) for k in server.env()}
    os.environ.update(server.env())  # before Ray starts, so its workers inherit the endpoint and fake keys
    server.make_bucket("gensweep-data")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=True, dashboard_host="127.0.0.1")  # the State API: see tests/ray_support.py
    try:
        yield server
    finally:
        ray.shutdown()
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_trial_trains_on_data_prepared_in_the_bucket(tmp_path, s3_and_ray):
    uri = "s3://gensweep-data/mnist-32"
    assert cli_main(["data", "prepare", "mnist", uri, "--resolution", "32"]) == 0
    local = str(tmp_path / "local-mnist")
    assert cli_main(["data", "prepare", "mnist", local, "--resolution", "32"]) == 0
    assert load_manifest(uri, StorageOptions()).fingerprint == load_manifest(local).fingerprint

    spec = parse_spec({
        "name": "s3data",
        "trainable": {"steps": 15, "eval_every": 15, "width": 8, "z_dim": 16, "batch_size": 32, "num_classes": 0},
        "search": {"algorithm": "random", "num_trials": 1, "max_concurrent": 1}, "scheduler": {"kind": "none"},
        "data": {"source": "mnist", "uri": uri, "storage": {"endpoint_url": s3_and_ray.endpoint}},
        "eval": {"num_samples": 200, "ref_samples": 1000},
        "results": {"root": str(tmp_path / "results")},
    })
    outcome = run_sweep(spec, experiment="s3data-run")
    assert outcome.num_errors == 0
    metrics = ResultsStore.open(str(tmp_path / "results")).read("metrics", "s3data-run")
    assert list(metrics["step"]) == [15] and math.isfinite(metrics["fid"].iloc[0])
    assert list(metrics["loader_mode"]) == ["materialize"]  # the driver's blocks, shared with the trial
    # the reference statistics were keyed by the bucket dataset's fingerprint
    assert metrics["refstats_key"].iloc[0].startswith(load_manifest(local).short_fingerprint)


def test_dataset_above_max_shared_bytes_streams_from_the_bucket(tmp_path, s3_and_ray, monkeypatch):
    """``data.max_shared_bytes: 0``: the driver shares nothing, and the trial reads the bucket's
    shards through Ray Data itself; ``data.max_worker_bytes: 0``: its worker streams every epoch (two
    epochs of 31 steps, the second read ahead during the first), then writes its FID rows."""
    from gensweep.platform.data import prepare
    from gensweep.platform.sweep import setup

    uri = "s3://gensweep-data/mnist-32-small"
    prepare("mnist", uri, resolution=32, fraction=0.2, storage=StorageOptions(endpoint_url=s3_and_ray.endpoint))
    shared = []
    real_shared_dataset = setup.shared_dataset
    monkeypatch.setattr(setup, "shared_dataset", lambda *a, **kw: shared.append(real_shared_dataset(*a, **kw))
                        or shared[-1])
    spec = parse_spec({
        "name": "s3stream",
        "trainable": {"steps": 40, "eval_every": 20, "width": 8, "z_dim": 16, "batch_size": 32, "num_classes": 0},
        "search": {"algorithm": "random", "num_trials": 1, "max_concurrent": 1}, "scheduler": {"kind": "none"},
        "data": {"source": "mnist", "uri": uri, "max_shared_bytes": 0, "max_worker_bytes": 0, "readahead_batches": 4,
                 "storage": {"endpoint_url": s3_and_ray.endpoint}},
        "eval": {"num_samples": 200, "ref_samples": 200},
        "results": {"root": str(tmp_path / "results")},
    })
    outcome = run_sweep(spec, experiment="s3stream-run")
    assert shared == [None]  # nothing materialized by the driver: the trial streamed the shards
    assert outcome.num_errors == 0
    metrics = ResultsStore.open(str(tmp_path / "results")).read("metrics", "s3stream-run")
    assert list(metrics["step"]) == [20, 40] and metrics["fid"].map(math.isfinite).all()
    assert list(metrics["loader_mode"]) == ["stream", "stream"]
