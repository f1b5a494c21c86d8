"""Planted credentials never leave where they were put: not in a job's uploaded package, not
in a spec (an Optuna storage password goes in the secrets file or the environment), not in what
``--dry-run`` prints or Tune's pickled searcher state, not in a stored failure reason. And the
report reads a sample grid only up to its size limit.

The sweeps with planted credentials (every file written, Ray's logs, the output) are
tests/test_faults_driver.py and tests/test_faults_storage.py.
"""
from __future__ import annotations

import json
import pickle
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from gensweep.cli import main as cli_main
from gensweep.cluster import jobs
from gensweep.platform.spec import SpecError, parse_spec

PLANTED_KEY = "planted-secret-key-5e4d3c2b1a"
PLANTED_PW = "planted-db-password-77aa66"


def _grep_zip(path: Path, needle: bytes) -> list[str]:
    with zipfile.ZipFile(path) as z:
        return [n for n in z.namelist() if needle in z.read(n) or needle.decode() in n]


def _project(tmp_path: Path) -> Path:
    """A spec with a secrets file beside it (referenced by its relative path), as a user writes it."""
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "creds.yaml").write_text(yaml.safe_dump({"aws_secret_access_key": PLANTED_KEY}))
    (proj / "train_notes.txt").write_text("uploaded\n")
    spec = proj / "spec.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "leak", "trainable": {"steps": 30, "eval_every": 15},
        "results": {"root": str(tmp_path / "results")},
        "data": {"storage": {"secrets_file": "creds.yaml"}},
    }))
    return spec


def test_the_secrets_file_beside_the_spec_is_not_in_the_job_package(tmp_path, monkeypatch, capsys):
    from ray._private.runtime_env.packaging import create_package

    spec = _project(tmp_path)
    monkeypatch.chdir(spec.parent)
    submission = jobs.prepare_submission(spec, experiment="leak-1")
    env = submission.runtime_env
    package = tmp_path / "package.zip"
    create_package(env["working_dir"], package, include_gitignore=True, excludes=env["excludes"])
    with zipfile.ZipFile(package) as z:
        names = z.namelist()
    assert "spec.yaml" in names and "train_notes.txt" in names  # the package is the working dir
    assert "creds.yaml" not in names, names
    assert not _grep_zip(package, PLANTED_KEY.encode())
    assert PLANTED_KEY not in json.dumps(submission.as_kwargs())
    assert any("creds.yaml" in note and "not uploaded" in note for note in submission.notes), submission.notes
    # the command line prints the same job
    assert cli_main(["submit", str(spec), "--experiment", "leak-1", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert PLANTED_KEY not in out and "creds.yaml" in out  # excluded by name


def test_the_secrets_file_is_excluded_when_given_by_absolute_path_too(tmp_path):
    spec = _project(tmp_path)
    doc = yaml.safe_load(spec.read_text())
    doc["data"]["storage"]["secrets_file"] = str(spec.parent / "creds.yaml")
    spec.write_text(yaml.safe_dump(doc))
    assert "/creds.yaml" in jobs.prepare_submission(spec, experiment="leak-1").runtime_env["excludes"]


@pytest.mark.parametrize("url", [
    f"postgresql://gensweep:{PLANTED_PW}@db.example:5432/optuna",
    f"mysql+pymysql://gensweep:{PLANTED_PW}@db.example/optuna",
    f"postgresql://db.example/optuna?user=gensweep&password={PLANTED_PW}",
])
def test_an_optuna_storage_url_with_a_password_is_refused_and_not_echoed(url):
    with pytest.raises(SpecError) as info:
        parse_spec({"name": "x", "search": {"optuna_storage": url}})
    message = str(info.value)
    assert "search.optuna_storage" in message and "secrets file" in message
    assert "GENSWEEP_OPTUNA_PASSWORD" in message
    assert PLANTED_PW not in message


def test_dry_run_refuses_a_password_in_the_spec_without_showing_it(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"name": "x", "search": {"optuna_storage": f"postgresql://u:{PLANTED_PW}@h/db"}}))
    assert cli_main(["run", str(spec), "--dry-run"]) == 2
    captured = capsys.readouterr()
    assert PLANTED_PW not in captured.out + captured.err
    assert "search.optuna_storage" in captured.err


def test_optuna_storage_takes_the_password_from_the_environment_and_never_pickles_it(tmp_path, monkeypatch):
    """Tune pickles its searcher (with the study's storage) into the experiment folder of the results root."""
    import optuna
    import sqlalchemy.engine

    from gensweep.platform.sweep.search import optuna_storage

    captured: list[str] = []
    create_engine = sqlalchemy.engine.create_engine

    def spy(url, *args, **kwargs):  # a database server would take the user and password; SQLite takes neither
        captured.append(str(url))
        return create_engine(re.sub(r"//[^/@]*@", "//", str(url)), *args, **kwargs)

    monkeypatch.setattr(sqlalchemy.engine, "create_engine", spy)
    monkeypatch.setenv("GENSWEEP_OPTUNA_PASSWORD", PLANTED_PW)
    url = f"sqlite://gensweep@/{tmp_path}/optuna.db"
    parse_spec({"name": "x", "search": {"optuna_storage": url}})  # accepted: no password in it
    storage = optuna_storage(url)
    assert captured == [f"sqlite://gensweep:{PLANTED_PW}@/{tmp_path}/optuna.db"]  # connected with it
    study = optuna.create_study(storage=storage, study_name="s")
    blob = pickle.dumps(study)
    assert PLANTED_PW.encode() not in blob
    restored = pickle.loads(blob)  # as Tune's restore does: the password is read again
    assert restored._storage.get_all_studies()[0].study_name == "s"  # noqa: SLF001
    assert captured[-1] == captured[0]  # the restored storage connected with the password again
    assert PLANTED_PW not in restored._storage._backend.url  # noqa: SLF001 - optuna caches in front of it


def test_failure_reasons_redact_aws_access_key_ids_and_secret_keys(monkeypatch):
    from gensweep.platform.results.errors import redact_reason

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "plantedkeyid0123")  # not AKIA-shaped: found by its variable
    key_id, temp_id = "AKIAIOSFODNN7EXAMPLE", "ASIAY34FZKBOKMUTVV7A"
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    text = (f"ClientError: InvalidAccessKeyId {key_id} (session {temp_id}); id plantedkeyid0123;"
            f" aws_secret_access_key={secret}; commit 4f1c2a9b8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b")
    out = redact_reason(text)
    for value in (key_id, temp_id, secret, "plantedkeyid0123"):
        assert value not in out, out
    assert "4f1c2a9b8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b" in out  # a commit hash is not a key
    assert out.startswith("ClientError: InvalidAccessKeyId ***")


def test_job_submission_refuses_an_unsafe_experiment_before_it_reaches_paths(tmp_path):
    spec = _project(tmp_path)
    for bad in ("../evil", "a/b", ".."):
        with pytest.raises(jobs.SubmitError, match="experiment"):
            jobs.prepare_submission(spec, experiment=bad)


def test_run_sweep_refuses_an_unsafe_experiment_before_anything_starts(monkeypatch):
    from gensweep.platform.spec import default_spec
    from gensweep.platform.sweep import runner

    def setup_reached(*args, **kwargs):
        raise AssertionError("the sweep was being set up")

    monkeypatch.setattr(runner, "setup_sweep", setup_reached)
    with pytest.raises(SpecError, match="experiment"):
        runner.run_sweep(default_spec(), experiment="../../tmp/evil")


def test_the_report_reads_a_sample_grid_only_up_to_its_size_limit():
    """/dev/zero never ends: reading it whole would exhaust memory (the old reader did)."""
    code = ("import resource; resource.setrlimit(resource.RLIMIT_DATA, (3 << 30, 3 << 30)); "
            "from gensweep.platform.report.data import read_image; print(read_image('/dev/zero')[2])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "over the" in out.stdout and "limit" in out.stdout, out.stdout


def test_both_backends_read_only_the_bytes_asked_for(tmp_path, s3_bucket):
    from gensweep.platform.results.backends import backend_for_uri

    for root in (str(tmp_path / "store"), f"s3://{s3_bucket}/store"):
        backend, base = backend_for_uri(root)
        path = backend.join(base, "grid.png")
        backend.write_bytes(path, b"0123456789")
        assert backend.read_bytes(path, limit=4) == b"0123", root
        assert backend.read_bytes(path) == b"0123456789", root
