"""The command-line package and the results-root layout: shared options defined once, every path
under a results root from one RootLayout, and the ``gensweep dashboard`` command end to end."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from gensweep.cli import COMMAND_MODULES, build_parser
from gensweep.platform.storage.layout import DEFAULT_ROOT, RootLayout, absolute_root
from tests.test_dashboards import EXPERIMENT, _make_sweep_study


def test_every_command_module_registers_and_shares_the_root_option():
    parser = build_parser()
    for argv in (["results", "ls"], ["report", "x"], ["resume", "x"], ["dashboard", "x"]):
        args = parser.parse_args(argv)
        assert args.root == DEFAULT_ROOT, argv
        assert callable(args.func)
    commands = set(parser._subparsers._group_actions[0].choices)  # noqa: SLF001 - argparse keeps them here
    assert {"run", "resume", "results", "report", "data", "eval", "dashboard", "submit", "jobs", "cluster"} <= commands
    assert all(m.startswith("gensweep.cli.") for m in COMMAND_MODULES)


def test_run_and_resume_share_the_ray_options():
    parser = build_parser()
    run = parser.parse_args(["run", "--address", "ray://h:10001", "--num-cpus", "3"])
    resume = parser.parse_args(["resume", "e", "--address", "ray://h:10001", "--num-cpus", "3"])
    assert (run.address, run.num_cpus) == (resume.address, resume.num_cpus) == ("ray://h:10001", 3)


def test_local_root_layout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    layout = RootLayout.of("results")
    root = str(tmp_path / "results")
    assert layout.root == root and layout.is_local
    assert layout.ray == f"{root}/ray"
    assert layout.ray_experiment("e1") == f"{root}/ray/e1"
    assert layout.resume_spec("e1") == os.path.join(root, "ray", "e1", "gensweep_spec.yaml")
    assert layout.trial_artifacts("e1", "t1") == os.path.join(root, "files", "e1", "t1")
    assert layout.dataset("mnist-28px-abcd") == os.path.join(root, "datasets", "mnist-28px-abcd")
    assert layout.refstats == os.path.join(root, "refstats")
    assert layout.optuna_url == f"sqlite:///{root}/optuna.db"
    assert layout.journal == os.path.join(root, ".journal")


def test_object_storage_root_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("GENSWEEP_CACHE", str(tmp_path / "cache"))
    layout = RootLayout.of("s3://bucket/sweeps")
    assert absolute_root("s3://bucket/sweeps") == layout.root == "s3://bucket/sweeps" and not layout.is_local
    assert layout.ray == "s3://bucket/sweeps/ray"
    assert layout.resume_spec("e1") == "s3://bucket/sweeps/ray/e1/gensweep_spec.yaml"
    assert layout.trial_artifacts("e1", "t1") == "s3://bucket/sweeps/files/e1/t1"
    assert layout.dataset("d") == "s3://bucket/sweeps/datasets/d"
    assert layout.refstats == "s3://bucket/sweeps/refstats"  # in the store, not a node's cache
    assert layout.optuna_url is None  # SQLite needs a local file: search.optuna_storage instead
    other = RootLayout.of("s3://bucket/other")
    assert Path(layout.journal).parent == Path(tmp_path / "cache" / "journal")
    assert layout.journal != other.journal  # one journal folder per root


def _read_until(proc: subprocess.Popen, pattern: str, timeout_s: float) -> re.Match:
    deadline = time.monotonic() + timeout_s
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        m = re.search(pattern, line)
        if m:
            return m
    raise AssertionError(f"no line matching {pattern!r} within {timeout_s} s: {''.join(seen)}")


def test_dashboard_command_serves_the_experiment_study_and_stops_on_interrupt(tmp_path):
    root = tmp_path / "results"
    root.mkdir()
    _make_sweep_study(RootLayout.of(root).optuna_url, EXPERIMENT, n_trials=3)
    proc = subprocess.Popen([sys.executable, "-m", "gensweep.cli", "dashboard", EXPERIMENT, "--root", str(root),
                             "--no-tensorboard", "--duration", "120"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        url = _read_until(proc, r"optuna-dashboard: (http://127\.0\.0\.1:\d+)", 120).group(1)
        with urllib.request.urlopen(url + "/api/studies", timeout=30) as resp:
            studies = json.loads(resp.read())["study_summaries"]
        assert [s["study_name"] for s in studies] == [EXPERIMENT]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with pytest.raises(OSError):
        urllib.request.urlopen(url + "/api/studies", timeout=5)


def test_dashboard_command_refuses_an_object_storage_root_without_a_study_url(capsys):
    from gensweep.cli import main

    assert main(["dashboard", "e1", "--root", "s3://bucket/sweeps", "--no-tensorboard"]) == 2
    assert "optuna_storage" in capsys.readouterr().err
