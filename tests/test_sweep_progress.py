"""The sweep's progress view (platform/sweep/progress.py) and its console routing (console.py),
without Ray: the formatter is pure, the callback is driven by hand. The view of a real sweep
is checked in tests/test_sweep_e2e.py::test_two_trial_sweep_writes_the_store."""
from __future__ import annotations

import io
import logging
import sys
import threading
from types import SimpleNamespace

from gensweep.platform.spec import parse_spec
from gensweep.platform.sweep.console import LineRouter, strip_ansi, sweep_console
from gensweep.platform.sweep.progress import (
    DONE, ERROR, RUNNING, Snapshot, SweepProgress, TrialLine, duration, format_progress, metric_columns,
)


def spec(tmp_path, metrics=("fid", "kid", "pr"), metric="fid", mode="min"):
    return parse_spec({"name": "p", "results": {"root": str(tmp_path)}, "eval": {"metrics": list(metrics)},
                       "search": {"algorithm": "random", "num_trials": 4, "metric": metric, "mode": mode},
                       "space": {"lr": {"type": "loguniform", "low": 1e-5, "high": 1e-3}}})


def snapshot(**kw) -> Snapshot:
    trials = [TrialLine("aaa", DONE, 30, {"fid": 80.0, "kid": 0.5}, 75.0, 15),
              TrialLine("bbb", RUNNING, 15, {"fid": 60.123456}, 60.123456, 15),
              TrialLine("ccc", ERROR, None, {}, None, None),
              TrialLine("ddd", DONE, 30, {"fid": 90.0}, 90.0, 30)]
    return Snapshot(**{"metric": "fid", "mode": "min", "columns": ["fid", "kid"], "total": 10,
                       "elapsed_s": 90.0, "trials": trials, **kw})


def test_columns_are_the_search_metric_then_the_eval_metrics_columns(tmp_path):
    assert metric_columns(spec(tmp_path)) == ["fid", "kid", "precision", "recall"]
    assert metric_columns(spec(tmp_path, metric="recall", mode="max")) == ["recall", "fid", "kid", "precision"]


def test_summary_counts_best_and_time_left():
    text = format_progress(snapshot())
    head = text.splitlines()[0]
    assert head.startswith("[gensweep] trials 2/10 done, 1 running, 1 errored")
    assert "best fid 60.12 (bbb, step 15)" in head
    # 3 trials ended in 90 s: 30 s each, 7 left -> 210 s
    assert "elapsed 1m30s, ~3m30s left" in head
    assert "\x1b" not in text


def test_best_follows_the_mode():
    assert "best fid 90 (ddd, step 30)" in format_progress(snapshot(mode="max"), table=False)


def test_table_has_running_trials_first_then_best_finished():
    lines = format_progress(snapshot(), max_rows=3).splitlines()
    assert lines[1].split() == ["trial", "status", "step", "fid", "kid", "best", "fid"]
    assert [ln.split()[0] for ln in lines[2:5]] == ["bbb", "aaa", "ddd"]
    assert lines[2].split() == ["bbb", "running", "15", "60.12", "-", "60.12"]
    assert lines[5] == "  ... 1 more (gensweep results show)"


def test_no_time_left_before_a_trial_ends_or_without_a_total():
    only_running = [TrialLine("bbb", RUNNING, 15, {}, None, None)]
    assert "left" not in format_progress(snapshot(trials=only_running))
    assert "trials 2/? done" in format_progress(snapshot(total=None))
    assert "left" not in format_progress(snapshot(total=None))


def test_color_only_when_asked():
    assert format_progress(snapshot(), color=True).startswith("\x1b[1m[gensweep]")
    assert duration(7322) == "2h02m" and duration(59.6) == "1m00s"


def test_callback_tracks_results_and_prints_on_events(tmp_path):
    written: list[str] = []
    now = [0.0]
    cb = SweepProgress(spec(tmp_path), written.append, interval_s=60, clock=lambda: now[0])
    cb.setup(total_num_samples=2)
    trial = SimpleNamespace(trial_id="t1", config={"lr": 0.000316227766, "loss": "ns"}, get_error=lambda: None)
    cb.on_trial_start(0, [trial], trial)
    assert "trial t1 started (lr=3.2e-4, loss=ns)" in written[-1]
    cb.on_trial_result(1, [trial], trial, {"step": 10, "fid": 50.0, "kid": 0.2, "loss/G": 1.0})
    cb.on_trial_result(2, [trial], trial, {"step": 20, "fid": 70.0, "kid": 0.3})
    n = len(written)
    now[0] = 30.0
    cb.on_step_end(3, [trial])
    assert len(written) == n  # not before interval_s
    now[0] = 61.0
    cb.on_step_end(4, [trial])
    assert written[-1].splitlines()[2].split()[:4] == ["t1", "running", "20", "70"]
    assert "best fid 50 (t1, step 10)" in written[-1]
    failed = SimpleNamespace(trial_id="t2", config={}, get_error=lambda: RuntimeError("boom\nValueError: bad lr"))
    cb.on_trial_start(5, [trial, failed], failed)
    cb.on_trial_error(6, [trial, failed], failed)
    assert "trial t2 failed: ValueError: bad lr" in written[-1] and "1 errored" in written[-1]
    cb.on_trial_complete(7, [trial, failed], trial)
    assert "trial t1 finished: best fid 50 at step 10" in written[-1]
    cb.on_experiment_end([trial, failed])
    assert "trials 1/2 done, 0 running, 1 errored" in written[-1]


def test_router_sends_own_lines_to_console_and_the_rest_to_the_log():
    console, log = io.StringIO(), io.StringIO()
    router = LineRouter(console, log, threading.Lock())
    router.write("[gensweep] kept\n\x1b[36m(run_trial pid=1)\x1b[0m Checkpoint successfully created")
    router.write(" at: /x\n[gensweep] also kept\n")
    assert console.getvalue() == "[gensweep] kept\n[gensweep] also kept\n"
    assert log.getvalue() == "(run_trial pid=1) Checkpoint successfully created at: /x\n"
    assert strip_ansi("\x1b[1m\x1b[32mhttp://x \x1b[39m\x1b[22m") == "http://x "


def test_sweep_console_routes_prints_and_ray_loggers_to_the_log(tmp_path, capsys):
    s = spec(tmp_path)
    before = {n: (list(logging.getLogger(n).handlers), logging.getLogger(n).propagate) for n in ("ray", "optuna")}
    with sweep_console(s, "exp-1") as console:
        print("[gensweep] mine")
        print("Trial status: 2 RUNNING")
        print("worker chatter", file=sys.stderr)
        logging.getLogger("ray.tune").warning("Token authentication is enabled")
        assert console.tune_verbose == 0 and console.callbacks
    out = capsys.readouterr()
    log = (tmp_path / "ray" / "exp-1" / "console.log").read_text()
    assert f"messages go to {console.log_path}" in out.out and "[gensweep] mine" in out.out
    assert "Trial status" not in out.out + out.err and "Token" not in out.out + out.err
    assert "Trial status: 2 RUNNING" in log and "worker chatter" in log and "Token authentication" in log
    assert {n: (list(logging.getLogger(n).handlers), logging.getLogger(n).propagate) for n in before} == before
    print("after")
    assert capsys.readouterr().out == "after\n"
