"""Typed hand-offs across process boundaries: the evaluation runtime and the worker config, their
plain form for Ray Train, the files a trial saves from them, and a trial config validated once (no Ray)."""
from __future__ import annotations

import dataclasses
import json
import pickle
import subprocess
import sys

import yaml

from gensweep.platform.metrics import RefStatsKey, SampleLadder
from gensweep.platform.spec import parse_spec
from gensweep.platform.trial.checkpoints import checkpoint_info
from gensweep.platform.trial.evaluation import eval_protocol
from gensweep.platform.trial.handoff import EvalRuntime, WorkerConfig
from gensweep.platform.trial.launch import TrialPlan, worker_config

SPEC = {"name": "handoff", "seed": 3, "trainable": {"steps": 20, "eval_every": 10, "width": 8, "batch_size": 16},
        "data": {"resolution": 16, "seed": 5, "hflip": True, "readahead_batches": 5, "max_worker_bytes": 7, "storage": {"region": "eu-west-1"}},
        "eval": {"num_samples": 100, "ref_samples": 200, "metrics": ["fid", "kid"],
                 "ladder": [{"until_step": 10, "num_samples": 40}]},
        "resources": {"gpus_per_worker": 0}}


def _plan(tmp_path):
    spec = parse_spec({**SPEC, "results": {"root": str(tmp_path)}})
    key = RefStatsKey(dataset="digits-ab12cd34", split="train", resolution=16, protocol="mnist-lenet-v1", n=200,
                      resize="pad")
    protocol = eval_protocol(spec)
    runtime = EvalRuntime(refstats_root=str(tmp_path / "refstats"), key=key, protocol=protocol,
                          ladder=SampleLadder(protocol.num_samples, ((10, 40),)),
                          settings=spec.eval.model_dump(mode="json"), computed=True)
    plan = TrialPlan(spec=spec, experiment="handoff-run", dataset_uri=str(tmp_path / "data"), eval_runtime=runtime,
                     results_root=str(tmp_path), secrets_file="/somewhere/creds.yaml")
    return spec, plan


def _only_builtins(value) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _only_builtins(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_only_builtins(v) for v in value)
    return value is None or isinstance(value, (str, int, float, bool))


def test_the_worker_config_and_the_files_it_saves(tmp_path):
    spec, plan = _plan(tmp_path)
    trial_cfg = spec.resolve_trial({})
    cfg = worker_config(spec, plan, "t1", trial_cfg, {"config/lr": 0.001})
    assert (cfg.family, cfg.trial, cfg.data_seed, cfg.hflip, cfg.use_gpu) == ("gan", trial_cfg, 5, True, False)
    assert (cfg.readahead_batches, cfg.max_worker_bytes) == (5, 7)
    assert cfg.eval_runtime is plan.eval_runtime and cfg.storage.region == "eu-west-1"
    assert cfg.artifacts_uri == plan.trial_artifacts("t1") and cfg.secrets_file == "/somewhere/creds.yaml"
    assert (cfg.results.root, cfg.results.trial_id, cfg.results.columns) == (str(tmp_path), "t1", {"config/lr": 0.001})

    # resolved_config.yaml: the trial's config, its evaluation protocol and ladder, dataset and resources
    saved = (tmp_path / "files" / "handoff-run" / "t1" / "resolved_config.yaml").read_text()
    expected = {"experiment": "handoff-run", "trial_id": "t1", "family": "gan", "config": trial_cfg,
                "eval": {**dataclasses.asdict(eval_protocol(spec)), "ladder": [{"until_step": 10, "num_samples": 40}]},
                "dataset": plan.dataset_uri,
                "resources": {**spec.resources.model_dump(), "trial_launcher": "inline"}}
    assert saved == yaml.safe_dump(expected, sort_keys=False)

    # trial.json of its checkpoints: the spec's eval section and the reference key, as plain JSON
    assert cfg.checkpoint_info == {
        "experiment": "handoff-run", "trial_id": "t1", "family": "gan", "dataset": plan.dataset_uri,
        "results_root": str(tmp_path), "storage": {"endpoint_url": None, "region": "eu-west-1", "profile": None,
                                                   "anon": False},
        "eval": spec.eval.model_dump(mode="json"), "reference": plan.eval_runtime.key.to_dict()}
    assert json.loads(json.dumps(cfg.checkpoint_info)) == cfg.checkpoint_info
    assert checkpoint_info(experiment="handoff-run", trial_id="t1", family="gan", dataset=plan.dataset_uri,
                           results_root=str(tmp_path), storage=cfg.storage.model_dump(),
                           eval_runtime=plan.eval_runtime) == cfg.checkpoint_info


def test_the_plain_form_holds_builtins_and_rebuilds_the_same_config(tmp_path):
    spec, plan = _plan(tmp_path)
    cfg = dataclasses.replace(worker_config(spec, plan, "t1", spec.resolve_trial({})),
                              shared_blocks={"refs": ("r0", "r1"), "slices": (None, (0, 5))})
    plain = cfg.to_plain()
    assert _only_builtins(plain)
    assert WorkerConfig.from_plain(plain) == cfg
    assert WorkerConfig.from_plain(pickle.loads(pickle.dumps(plain))) == cfg
    assert EvalRuntime.from_plain(plan.eval_runtime.to_plain()) == plan.eval_runtime
    assert plan.eval_runtime.refstats_key == plan.eval_runtime.key.slug


def test_the_plain_form_unpickles_without_importing_gensweep(tmp_path):
    spec, plan = _plan(tmp_path)
    blob = pickle.dumps(worker_config(spec, plan, "t1", spec.resolve_trial({})).to_plain())
    probe = ("import pickle, sys; pickle.loads(sys.stdin.buffer.read());"
             " print(sorted(m for m in sys.modules if m.split('.')[0] == 'gensweep'))")
    out = subprocess.run([sys.executable, "-I", "-c", probe], input=blob, capture_output=True, check=True, cwd=tmp_path)
    assert out.stdout.decode().strip() == "[]"


def test_the_plan_carries_the_validated_spec(tmp_path):
    spec, plan = _plan(tmp_path)
    again = pickle.loads(pickle.dumps(plan))
    assert again == plan and again.spec.model_dump() == spec.model_dump()
    assert again.spec.data.storage.model_dump() == {"endpoint_url": None, "region": "eu-west-1", "profile": None}


def test_a_trial_config_is_validated_once(monkeypatch):
    from gensweep.trainables.gan.config import GanConfig

    spec = parse_spec(SPEC)
    calls = []
    original = GanConfig.model_validate.__func__

    def counted(cls, *args, **kwargs):
        calls.append(kwargs.get("context"))
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(GanConfig, "model_validate", classmethod(counted))
    cfg = spec.trial_config({"loss": "hinge"})
    assert isinstance(cfg, GanConfig) and cfg.loss == "hinge" and len(calls) == 1
    assert spec.resolve_trial({"loss": "hinge"}) == cfg.model_dump() and len(calls) == 2


def test_a_streamed_trial_tells_its_loader_the_size_of_each_workers_share(tmp_path):
    """With the share's decoded size up front the loader picks materialize or stream before the
    first epoch (and a streamed share is read ahead from its first epoch, not after an overflow pass)."""
    import numpy as np

    from gensweep.platform.data import prepare
    from gensweep.platform.trial.launch import streamed

    spec, plan = _plan(tmp_path)
    images = np.random.default_rng(0).integers(0, 256, size=(45, 16, 16), dtype=np.uint8)
    np.savez(tmp_path / "digits.npz", x=images, y=np.arange(45) % 3)
    prepare(str(tmp_path / "digits.npz"), plan.dataset_uri, resolution=16)
    cfg = worker_config(spec, plan, "t1", spec.resolve_trial({}))
    assert cfg.expected_shard_bytes is None  # a dataset the driver shares: blocks, no streaming
    per_row = 16 * 16 * 4 + 16  # float32 pixels, int64 label and index
    assert streamed(cfg, spec, plan, workers=1).expected_shard_bytes == 45 * per_row
    assert streamed(cfg, spec, plan, workers=2).expected_shard_bytes == 23 * per_row
    assert WorkerConfig.from_plain(streamed(cfg, spec, plan, workers=4).to_plain()).expected_shard_bytes == 12 * per_row
