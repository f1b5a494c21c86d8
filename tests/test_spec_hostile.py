"""Hostile and careless specs (the corpus in tests/hostile_specs.py) are refused by the real
command line: exit 2, the field named, no traceback, a bounded message, before Ray starts.

Most cases run in-process through ``gensweep run SPEC --dry-run`` and ``gensweep run SPEC``
(the latter with data preparation replaced by a tripwire, so a case that slipped through fails
here instead of starting a sweep). Cases that could exhaust memory or time (alias bombs, deep
nesting, huge ranges and grids) run in forked children of one subprocess, each under
RLIMIT_AS (its parent's address space + 1 GiB) and a 5 s alarm.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gensweep.cli import main as cli_main
from gensweep.platform.spec import parse_spec
from tests.hostile_specs import CORPUS, VALID, Case

SECONDS = 5
EXTRA_MEMORY = 1 << 30
MAX_MESSAGE = 8000  # characters of stderr: a huge value is never formatted whole

IN_PROCESS = [c for c in CORPUS if not c.bounded]
BOUNDED = [c for c in CORPUS + VALID if c.bounded]


def write_case(case: Case, folder: Path) -> Path:
    for name, content in case.files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    root = str(folder / "results")
    text = case.text.replace("{ROOT}", root).encode() if isinstance(case.text, str) else case.text
    spec = folder / "spec.yaml"
    spec.write_bytes(text)
    return spec


def check_refusal(case: Case, rc: int, err: str, seconds: float) -> None:
    assert rc == 2, f"{case.id}: exit {rc}, stderr:\n{err[:2000]}"
    assert "Traceback" not in err, f"{case.id}:\n{err[:4000]}"
    assert err.startswith("gensweep: "), f"{case.id}: {err[:500]}"
    for text in case.expect:
        assert text in err, f"{case.id}: {text!r} not in the message:\n{err[:2000]}"
    assert len(err) < MAX_MESSAGE, f"{case.id}: a message of {len(err)} characters"
    assert seconds < SECONDS, f"{case.id}: took {seconds:.1f} s"


def test_corpus_size_and_ids():
    ids = [c.id for c in CORPUS + VALID]
    assert len(CORPUS) >= 60 and len(VALID) >= 5 and len(set(ids)) == len(ids)
    assert all(c.expect for c in CORPUS) and not any(c.expect for c in VALID)


@pytest.fixture(scope="module", autouse=True)
def _warm(tmp_path_factory):
    """One refused run per mode first: what ``gensweep run`` imports once per process (torch, Ray)
    is imported here, so each case's time is its own."""
    folder = tmp_path_factory.mktemp("warm")
    (folder / "a-file").write_text("x")
    spec = folder / "spec.yaml"
    spec.write_text(f"name: warm\nresults: {{root: '{folder / 'a-file' / 'results'}'}}\n")
    for extra in (["--dry-run"], []):
        cli_main(["run", str(spec), "--num-cpus", "2", *extra])  # refused; the cases check refusals


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    return tmp_path


@pytest.mark.parametrize("mode", ["dry-run", "run"])
@pytest.mark.parametrize("case", IN_PROCESS, ids=[c.id for c in IN_PROCESS])
def test_hostile_spec_is_refused(case, mode, folder, monkeypatch, capsys):
    import ray

    import gensweep.platform.data.ensure as ensure

    def tripwire(*args, **kwargs):
        raise AssertionError(f"{case.id}: the spec passed the preflight")

    monkeypatch.setattr(ensure, "ensure_dataset", tripwire)
    spec = write_case(case, folder)
    argv = ["run", str(spec), "--num-cpus", "2"] + (["--dry-run"] if mode == "dry-run" else [])
    t0 = time.perf_counter()
    rc = cli_main(argv)
    seconds = time.perf_counter() - t0
    check_refusal(case, rc, capsys.readouterr().err, seconds)
    assert not ray.is_initialized()


@pytest.mark.parametrize("case", [c for c in VALID if not c.bounded], ids=lambda c: c.id)
def test_valid_spec_passes_the_dry_run_and_creates_nothing(case, folder, capsys):
    spec = write_case(case, folder)
    before = sorted(p.name for p in folder.iterdir())
    assert cli_main(["run", str(spec), "--num-cpus", "2", "--dry-run"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "# preflight passed" in out
    assert sorted(p.name for p in folder.iterdir()) == before  # no results root, no dataset


DRIVER = r"""
import json, os, resource, signal, sys, time
from gensweep.cli import build_parser, main
build_parser()
import gensweep.platform.sweep.preflight, gensweep.platform.trial.resources, torch  # what a run imports anyway

def address_space():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))

extra, seconds, cases = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
results = {}
for case_id, folder in cases:
    limit = address_space() + extra
    sys.stdout.flush()
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.chdir(folder)
        for fd, name in ((1, "stdout.txt"), (2, "stderr.txt")):
            os.dup2(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        signal.alarm(seconds)
        try:
            rc = main(["run", "spec.yaml", "--dry-run", "--num-cpus", "2"])
        except BaseException:
            import traceback
            traceback.print_exc()
            rc = 99
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)
    _, status = os.waitpid(pid, 0)
    results[case_id] = {"rc": os.waitstatus_to_exitcode(status), "seconds": time.monotonic() - t0}
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def bounded_runs(tmp_path_factory):
    """One subprocess imports gensweep once, then forks a limited child per bounded case."""
    folders = {}
    for case in BOUNDED:
        folders[case.id] = tmp_path_factory.mktemp(case.id)
        write_case(case, folders[case.id])
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, str(EXTRA_MEMORY), str(SECONDS),
         json.dumps([[cid, str(f)] for cid, f in folders.items()])],
        capture_output=True, text=True, timeout=60 + 10 * len(BOUNDED), env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    for cid, folder in folders.items():
        results[cid]["err"] = (folder / "stderr.txt").read_text(errors="replace")
    return results


@pytest.mark.parametrize("case", BOUNDED, ids=lambda c: c.id)
def test_bounded_in_memory_and_time(case, bounded_runs):
    run = bounded_runs[case.id]
    if case.expect:
        check_refusal(case, run["rc"], run["err"], run["seconds"])
    else:  # a valid spec with a huge range: accepted without expanding it
        assert run["rc"] == 0 and run["seconds"] < SECONDS, run


def test_grid_size_counts_what_the_grid_expands():
    from gensweep import search_spaces

    spec = parse_spec({"name": "t", "space": {
        "width": {"type": "int", "low": 8, "high": 24, "step": 8},
        "z_dim": {"type": "int", "low": 16, "high": 64, "step": 16, "when": {"width": [16, 24]}},
        "loss": ["ns", "hinge", "lsgan"],
        "reg": {"type": "categorical", "choices": ["none", "r1"], "when": {"loss": ["hinge"]}},
    }})
    assert spec.space.grid_size(10_000) == len(spec.space.grid()) == 36  # width 8: 4 cells; 16 and 24: 4 z_dims x 4
    assert spec.space.grid_size(5) > 5
    for name in search_spaces.available():
        family = "diffusion" if name.startswith("diffusion") else "gan"
        space = parse_spec({"name": "t", "family": family, "space": name,
                            "trainable": {"num_classes": 10} if "conditioning" in name else {}}).space
        try:
            expected = float(len(space.grid()))
        except ValueError:
            expected = float("inf")
        assert space.size() == expected, name
