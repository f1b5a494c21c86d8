"""Row builders, trial statuses, the row buffer and backend registration of the results package."""
from __future__ import annotations

import datetime as dt
import pickle

import numpy as np
import pytest

from gensweep.platform.results import (
    BACKENDS,
    Backend,
    ResultsStore,
    TrialStatus,
    metrics_row,
    register_backend,
)
from gensweep.platform.results.journal import RowBuffer
from gensweep.platform.results.rows import ended_outcome, last_result, result_metrics, result_step


def test_metrics_row_keeps_scalar_metrics_and_renames_clashing_names():
    row = metrics_row(
        "exp", "t1", 30,
        {"fid": np.float64(12.5), "step": 999, "nested": {"is": 2.0}, "images": [1, 2],
         "artifact/sample_grid": "s3://b/g.png", "experiment": "other", "wall_time_s": 1.0,
         "reported_at": 2.0},
        reported_at=100, columns={"config/lr": 0.1}, backfilled=True,
    )
    reported = dt.datetime.fromtimestamp(100, tz=dt.timezone.utc)
    assert row == {"experiment": "exp", "trial_id": "t1", "step": 30, "reported_at": reported, "fid": 12.5,
                   "nested/is": 2.0, "result/experiment": "other", "result/wall_time_s": 1.0,
                   "result/reported_at": 2.0,
                   "backfilled": True, "config/lr": 0.1}
    assert type(row["fid"]) is float


def test_a_tune_result_and_the_same_report_saved_with_a_checkpoint_make_the_same_row():
    report = {"step": 20, "fid": 3.0, "loop_time_s": 1.5}
    result = {**report, "training_iteration": 2, "timestamp": 50, "done": False, "trial_id": "t",
              "config": {"lr": 1}, "artifact/sample_grid": "g.png"}
    from_tune = metrics_row("e", "t", result_step(result), result_metrics(result), reported_at=50)
    from_checkpoint = metrics_row("e", "t", report["step"], report, reported_at=50)
    assert {k: v for k, v in from_tune.items() if k != "training_iteration"} == from_checkpoint
    assert result_step({"training_iteration": 4}) == 4 and result_step({"step": True, "training_iteration": 4}) == 4


def test_trial_status_values_and_terminal_states():
    assert TrialStatus.values() == ("running", "completed", "stopped", "diverged", "failed")
    assert TrialStatus.RUNNING == "running" and str(TrialStatus.FAILED) == "failed"
    assert [s.terminal for s in TrialStatus] == [False, True, True, True, True]
    assert TrialStatus("stopped") is TrialStatus.STOPPED
    assert "diverged" in TrialStatus.terminals()


@pytest.mark.parametrize("last,budget,status", [
    ({"diverged": True, "reason": "nan"}, None, TrialStatus.DIVERGED),
    ({"stop_decided": True, "iteration": 2}, 4, TrialStatus.STOPPED),
    ({"stop_decided": True, "iteration": 4}, 4, TrialStatus.COMPLETED),
    ({}, None, TrialStatus.COMPLETED),
])
def test_how_a_trial_that_ended_without_error_is_classified(last, budget, status):
    assert ended_outcome(last, budget)[0] is status
    assert last_result({"training_iteration": 3, "done": True}, 30)["stop_decided"] is True


def test_row_buffer_pickles_with_its_rows_and_replays_its_journal(tmp_path):
    store = ResultsStore.open(str(tmp_path / "store"))
    buffer = RowBuffer("exp", str(tmp_path / "journal"))
    buffer.add("metrics", {"experiment": "exp", "trial_id": "t", "step": 1, "fid": 2.0})
    buffer.pause(60.0)
    assert not buffer.due(every=1, interval_s=0.0)  # paused after a failure
    clone = pickle.loads(pickle.dumps(buffer))
    assert clone.pending == 1 and clone.pause_until == 0.0 and clone.due(every=1, interval_s=0.0)
    replayed = RowBuffer("exp", str(tmp_path / "journal"))  # a new driver: the journal still holds the row
    assert replayed.load_journal() == 1 and replayed.flush(store) == 1
    assert RowBuffer("exp", str(tmp_path / "journal")).load_journal() == 0  # emptied once written
    assert store.read("metrics", "exp")["fid"].tolist() == [2.0]


class _MemoryBackend(Backend):
    """A backend in a dict: what adding a backend takes (a class and one register call)."""

    scheme = "mem"
    files: dict[str, bytes] = {}

    @classmethod
    def from_uri(cls, uri, **options):
        return cls(), uri.split("://", 1)[1]

    def write_bytes(self, path, data):
        self.files[path] = data

    def read_bytes(self, path):
        try:
            return self.files[path]
        except KeyError:
            raise FileNotFoundError(path) from None

    def list(self, prefix):
        base = prefix.rstrip("/") + "/"
        return sorted(p for p in self.files if p.startswith(base)
                      and not any(part.startswith(("_", ".")) for part in p[len(base):].split("/")))

    def list_dirs(self, prefix):
        base = prefix.rstrip("/") + "/"
        children = [p[len(base):] for p in self.files if p.startswith(base)]
        return sorted({c.split("/", 1)[0] for c in children if "/" in c})

    def exists(self, path):
        return path in self.files

    def delete(self, path):
        self.files.pop(path, None)

    def uri(self, path):
        return "mem://" + path


def test_a_registered_backend_serves_the_store(monkeypatch):
    monkeypatch.setattr(_MemoryBackend, "files", {})
    monkeypatch.setitem(BACKENDS, "mem", None)
    register_backend("mem", _MemoryBackend.from_uri)
    store = ResultsStore.open("mem://bucket/results")
    store.log_trial("exp", "t1", TrialStatus.RUNNING)
    store.log_trial("exp", "t1", TrialStatus.COMPLETED.value)
    assert store.uri == "mem://bucket/results" and store.experiments() == ["exp"]
    assert store.read("trials", "exp")["status"].tolist() == ["completed"]
    assert store.clean_temp() == 0
