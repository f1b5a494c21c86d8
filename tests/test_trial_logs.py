"""Tune's per-trial logs survive a trial restart whole (gensweep.platform.sweep.trial_logs).

Tune's own JSON and CSV loggers are driven as Tune drives them around a restart: results
logged, the storage copy left behind (no sync since the first result), the restart, then the
restarted trial's logger start, which restores the files from storage.
"""
from __future__ import annotations

import json
import types
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

from gensweep.platform.storage.tune_storage import storage_for
from gensweep.platform.sweep.trial_logs import TrialLogsUpload, upload_trial_logs


class FakeTrial:
    """What Tune's loggers and the callback read of a trial (hashable, like Tune's Trial)."""

    def __init__(self, local: Path, remote: Path | str, filesystem: pafs.FileSystem | None = None):
        self.trial_id = "t0"
        self.config = {"lr": 1e-3}
        self.local_path = str(local)
        self.checkpoint = object()  # a restart from a checkpoint: Tune's loggers restore from storage
        self.storage = types.SimpleNamespace(trial_fs_path=str(remote),
                                             storage_filesystem=filesystem or pafs.LocalFileSystem())
        self.init_local_path()  # Tune made it when the trial first started

    def init_local_path(self):
        Path(self.local_path).mkdir(parents=True, exist_ok=True)


def _log(loggers, trial, steps):
    for i, step in enumerate(steps, start=1):
        for cb in loggers:
            cb.log_trial_result(i, trial, {"step": step, "fid": 100.0 / step, "training_iteration": i})


def _steps(trial):
    lines = Path(trial.local_path, "result.json").read_text().splitlines()
    csv_rows = Path(trial.local_path, "progress.csv").read_text().splitlines()[1:]
    return [json.loads(line)["step"] for line in lines], len(csv_rows)


def _restart(loggers, trial, upload: bool):
    for cb in loggers:
        cb.log_trial_end(trial, failed=True)
    if upload:
        TrialLogsUpload().on_trial_recover(iteration=0, trials=[trial], trial=trial)
    JsonLoggerCallback.log_trial_start(loggers[0], trial)
    CSVLoggerCallback._setup_trial(loggers[1], trial)


@pytest.fixture(params=["local", "s3"])
def experiment_storage(request, tmp_path):
    """Tune's experiment storage as gensweep gives it to Tune: a local folder, or S3 (the loopback server)."""
    if request.param == "local":
        return str(tmp_path / "storage" / "exp"), pafs.LocalFileSystem()
    bucket = request.getfixturevalue("s3_bucket")
    return storage_for(f"s3://{bucket}/sweeps/ray/exp")


@pytest.mark.parametrize("upload", [True, False])
def test_restart_keeps_every_logged_result_only_with_the_upload(tmp_path, experiment_storage, upload):
    path, filesystem = experiment_storage
    trial = FakeTrial(tmp_path / "staging" / "t0", f"{path}/t0", filesystem)
    loggers = [JsonLoggerCallback(), CSVLoggerCallback()]
    _log(loggers, trial, [15])
    upload_trial_logs(trial.local_path, trial.storage.trial_fs_path, trial.storage.storage_filesystem)  # a sync
    _log(loggers, trial, [30])  # logged after the last sync, then the trial's actor dies
    _restart(loggers, trial, upload)
    if upload:
        assert _steps(trial) == ([15, 30], 2)
    else:  # what Tune alone does: the restore drops what was logged since the sync
        assert _steps(trial) == ([15], 1)


def test_upload_skips_missing_files_and_creates_the_folder(tmp_path):
    local = tmp_path / "local"
    local.mkdir()
    (local / "result.json").write_text('{"step": 1}\n')
    remote = tmp_path / "remote" / "a" / "b"
    assert upload_trial_logs(str(local), str(remote), pafs.LocalFileSystem()) == ["result.json"]
    assert (remote / "result.json").read_text() == '{"step": 1}\n'
    assert not (remote / "progress.csv").exists()


def test_a_failed_upload_never_stops_the_restart(tmp_path, caplog):
    trial = FakeTrial(tmp_path / "staging", tmp_path / "remote")
    trial.init_local_path()
    Path(trial.local_path, "result.json").write_text("{}\n")
    trial.storage.storage_filesystem = pafs.SubTreeFileSystem(str(tmp_path / "missing-base"), pafs.LocalFileSystem())
    (tmp_path / "missing-base").write_text("a file where a folder should be")
    TrialLogsUpload().on_trial_recover(iteration=0, trials=[trial], trial=trial)
    assert "could not upload the logs of trial t0" in caplog.text
