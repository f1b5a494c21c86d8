"""`gensweep submit` before anything is sent: the job it builds, and what it refuses."""
from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

import gensweep
from gensweep.cli import build_parser
from gensweep.cli import main as cli_main
from gensweep.cluster.auth import TokenError, auth_headers, is_loopback, resolve_token
from gensweep.cluster.localcluster import free_ports

SPEC = "name: subm\ntrainable: {steps: 30, eval_every: 15}\nresults: {root: %s}\n"


def _write_spec(folder: Path, root: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spec.yaml"
    path.write_text(SPEC % root)
    return path


def _dry_run(capsys, *argv) -> dict:
    capsys.readouterr()
    assert cli_main(["submit", *argv, "--dry-run"]) == 0
    out = capsys.readouterr().out
    return json.loads(out[out.index("{"):])


def test_dry_run_builds_a_gensweep_job(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-for-the-job-9f8e7d")
    monkeypatch.setenv("RAY_AUTH_TOKEN", "not-for-the-job-either-1a2b3c")
    spec = _write_spec(tmp_path / "proj", str(tmp_path / "proj" / "results"))
    (tmp_path / "proj" / "results").mkdir()
    job = _dry_run(capsys, str(spec), "--experiment", "exp1", "--env", "OMP_NUM_THREADS=2")

    argv = shlex.split(job["entrypoint"])
    assert argv[:3] == ["python", "-m", "gensweep.cli"]
    args = build_parser().parse_args(argv[3:])
    assert (args.command, args.spec, args.address, args.experiment) == ("run", "spec.yaml", "auto", "exp1")

    env = job["runtime_env"]
    assert env["working_dir"] == str((tmp_path / "proj").resolve())
    assert "/results" in env["excludes"] and ".venv" in env["excludes"]  # the local results root is not uploaded
    assert env["env_vars"]["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"] == "0.1" and env["env_vars"]["OMP_NUM_THREADS"] == "2"
    assert "pip" not in env and "py_modules" not in env  # default: the cluster image provides gensweep
    assert job["metadata"]["gensweep_experiment"] == "exp1" and job["submission_id"].startswith("gensweep-exp1-")
    text = json.dumps(job)
    assert "not-for-the-job" not in text  # no credentials anywhere in the submission


def test_pip_and_shipping_gensweep(tmp_path, capsys):
    spec = _write_spec(tmp_path, "s3://bucket/gs")
    env = _dry_run(capsys, str(spec), "--pip", "einops==0.8.0", "--with-gensweep", "pip")["runtime_env"]
    assert env["pip"][0] == "einops==0.8.0" and env["pip"][1].startswith("gensweep==")
    env = _dry_run(capsys, str(spec), "--with-gensweep", "ship")["runtime_env"]
    assert env["py_modules"] == [str(Path(gensweep.__file__).resolve().parent)]
    # --working-dir above the spec's folder: the entrypoint names the spec relative to it
    sub = _write_spec(tmp_path / "a" / "b", "s3://bucket/gs")
    job = _dry_run(capsys, str(sub), "--working-dir", str(tmp_path / "a"), "--results-root", "s3://other/x")
    args = build_parser().parse_args(shlex.split(job["entrypoint"])[3:])
    assert args.spec == "b/spec.yaml" and args.results_root == "s3://other/x"
    assert job["metadata"]["gensweep_results_root"] == "s3://other/x"


@pytest.mark.parametrize("spec_text, extra, message", [
    ("name: x\nsearch: {algorithm: annealing}\n", [], "search.algorithm"),
    ("name: x\nspace: {no_such_param: [1, 2]}\n", [], "space.no_such_param"),
    ("name: x\nresults: {root: ./gensweep_results}\n", [], "relative path"),
    ("name: x\nresults: {root: s3://b/p}\n", ["--env", "AWS_SECRET_ACCESS_KEY=abc"], "credential"),
    ("name: x\nresults: {root: s3://b/p}\n", ["--env", "MY_API_TOKEN=abc"], "credential"),
    ("name: x\nresults: {root: s3://b/p}\n", ["--env", "NOEQUALS"], "KEY=VALUE"),
])
def test_bad_submissions_send_nothing(tmp_path, capsys, spec_text, extra, message):
    spec = tmp_path / "spec.yaml"
    spec.write_text(spec_text)
    # A dashboard address where nothing listens: reaching the network would fail differently.
    (port,) = free_ports(1)
    assert cli_main(["submit", str(spec), "--address", f"http://127.0.0.1:{port}", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "nothing was submitted" in err


def test_spec_outside_working_dir_is_refused(tmp_path, capsys):
    spec = _write_spec(tmp_path / "specs", "s3://b/p")
    (tmp_path / "code").mkdir()
    assert cli_main(["submit", str(spec), "--working-dir", str(tmp_path / "code"), "--dry-run"]) == 2
    assert "must be inside the working directory" in capsys.readouterr().err


def test_unreachable_cluster_is_a_clear_error(tmp_path, capsys):
    spec = _write_spec(tmp_path, "s3://b/p")
    (port,) = free_ports(1)
    assert cli_main(["submit", str(spec), "--address", f"127.0.0.1:{port}"]) == 2
    assert f"cannot use the Ray Jobs API at http://127.0.0.1:{port}" in capsys.readouterr().err
    assert cli_main(["jobs", "list", "--address", f"http://127.0.0.1:{port}"]) == 2


def test_token_resolution(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".ray").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    for var in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
        monkeypatch.delenv(var, raising=False)
    assert resolve_token("http://10.1.2.3:8265") is None and auth_headers("http://127.0.0.1:8265") == {}

    (home / ".ray" / "auth_token").write_text("from-default-file\n")
    # the default token file goes to a local head only, unless RAY_AUTH_MODE=token asks for it
    assert resolve_token("http://127.0.0.1:8265") == "from-default-file"
    assert resolve_token("http://localhost:8265") == "from-default-file"
    assert resolve_token("http://10.1.2.3:8265") is None
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    assert resolve_token("http://10.1.2.3:8265") == "from-default-file"

    path_file = tmp_path / "tok"
    path_file.write_text("from-path-env")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(path_file))
    assert resolve_token("http://10.1.2.3:8265") == "from-path-env"
    monkeypatch.setenv("RAY_AUTH_TOKEN", "from-env")
    assert auth_headers("http://10.1.2.3:8265") == {"Authorization": "Bearer from-env"}
    flag_file = tmp_path / "flag"
    flag_file.write_text("from-flag")
    assert resolve_token("http://10.1.2.3:8265", str(flag_file)) == "from-flag"
    with pytest.raises(TokenError, match="cannot be read"):
        resolve_token("http://10.1.2.3:8265", str(tmp_path / "missing"))
    assert is_loopback("127.0.0.1:8265") and is_loopback("http://[::1]:8265") and not is_loopback("http://head:8265")
