"""Keep Tune's per-trial logs whole across a trial restart.

Tune writes a trial's ``result.json`` and ``progress.csv`` in the driver's local staging folder
and copies them to the experiment's storage only when it syncs the experiment (every few
seconds to minutes). When a trial restarts from a checkpoint (an inline trial whose actor died,
``resources.max_failures``), Tune's loggers first *replace* the local files with the storage
copies, so every result logged since the last sync would vanish from them (the results store
keeps its own rows either way). :class:`TrialLogsUpload` uploads the local files when Tune
decides to restart the trial, which is before the restarted trial's loggers start.
"""
from __future__ import annotations

import logging
import os

import pyarrow.fs as pafs
from ray.tune import Callback

logger = logging.getLogger(__name__)

# the files Tune's JSON and CSV loggers restore from storage when a trial restarts
RESTORED_LOGS = ("result.json", "progress.csv")


def upload_trial_logs(local_dir: str, remote_dir: str, filesystem: pafs.FileSystem) -> list[str]:
    """Copy the restored log files present in ``local_dir`` to ``remote_dir`` on ``filesystem``;
    returns the names copied."""
    present = [name for name in RESTORED_LOGS if os.path.isfile(os.path.join(local_dir, name))]
    if present:
        filesystem.create_dir(remote_dir, recursive=True)
    for name in present:
        pafs.copy_files(os.path.join(local_dir, name), f"{remote_dir}/{name}",
                        source_filesystem=pafs.LocalFileSystem(), destination_filesystem=filesystem)
    return present


class TrialLogsUpload(Callback):
    """On a trial's restart, upload its logs so the restart restores all of them."""

    def on_trial_recover(self, iteration, trials, trial, **info):
        try:
            upload_trial_logs(trial.local_path, trial.storage.trial_fs_path, trial.storage.storage_filesystem)
        except Exception:  # noqa: BLE001 - Tune's own logs; the results store has every row anyway
            logger.warning("could not upload the logs of trial %s before its restart", trial.trial_id,
                           exc_info=True)
