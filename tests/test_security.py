"""Security properties that need no sweep (the sweeps with planted credentials are in
tests/test_faults_driver.py and tests/test_faults_storage.py: they grep every file the sweep
wrote, Ray's logs and the captured output for the planted values).

* YAML is only ever read with safe loaders; ``torch.load`` only with ``weights_only=True``;
* a checkpoint holding a pickled object is refused (and its payload never runs);
* credentials come from the environment, a profile or a secrets file, never from the spec,
  and Ray Tune is kept from copying them into trial runtime envs (which Ray logs);
* a local Ray instance started by gensweep binds its dashboard to 127.0.0.1;
* job submission authenticates with the Ray token in an HTTP header only.
"""
from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest
import torch
import yaml

import gensweep
from gensweep.platform.storage.secrets import (
    CREDENTIAL_ENV_VARS,
    SecretsError,
    apply_secrets_file,
    keep_credentials_out_of_ray,
    read_secrets_file,
)
from gensweep.platform.spec import parse_spec
from gensweep.platform.trial.checkpoints import STATE_FILE, CheckpointError, load_state_file

PACKAGE = Path(gensweep.__file__).parent
SOURCES = sorted(PACKAGE.rglob("*.py"))


def _calls(name_pred):
    """(file, line, source) of every call whose dotted name satisfies ``name_pred``."""
    found = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                if name_pred(name):
                    found.append((path.relative_to(PACKAGE.parent), node.lineno, ast.unparse(node)))
    return found


def test_sources_were_found():
    assert len(SOURCES) > 50


def test_yaml_is_only_read_with_safe_loaders():
    unsafe = _calls(lambda n: re.fullmatch(r"(yaml\.)?(load|load_all|unsafe_load|unsafe_load_all|full_load|full_load_all)", n)
                    is not None and n.startswith("yaml."))
    assert not unsafe, unsafe
    text = "\n".join(p.read_text() for p in SOURCES)
    assert not re.search(r"\b(UnsafeLoader|FullLoader|yaml\.Loader)\b", text)
    assert _calls(lambda n: n == "yaml.safe_load")  # and the safe one is what is used


def test_torch_load_is_always_weights_only():
    loads = _calls(lambda n: n == "torch.load")
    assert loads
    bad = [c for c in loads if "weights_only=True" not in c[2]]
    assert not bad, bad


class _Payload:
    """Pickles as a call that would create a file when unpickled."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_pickled_object_in_a_checkpoint_is_refused(tmp_path):
    marker = tmp_path / "payload-ran"
    torch.save({"step": 15, "G": {"w": torch.zeros(2)}, "extra": _Payload(str(marker))}, tmp_path / STATE_FILE)
    with pytest.raises(CheckpointError, match="cannot be loaded"):
        load_state_file(str(tmp_path / STATE_FILE))
    assert not marker.exists()  # the payload never ran


# ------------------------------------------------------------------------ credentials
def test_secrets_file_yaml_and_ini(tmp_path, monkeypatch):
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-env-wins")
    y = tmp_path / "creds.yaml"
    y.write_text(yaml.safe_dump({"aws_secret_access_key": "from-file", "aws_session_token": "tok-from-file"}))
    assert apply_secrets_file(str(y)) == ["AWS_SESSION_TOKEN"]
    assert os.environ["AWS_SESSION_TOKEN"] == "tok-from-file"
    assert os.environ["AWS_SECRET_ACCESS_KEY"] == "from-env-wins"  # the usual AWS precedence
    ini = tmp_path / "credentials"
    ini.write_text("[default]\naws_access_key_id = AKIA1\naws_secret_access_key = s3cr3t-ini\n")
    assert read_secrets_file(ini) == {"AWS_ACCESS_KEY_ID": "AKIA1", "AWS_SECRET_ACCESS_KEY": "s3cr3t-ini"}


def test_secrets_file_errors_never_echo_its_content(tmp_path):
    bad = tmp_path / "creds.yaml"
    bad.write_text("aws_secret_access_key: [sup3r-s3cret\n")
    with pytest.raises(SecretsError) as info:
        read_secrets_file(bad)
    assert "sup3r-s3cret" not in str(info.value)
    bad.write_text("not a valid name!: sup3r-s3cret\n")
    with pytest.raises(SecretsError) as info:
        read_secrets_file(bad)
    assert "sup3r-s3cret" not in str(info.value)


def test_spec_takes_no_credentials_and_never_copies_the_secrets_file_path_into_saved_yaml(tmp_path):
    from gensweep.platform.spec import SpecError

    with pytest.raises(SpecError, match="data.storage.aws_secret_access_key: unknown field"):
        parse_spec({"name": "x", "data": {"storage": {"aws_secret_access_key": "abc"}}})
    spec = parse_spec({"name": "x", "data": {"storage": {"secrets_file": str(tmp_path / "c.yaml")}}})
    assert spec.data.storage.secrets_file == str(tmp_path / "c.yaml")
    assert "secrets_file" not in spec.to_yaml() and "secrets_file" not in spec.model_dump_json()


def test_tune_does_not_copy_credentials_into_trial_runtime_envs(monkeypatch):
    from ray.tune.execution import class_cache

    monkeypatch.setattr(class_cache, "ENV_VARS_TO_PROPAGATE", set(class_cache.ENV_VARS_TO_PROPAGATE))
    for name in CREDENTIAL_ENV_VARS:
        monkeypatch.setenv(name, "planted-" + name.lower())
    keep_credentials_out_of_ray()

    class Trainable:
        pass

    remote = class_cache._ActorClassCache().get(Trainable)
    env_vars = remote._default_options.get("runtime_env", {}).get("env_vars", {})
    assert not set(env_vars) & CREDENTIAL_ENV_VARS, env_vars
    assert not any(v.startswith("planted-") for v in env_vars.values())


def test_stored_failure_reasons_are_redacted(monkeypatch):
    from gensweep.platform.results.errors import redact_reason as _redact

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "planted-secret-123456")
    assert _redact("ClientError: bad key planted-secret-123456 for bucket") == "ClientError: bad key *** for bucket"


# --------------------------------------------------------------------------- Ray
def test_local_ray_dashboard_binds_to_loopback(monkeypatch):
    import ray

    from gensweep.platform.sweep import setup as runner

    calls = []
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: calls.append(kw))
    runner.start_ray(num_cpus=2)
    assert calls == [{"address": "local", "num_cpus": 2, "include_dashboard": True, "dashboard_host": "127.0.0.1"}]


def test_job_submission_sends_the_ray_token_in_a_header_only(monkeypatch, tmp_path):
    import json

    import ray.job_submission

    from gensweep.cluster import jobs

    seen = {}
    sent = []

    class FakeClient:
        def __init__(self, address, headers=None, **kw):
            seen.update(address=address, headers=headers, **kw)

        def submit_job(self, **kwargs):
            sent.append(kwargs)
            return kwargs["submission_id"]

    monkeypatch.setattr(ray.job_submission, "JobSubmissionClient", FakeClient)
    monkeypatch.setenv("RAY_AUTH_TOKEN", "planted-ray-token")
    client = jobs.connect("http://10.1.2.3:8265")
    assert seen["headers"] == {"Authorization": "Bearer planted-ray-token"}
    # ... and nowhere in the job: entrypoint, runtime env, metadata (from the environment or a token file)
    token_file = tmp_path / "token"
    token_file.write_text("planted-file-token\n")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token_file))
    (tmp_path / "proj").mkdir()
    spec = tmp_path / "proj" / "spec.yaml"
    spec.write_text(yaml.safe_dump({"name": "tok", "results": {"root": str(tmp_path / "results")}}))
    submission = jobs.prepare_submission(spec, experiment="tok-1", env={"OMP_NUM_THREADS": "1"})
    assert jobs.submit(client, submission) == submission.submission_id
    assert sent == [submission.as_kwargs()]
    for part in ("entrypoint", "runtime_env", "metadata", "submission_id"):
        text = json.dumps(sent[0][part])
        assert "planted-ray-token" not in text and "planted-file-token" not in text, part
        assert "RAY_AUTH_TOKEN" not in text, part
    # credentials are refused in a job's runtime env
    with pytest.raises(jobs.SubmitError, match="credential"):
        jobs.parse_env(["AWS_SECRET_ACCESS_KEY=abc"])
    with pytest.raises(jobs.SubmitError, match="credential"):
        jobs.parse_env(["RAY_AUTH_TOKEN=abc"])
