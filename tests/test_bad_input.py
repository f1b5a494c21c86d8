"""Bad input is rejected before Ray starts, with a message that names the field.

Every malformed spec of the corpus goes through the real command line (``gensweep run``,
in-process) and must exit 2, print a message naming the field on stderr, and leave Ray
uninitialised. Malformed checkpoint files raise :class:`CheckpointError` with a clear message.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import yaml

from gensweep.cli import main as cli_main
from gensweep.platform.trial.checkpoints import STATE_FILE, CheckpointError, load_state_file


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again on exit: nothing listens there


BASE = {"name": "bad", "trainable": {"steps": 30, "eval_every": 15, "width": 8, "batch_size": 32, "num_classes": 0}}


def _with(**sections):
    doc = yaml.safe_load(yaml.safe_dump(BASE))
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key] = {**doc[key], **value}
        else:
            doc[key] = value
    return doc


# (case id, spec document (or raw text), substrings the error must contain)
CORPUS = [
    # unknown keys
    ("unknown-top-level-key", _with(foo=1), ["foo", "unknown field"]),
    ("unknown-search-key", _with(search={"algo": "tpe"}), ["search.algo", "unknown field"]),
    ("unknown-trainable-setting", _with(trainable={"widht": 8}), ["trainable.widht"]),
    ("unknown-space-parameter", _with(space={"depth": [1, 2]}), ["space.depth"]),
    ("credential-in-spec", _with(data={"storage": {"aws_secret_access_key": "abc123"}}),
     ["data.storage.aws_secret_access_key", "unknown field"]),
    # wrong types
    ("num-trials-not-int", _with(search={"num_trials": "six"}), ["search.num_trials"]),
    ("metrics-not-list", _with(eval={"metrics": "fid"}), ["eval.metrics"]),
    ("seeds-not-ints", _with(search={"seeds": ["a"]}), ["search.seeds"]),
    ("hflip-not-bool", _with(data={"hflip": "sometimes"}), ["data.hflip"]),
    # out-of-range values
    ("num-trials-zero", _with(search={"num_trials": 0}), ["search.num_trials"]),
    ("max-concurrent-negative", _with(search={"max_concurrent": -1}), ["search.max_concurrent"]),
    ("reduction-factor-one", _with(scheduler={"reduction_factor": 1.0}), ["scheduler.reduction_factor"]),
    ("grace-period-zero", _with(scheduler={"grace_period": 0}), ["scheduler.grace_period"]),
    ("resolution-too-small", _with(data={"resolution": 2}), ["data.resolution"]),
    ("fraction-above-one", _with(data={"fraction": 1.5}), ["data.fraction"]),
    ("eval-one-sample", _with(eval={"num_samples": 1}), ["eval.num_samples"]),
    ("lr-above-one", _with(trainable={"lr": 2.0}), ["trainable.lr"]),
    ("steps-zero", _with(trainable={"steps": 0}), ["trainable.steps"]),
    ("loguniform-low-zero", _with(space={"lr": {"type": "loguniform", "low": 0, "high": 1e-3}}), ["space", "lr"]),
    # bad enumerations
    ("unknown-algorithm", _with(search={"algorithm": "bayes"}), ["search.algorithm"]),
    ("unknown-mode", _with(search={"mode": "minimize"}), ["search.mode"]),
    ("unknown-scheduler", _with(scheduler={"kind": "bohb"}), ["scheduler.kind"]),
    ("channels-two", _with(data={"channels": 2}), ["data.channels"]),
    ("unknown-resize", _with(data={"resize": "squash"}), ["data.resize"]),
    ("unknown-resize-filter", _with(data={"resize_filter": "cubic"}), ["data.resize_filter"]),
    ("unknown-bad-records-policy", _with(data={"bad_records": "ignore"}), ["data.bad_records"]),
    ("unknown-metric", _with(eval={"metrics": ["fidd"]}), ["eval.metrics"]),
    ("unknown-family", _with(family="vae"), ["family"]),
    ("unknown-loss", _with(trainable={"loss": "wasserstein-ish"}), ["trainable.loss"]),
    ("bad-name", _with(name="bad name!"), ["name"]),
    ("missing-name", {k: v for k, v in BASE.items() if k != "name"}, ["name"]),
    # incompatible components
    ("acgan-without-classes", _with(trainable={"conditioning": "acgan", "num_classes": 0}), ["conditioning", "num_classes"]),
    ("searched-and-fixed", _with(space={"width": [8, 16]}), ["space.width", "trainable.width"]),
    ("seed-searched", _with(space={"seed": [0, 1]}), ["space.seed", "search.seeds"]),
    ("seed-fixed-and-replicated", _with(trainable={"seed": 3}, search={"seeds": [0, 1]}),
     ["trainable.seed", "search.seeds"]),
    ("grid-with-asha", _with(search={"algorithm": "grid"}, space={"loss": ["ns", "hinge"]}), ["scheduler.kind"]),
    # bad resources
    ("workers-zero", _with(resources={"workers": 0}), ["resources.workers"]),
    ("cpus-zero", _with(resources={"cpus_per_worker": 0}), ["resources.cpus_per_worker"]),
    ("gpus-negative", _with(resources={"gpus_per_worker": -1}), ["resources.gpus_per_worker"]),
    ("max-failures-negative", _with(resources={"max_failures": -1}), ["resources.max_failures"]),
    ("unknown-launcher", _with(resources={"launcher": "k8s"}), ["resources.launcher"]),
    ("inline-with-two-workers", _with(resources={"launcher": "inline", "workers": 2}), ["resources", "inline"]),
    # valid documents the world cannot run (preflight, still before Ray)
    ("trial-larger-than-machine", _with(resources={"workers": 3, "cpus_per_worker": 1}), ["resources.workers", "3 CPUs"]),
    ("gpu-on-cpu-machine", _with(resources={"gpus_per_worker": 1}), ["resources.gpus_per_worker"]),
    ("unknown-backbone", _with(eval={"backbone": "resnet"}), ["eval.backbone"]),
    ("missing-npz-source", _with(data={"source": "/nonexistent/gensweep/digits.npz"}), ["data.source", "does not exist"]),
    ("missing-folder-source", _with(data={"source": "/nonexistent/gensweep/images"}), ["data.source"]),
    ("unreachable-s3-source", _with(data={"source": "s3://gensweep-bucket/digits.npz"}),
     ["data.source", "cannot reach object storage"]),
    ("negative-max-shared-bytes", _with(data={"max_shared_bytes": -1}), ["data.max_shared_bytes"]),
    ("unsupported-root-scheme", _with(results={"root": "gs://bucket/prefix"}), ["results.root", "gs"]),
    ("unreachable-s3-root", "S3_ROOT", ["results.root", "cannot reach object storage"]),
    ("unreachable-s3-data", "S3_DATA", ["data.uri", "cannot reach object storage"]),
    ("root-under-a-file", "ROOT_UNDER_FILE", ["results.root", "not a writable folder"]),
    ("missing-secrets-file", _with(data={"storage": {"secrets_file": "/nonexistent/gensweep/creds.yaml"}}),
     ["data.storage.secrets_file", "cannot be read"]),
    # not a spec at all
    ("not-a-mapping", "- just\n- a list\n", ["mapping"]),
    ("empty-file", "", ["mapping"]),
    ("invalid-yaml", "name: [unclosed\n", ["not valid YAML"]),
    ("python-tag-refused", "name: !!python/object/apply:os.system ['touch /tmp/gensweep-pwned']\n", ["not valid YAML"]),
]


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Fake AWS settings pointing at a port nothing listens on; cwd in tmp."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    return tmp_path


def _spec_text(doc, tmp_path: Path) -> str:
    if doc == "S3_ROOT":
        doc = _with(results={"root": "s3://gensweep-bucket/prefix"})
    elif doc == "S3_DATA":
        doc = _with(data={"uri": "s3://gensweep-bucket/datasets/mnist"})
    elif doc == "ROOT_UNDER_FILE":
        (tmp_path / "a-file").write_text("x")
        doc = _with(results={"root": str(tmp_path / "a-file" / "results")})
    if isinstance(doc, str):
        return doc
    doc = dict(doc)
    doc.setdefault("results", {"root": str(tmp_path / "results")})
    return yaml.safe_dump(doc)


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 30 and len({c[0] for c in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("case,doc,expected", CORPUS, ids=[c[0] for c in CORPUS])
def test_bad_spec_is_rejected_before_ray_starts(case, doc, expected, isolated, capsys):
    import ray

    assert not ray.is_initialized()
    path = isolated / "spec.yaml"
    path.write_text(_spec_text(doc, isolated))
    rc = cli_main(["run", str(path), "--num-cpus", "2"])
    err = capsys.readouterr().err
    assert rc == 2, f"{case}: exit {rc}, stderr: {err}"
    assert not ray.is_initialized(), f"{case}: Ray was started"
    for text in expected:
        assert text in err, f"{case}: {text!r} not in the message:\n{err}"
    assert "Traceback" not in err
    assert not Path("/tmp/gensweep-pwned").exists()


def test_missing_spec_file_is_a_clear_error(isolated, capsys):
    assert cli_main(["run", str(isolated / "nope.yaml")]) == 2
    assert "cannot read spec" in capsys.readouterr().err


def test_resume_of_an_unknown_experiment_is_a_clear_error(isolated, capsys):
    import ray

    assert cli_main(["resume", "no-such-exp", "--root", str(isolated / "results")]) == 2
    err = capsys.readouterr().err
    assert "no-such-exp" in err and "nothing to resume" in err and not ray.is_initialized()


# ------------------------------------------------------------------ checkpoint files
def _state(step: int = 15) -> dict:
    return {"step": step, "G": {"w": torch.randn(4, 4)}, "opt_G": {"state": {}, "param_groups": []}}


@pytest.mark.parametrize(
    "name,write,message",
    [
        ("garbage", lambda p: p.write_bytes(b"not a checkpoint at all"), "cannot be loaded"),
        ("empty", lambda p: p.write_bytes(b""), "cannot be loaded"),
        ("truncated", lambda p: (torch.save(_state(), p), p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])),
         "cannot be loaded"),
        ("one-byte-flipped-zip-header", lambda p: (torch.save(_state(), p), p.write_bytes(b"\x00" + p.read_bytes()[1:])),
         "cannot be loaded"),
        ("no-step", lambda p: torch.save({"weights": torch.zeros(2)}, p), "not a gensweep trial state"),
        ("a-tensor", lambda p: torch.save(torch.zeros(3), p), "not a gensweep trial state"),
        ("a-list", lambda p: torch.save([1, 2, 3], p), "not a gensweep trial state"),
    ],
)
def test_malformed_checkpoint_raises_checkpoint_error(tmp_path, name, write, message):
    path = tmp_path / STATE_FILE
    write(path)
    with pytest.raises(CheckpointError, match=message) as info:
        load_state_file(str(path))
    assert str(path) in str(info.value)


def test_missing_checkpoint_file(tmp_path):
    with pytest.raises(CheckpointError, match=f"has no {STATE_FILE}"):
        load_state_file(str(tmp_path / STATE_FILE))


def test_good_checkpoint_still_loads(tmp_path):
    torch.save(_state(30), tmp_path / STATE_FILE)
    assert load_state_file(str(tmp_path / STATE_FILE))["step"] == 30
    assert os.path.exists(tmp_path / STATE_FILE)


def test_a_trial_that_fills_the_machine_exactly_passes_the_preflight(isolated):
    """The Tune driver holds no CPU (see capacity.py): 2 workers x 1 CPU fit 2 CPUs."""
    from gensweep.platform.sweep.preflight import preflight
    from gensweep.platform.spec import parse_spec

    spec = parse_spec(_with(resources={"workers": 2, "cpus_per_worker": 1}, results={"root": str(isolated / "r")}))
    assert preflight(spec, num_cpus=2) == []
