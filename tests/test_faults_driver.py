"""The sweep's driver dies mid-sweep; ``gensweep resume`` finishes it with nothing lost.

``gensweep run`` runs in a subprocess (its own local Ray instance, in its own process group
and Ray temp dir) with planted fake credentials in its environment and in a secrets file the
spec references. Trials run under ``launcher: train``: each one's Train run keeps its own
checkpoint record, which a resumed trial continues from. As soon as a trial has its first Train
checkpoint and the results callback holds a metrics row it has journaled but not flushed yet, the
whole process group is SIGKILLed. ``gensweep resume`` (another subprocess) restores the Tune
experiment and finishes it. Then: every row the journal held is in the store, every trial appears
once in ``trials`` (as any Parquet reader sees the part files) with a final status, each trial's metric steps
are complete and unique (re-sent rows are identical, never re-computed), trials continued from
their checkpoints, the Optuna study has no trial left RUNNING, the dashboard was bound to
127.0.0.1, and the planted credentials appear in no file (results, Tune/Train storage, Ray's
session logs) and in neither subprocess's output.
"""
from __future__ import annotations

import glob
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import pytest
import yaml

from gensweep.platform.results import ResultsStore

pytestmark = pytest.mark.slow

EXP = "driver-kill"
STEPS = [100, 200, 300]  # long enough that the kill lands mid-trial: workers outlive the driver ~1 s


def _spec(root: Path, secrets_file: Path) -> dict:
    return {
        "name": "driverkill",
        "trainable": {"steps": 300, "eval_every": 100, "width": 8, "z_dim": 16, "batch_size": 32, "num_classes": 0,
                      "grid_size": 16},
        "space": {"loss": ["ns", "hinge"], "lr": {"type": "loguniform", "low": 1e-4, "high": 1e-3}},
        "search": {"algorithm": "optuna-tpe", "num_trials": 2, "max_concurrent": 2},
        "scheduler": {"kind": "none"},
        "resources": {"workers": 1, "cpus_per_worker": 0.9, "launcher": "train"},
        "data": {"storage": {"secrets_file": str(secrets_file)}},
        "eval": {"num_samples": 200, "ref_samples": 1000, "metrics": ["fid"]},
        "results": {"root": str(root)},
    }


def _processes_under(path: str, session: int | None = None) -> list[int]:
    """PIDs of processes whose command line mentions ``path`` (our Ray instance's temp dir), or
    that belong to the session ``session`` (the sweep's: Ray's worker processes retitle
    themselves ``ray::...`` and each runs in a process group of its own, but they keep the
    session of the driver that started Ray). Zombies (exited, not yet reaped) are not counted."""
    out = subprocess.run(["ps", "-eo", "pid=,sid=,stat=,args="], capture_output=True, text=True).stdout
    pids = []
    for line in out.splitlines():
        pid, sid, stat, *args = line.split(None, 3)
        if stat.startswith("Z"):
            continue
        if path in "".join(args) or (session is not None and int(sid) == session):
            pids.append(int(pid))
    return pids


def _kill_group(proc: subprocess.Popen, ray_tmp: str) -> None:
    """SIGKILL the driver (started as a session leader) and its process group, then every
    process left of its session and Ray instance, by PID: a Ray worker must not live on to
    finish a checkpoint after the kill."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and everything in its process group
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)
    deadline = time.monotonic() + 60
    while (left := _processes_under(ray_tmp, proc.pid)) and time.monotonic() < deadline:
        for pid in left:  # Ray's workers (process groups of their own) and daemons, by PID
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.5)


def _checkpoint_steps(root: Path) -> dict[str, set[int]]:
    """Trial id -> the steps of its complete Train checkpoints (those with their report saved)."""
    out: dict[str, set[int]] = {}
    for report in glob.glob(str(root / "ray" / f"{EXP}-*" / "checkpoint_*" / "report.json")):
        try:
            step = int(json.loads(Path(report).read_text())["metrics"]["step"])
        except (OSError, ValueError, KeyError):
            continue  # being written
        out.setdefault(Path(report).parent.parent.name[len(EXP) + 1:], set()).add(step)
    return out


def _grep_tree(root: Path, needles: list[bytes]) -> list[str]:
    hits = []
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            try:
                data = path.read_bytes()
            except OSError:
                continue
            hits += [f"{path}: {n[:6]!r}..." for n in needles if n in data]
    return hits


@pytest.fixture
def sandbox(tmp_path):
    ray_tmp = tempfile.mkdtemp(prefix="gsk-", dir="/tmp")  # short: Ray's socket paths must fit
    planted = {"secret": "gsSECRET" + secrets.token_hex(12), "token": "gsTOKEN" + secrets.token_hex(12),
               "optuna": "gsOPTUNA" + secrets.token_hex(12)}
    secrets_file = tmp_path / "creds.yaml"
    secrets_file.write_text(yaml.safe_dump({"aws_session_token": planted["token"]}))
    secrets_file.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "AWS_", "GENSWEEP_"))}
    env.update(
        RAY_TMPDIR=ray_tmp,
        AWS_ACCESS_KEY_ID="AKIAGENSWEEPTEST",
        AWS_SECRET_ACCESS_KEY=planted["secret"],
        GENSWEEP_OPTUNA_PASSWORD=planted["optuna"],
        GENSWEEP_CACHE=str(tmp_path / "cache"),
        PYTHONUNBUFFERED="1",
    )
    try:
        yield {"root": tmp_path / "results", "ray_tmp": ray_tmp, "planted": planted, "env": env,
               "secrets_file": secrets_file, "tmp": tmp_path}
    finally:
        for pid in _processes_under(ray_tmp):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_driver_killed_mid_sweep_then_resumed(sandbox):
    root, env = sandbox["root"], sandbox["env"]
    spec_path = sandbox["tmp"] / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(_spec(root, sandbox["secrets_file"])))
    run_out = open(sandbox["tmp"] / "run.log", "w+b")
    proc = subprocess.Popen([sys.executable, "-m", "gensweep.cli", "run", str(spec_path), "--experiment", EXP,
                             "--num-cpus", "2"], stdout=run_out, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    journal = root / ".journal" / f"{EXP}.jsonl"  # rows the driver has not flushed yet (flushes every 15 s)

    def ready() -> bool:
        return bool(_checkpoint_steps(root)) and any(table == "metrics" for table, _ in _journal_rows(journal))

    try:
        deadline = time.monotonic() + 420
        while time.monotonic() < deadline and proc.poll() is None and not ready():
            time.sleep(0.05)
        assert proc.poll() is None, "the sweep ended before it could be killed:\n" + _tail(run_out)
        assert _checkpoint_steps(root), "no checkpoint within the time limit:\n" + _tail(run_out)
    finally:
        _kill_group(proc, sandbox["ray_tmp"])
    assert not _processes_under(sandbox["ray_tmp"], proc.pid), "processes of the killed sweep are still running"
    checkpointed = _checkpoint_steps(root)  # trial id -> steps of its complete checkpoints (none can be added now)

    journaled = _journal_rows(journal)  # what the dead driver had not flushed
    assert any(table == "metrics" for table, _ in journaled), "no journaled metrics row: the kill tested no replay"

    resume_out = open(sandbox["tmp"] / "resume.log", "w+b")
    rc = subprocess.run([sys.executable, "-m", "gensweep.cli", "resume", EXP, "--root", str(root), "--num-cpus", "2"],
                        stdout=resume_out, stderr=subprocess.STDOUT, env=env, timeout=480,
                        start_new_session=True).returncode
    assert rc == 0, _tail(resume_out)
    resume_out.seek(0)  # the resumed sweep's progress view, not Tune's table (that goes to console.log)
    shown = resume_out.read().decode(errors="replace")
    assert "[gensweep] trials " in shown and "Trial status" not in shown, _tail(resume_out)

    store = ResultsStore.open(str(root))
    trials = store.read("trials", EXP)
    raw_trials = store.read("trials", EXP, dedupe_rows=False)
    # what any Parquet reader sees (the store's read deduplicates, so it cannot show a duplicate)
    raw_parts = _raw_part_rows(root, "trials")
    assert raw_parts["trial_id"].is_unique, raw_parts[["trial_id", "status"]]
    raw_metric_parts = _raw_part_rows(root, "metrics")
    assert not raw_metric_parts.duplicated(["trial_id", "step"]).any()
    assert set(trials["status"]) <= {"completed", "stopped", "diverged", "failed"}, trials[["trial_id", "status"]]
    assert (trials["status"] == "completed").sum() == 2, trials[["trial_id", "status", "reason"]]
    assert set(raw_trials["trial_id"]) == set(trials["trial_id"])

    metrics = store.read("metrics", EXP)
    raw = store.read("metrics", EXP, dedupe_rows=False)
    # every row the dead driver had only journaled was written by the resumed one, unchanged
    for table, row in journaled:
        if table == "metrics":
            same = metrics[(metrics["trial_id"] == row["trial_id"]) & (metrics["step"] == row["step"])]
            assert len(same) == 1, row
            if row["step"] <= max(checkpointed.get(row["trial_id"], {0})):  # resumed past it: never recomputed
                assert same["fid"].iloc[0] == row["fid"], (row, same)
        elif table == "trials":
            assert row["trial_id"] in set(trials["trial_id"]), row
    continued_mid_trial = 0
    for tid in trials.loc[trials["status"] == "completed", "trial_id"]:
        rows = metrics[metrics["trial_id"] == tid].sort_values("step")
        assert list(rows["step"]) == STEPS, (tid, list(rows["step"]))
        # a step seen twice is the same row sent again (journal / retry), never a re-computed one
        for step, same in raw[raw["trial_id"] == tid].groupby("step"):
            assert same["fid"].nunique() == 1 and same["worker_pid"].nunique() == 1, (tid, step)
        resumed = rows["resumed_from_step"].dropna().unique()
        if tid in checkpointed:  # continued from a checkpoint it had made before the kill, not from step 0
            assert len(resumed) <= 1 and set(resumed) <= checkpointed[tid], (checkpointed[tid], rows)
            if len(resumed):
                assert (rows.loc[rows["step"] > resumed[0], "resumed_from_step"] == resumed[0]).all()
                continued_mid_trial += 1
        else:  # had no checkpoint yet: started over, from step 0
            assert len(resumed) == 0, rows[["step", "resumed_from_step"]]
    assert continued_mid_trial >= 1, "no trial was resumed mid-way: the kill came too late to test that"

    import optuna

    study = optuna.load_study(study_name=EXP, storage=f"sqlite:///{root}/optuna.db")
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials) == 2

    # security: the local dashboard listened on loopback only
    run_text = _read(run_out)
    assert "Ray dashboard: http://127.0.0.1:" in run_text, run_text[-3000:]

    # the reports made from the store are artifacts of the sweep too
    from gensweep.cli import main as cli_main

    assert cli_main(["report", EXP, "--root", str(root), "-o", str(root / "report.html"), "--bootstrap", "200"]) == 0
    assert cli_main(["results", "--root", str(root), "export", EXP, "-o", str(root / "export.csv")]) == 0

    # security: the planted credentials are nowhere
    needles = [v.encode() for v in sandbox["planted"].values()]
    hits = _grep_tree(root, needles) + _grep_tree(Path(sandbox["ray_tmp"]), needles)
    hits += [f"{name} output" for name, f in (("run", run_out), ("resume", resume_out))
             for n in needles if n in _read(f).encode()]
    assert not hits, hits
    assert any("creds.yaml" in h for h in _grep_tree(sandbox["tmp"], needles))  # the grep does find a planted value
    assert (root / "ray" / EXP / "gensweep_spec.yaml").exists()
    saved = (root / "ray" / EXP / "gensweep_spec.yaml").read_text()
    assert str(sandbox["secrets_file"]) in saved  # the path travels, the content never does


def _journal_rows(path: Path) -> list[tuple[str, dict]]:
    """(table, row) of each complete line of a results journal (a line cut by the kill is skipped)."""
    out = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        out.append((entry["table"], entry["row"]))
    return out


def _raw_part_rows(root: Path, table: str):
    """Every row of the experiment's part files of ``table``, read with pyarrow alone (no dedupe)."""
    import pandas as pd
    import pyarrow.parquet as pq

    parts = sorted((root / table).glob(f"experiment={EXP}/*.parquet"))
    assert parts, f"no part files of {table}"
    return pd.concat([pq.read_table(p).to_pandas() for p in parts], ignore_index=True)


def _read(f) -> str:
    f.flush()
    f.seek(0)
    return f.read().decode(errors="replace")


def _tail(f, n: int = 4000) -> str:
    return _read(f)[-n:]


# ------------------------------------------------------------- the journal, without Ray
class _Trial:
    def __init__(self, trial_id):
        self.trial_id, self.config, self.path = trial_id, {"lr": 1e-3}, None


def test_journal_brings_back_rows_a_killed_driver_never_flushed(tmp_path):
    from gensweep.platform.results.callback import ResultsCallback

    journal = tmp_path / "journal"
    cb = ResultsCallback(str(tmp_path / "store"), "exp", flush_every=1000, flush_interval_s=3600, journal=journal,
                         record_experiment=False)
    t = _Trial("t1")
    cb.on_trial_start(0, [], t)
    for step in STEPS[:2]:
        cb.on_trial_result(0, [], t, {"step": step, "fid": float(step), "training_iteration": step // 100})
    assert ResultsStore.open(str(tmp_path / "store")).read("metrics", "exp").empty  # nothing flushed yet
    del cb  # the driver is SIGKILLed: no flush, no atexit

    again = ResultsCallback(str(tmp_path / "store"), "exp", journal=journal, record_experiment=False)
    again.on_trial_result(0, [], t, {"step": STEPS[2], "fid": 300.0, "training_iteration": 3})
    again.flush()
    store = ResultsStore.open(str(tmp_path / "store"))
    assert sorted(store.read("metrics", "exp")["step"]) == STEPS
    assert list(store.read("trials", "exp")["status"]) == ["running"]
    assert (journal / "exp.jsonl").read_text() == ""  # emptied once everything is written
    # a second replay has nothing left to send
    third = ResultsCallback(str(tmp_path / "store"), "exp", journal=journal, record_experiment=False)
    assert third.flush() == 0


def test_a_run_resumed_from_its_final_checkpoint_reports_that_result_again():
    """A trial whose training had finished when the driver died resumes from its last
    checkpoint with nothing left to train; it must still end with a result (Tune rejects a
    trial that ends without its metric), and that result is the saved one, not a new one."""
    from gensweep.platform.trial.context import PlatformContext

    class Ctx(PlatformContext):
        def __init__(self):  # no data or evaluator needed to end a loop
            self.t0, self.started_at, self.sent = 0.0, 0.0, []
            self._resumed_from, self._resumed_report, self._reported = None, None, False
            self._fid_floor = None  # the reference statistics' floor, from the eval runtime
            self._stop_report = None  # no stop request (issue 22's graceful stop)
            self._loader = types.SimpleNamespace(mode="materialize")  # its rows' loader_mode
            self._held, self._objective, self._setting_tags = {}, ("fid", "min"), []  # no sampling settings
            self.rank = 0

        def _report(self, metrics, checkpoint_dir):
            self.sent.append(metrics)

    saved = {"step": 300, "fid": 12.5, "worker_pid": 1}
    resumed = Ctx()
    resumed._resumed_from, resumed._resumed_report = 300, {"reported_at": 1.0, "metrics": saved}
    resumed.finish()
    assert resumed.sent == [saved]
    trained = Ctx()
    trained._resumed_report = {"reported_at": 1.0, "metrics": saved}
    trained.report({"step": 400, "fid": 11.0})
    trained.finish()
    assert [m["step"] for m in trained.sent] == [400]  # it reported: nothing is re-sent
