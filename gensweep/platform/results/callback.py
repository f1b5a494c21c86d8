"""Ray Tune callback that streams trial results into a :class:`ResultsStore`.

The callback holds only the store URI and options (no live connection), so it
pickles with the Tuner; the store is opened lazily in whichever process runs
the callback.  Rows are buffered and written in batches: every ``flush_every``
rows, every ``flush_interval_s`` seconds (checked on every result, trial end and
Tune loop step), at the end of the experiment and at interpreter exit (a trial's
end forces no write: the journal already makes buffered rows durable).  After a
flush, a table of the experiment with more than ``compact_over`` part files is
merged into one, and at the experiment's end every table is, so an experiment
keeps few part files (:meth:`ResultsStore.compact`).  The experiment's
``experiments`` row carries a summary kept current at each flush (:mod:`.summary`).  With ``journal=<local folder>`` every buffered row is also
journaled until written, and a callback for the same experiment (e.g. a resumed
sweep after the driver was killed) re-sends what the journal still holds
(:mod:`.journal`).  Row keys are deterministic, so re-sent rows never duplicate.
The rows themselves: :mod:`.rows`, :mod:`.provenance` and :mod:`.errors`.
"""
from __future__ import annotations

import datetime as _dt
import logging
import os
import time
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ray.tune import Callback

from gensweep.platform.storage.retry import RetryPolicy

from .errors import error_outcome
from .journal import RowBuffer, register_exit_hook
from .provenance import experiment_row, git_commit
from .rows import (
    ConfigFlattener,
    artifact_row,
    config_columns,
    ended_outcome,
    headline_metrics,
    last_result,
    metrics_row,
    reported_artifacts,
    result_metrics,
    result_step,
    setting_rows,
    trial_row,
)
from .status import TrialStatus
from .store import COMPACT_OVER, ResultsStore
from .summary import RunningSummary, summarize

if TYPE_CHECKING:  # pragma: no cover
    from ray.tune.experiment import Trial

logger = logging.getLogger(__name__)


class ResultsCallback(Callback):
    """Write Tune results into the results store at ``uri``.

    Args:
        uri: store location (local path or ``s3://bucket/prefix``).
        experiment: experiment name (the store's partition key).
        flatten_config: how trial configs become ``config/...`` columns: None
            (flatten nested dicts with ``/``), a function ``config -> {name: value}``
            or a mapping ``{name: "nested/key" | callable}``; names get the
            ``config/`` prefix unless they already have it.
        storage: backend options for :meth:`ResultsStore.open` (no credentials).
        flush_every / flush_interval_s: batch size / age that triggers a write.
        deadline_s: total retry deadline of each write.
        spec, seed, git_commit_sha, versions: recorded in the ``experiments`` row
            (spec: a dict, stored as JSON, or YAML/JSON text; the commit defaults
            to ``git rev-parse HEAD`` of the driver's cwd, versions to
            :func:`.provenance.runtime_versions`).

    Rows written: ``experiments`` (at setup and at the end), ``trials`` (``running``
    at start; ``completed`` / ``stopped`` / ``diverged`` / ``failed`` at the end),
    ``metrics`` (one per reported result) and ``artifacts`` (every checkpoint
    Tune records, and every reported ``artifact/<kind>: <uri>`` value).
    """

    def __init__(
        self,
        uri: str,
        experiment: str,
        *,
        flatten_config: ConfigFlattener | Mapping[str, Any] | None = None,
        storage: Mapping[str, Any] | None = None,
        flush_every: int = 200,
        flush_interval_s: float = 15.0,
        deadline_s: float = 120.0,
        spec: Mapping[str, Any] | str | None = None,
        seed: int | None = None,
        git_commit_sha: str | None = None,
        versions: Mapping[str, str] | None = None,
        record_experiment: bool = True,
        budget_iterations: int | None = None,
        trial_resources: Mapping[str, float] | None = None,
        journal: str | os.PathLike | None = None,
        in_loop_deadline_s: float = 10.0,
        compact_over: int = COMPACT_OVER,
        summary_metrics: Sequence[str] = ("fid",),
        sampling_settings: Mapping[str, Mapping[str, Any]] | None = None,
    ):
        if not experiment:
            raise ValueError("ResultsCallback needs an experiment name")
        self.uri = os.fspath(uri)
        self.experiment = experiment
        self.sampling_settings = dict(sampling_settings or {})  # tag -> setting: each report's setting rows
        self.flatten_config = flatten_config
        self.storage = dict(storage or {})
        self.flush_every = max(1, int(flush_every))
        self.flush_interval_s = float(flush_interval_s)
        self.deadline_s = float(deadline_s)
        self.spec = spec
        self.seed = seed
        self.git_commit_sha = git_commit_sha
        self.versions = dict(versions) if versions is not None else None
        self.record_experiment = record_experiment
        # A trial that reports this many results has used its whole budget: a scheduler's
        # stop decision on that last result (ASHA at max_t) is a completion, not an early stop.
        self.budget_iterations = budget_iterations
        # What one trial really holds (e.g. its Train workers), when Tune's own reservation
        # for the trial actor is only a sliver; used for resources and CPU/GPU-hours.
        self.trial_resources = dict(trial_resources) if trial_resources else None
        self.journal = os.fspath(journal) if journal else None
        # Flushes from inside Tune's loop give up sooner (rows stay buffered and journaled, the
        # next flush re-sends them) so a storage outage does not stall the sweep; the final
        # flush at the end of the experiment retries for the whole ``deadline_s``.
        self.in_loop_deadline_s = float(in_loop_deadline_s)
        self.compact_over = max(1, int(compact_over))
        self.summary_metrics = tuple(summary_metrics)
        self._init_runtime()

    # -------------------------------------------------------------- plumbing
    def _init_runtime(self) -> None:
        self._store: ResultsStore | None = None
        self._rows = RowBuffer(self.experiment, self.journal)
        self._trial_start: dict[str, float] = {}
        self._trial_last: dict[str, dict[str, Any]] = {}
        self._trial_config: dict[str, dict[str, Any]] = {}
        self._started_at: _dt.datetime | None = None
        self._summary = RunningSummary(self.summary_metrics)
        self._atexit_registered = False

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_store", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._store = None
        self._atexit_registered = False

    @property
    def store(self) -> ResultsStore:
        if self._store is None:
            self._store = ResultsStore.open(
                self.uri, retry=RetryPolicy(deadline_s=self.deadline_s), **self.storage
            )
        return self._store

    @property
    def _n_buffered(self) -> int:
        """Rows buffered (and journaled) but not written yet."""
        return self._rows.pending

    @property
    def _pause_until(self) -> float:
        """Until when (``time.monotonic()``) flushes wait after a failed one."""
        return self._rows.pause_until

    @_pause_until.setter
    def _pause_until(self, value: float) -> None:
        self._rows.pause_until = value

    def _register_atexit(self) -> None:
        if not self._atexit_registered:
            register_exit_hook(self._flush_at_exit)
            self._atexit_registered = True

    def _flush_at_exit(self) -> None:
        try:
            self.flush()
        except Exception:  # noqa: BLE001 - nothing to raise to at exit
            logger.exception("ResultsCallback: final flush to %s failed", self.uri)

    def _buffer(self, table: str, row: dict[str, Any]) -> None:
        self._rows.add(table, row)
        self._register_atexit()

    def _maybe_flush(self) -> None:
        if self._rows.due(self.flush_every, self.flush_interval_s):
            self._safe_flush()

    def _safe_flush(self, final: bool = False) -> None:
        # A store outage must not kill the sweep: the rows stay buffered and go
        # out with the next flush (same row keys, so no duplicates).
        try:
            self.flush(deadline_s=None if final else min(self.deadline_s, self.in_loop_deadline_s))
        except Exception:  # noqa: BLE001
            self._rows.pause(max(1.0, self.flush_interval_s))
            logger.exception(
                "ResultsCallback: writing to %s failed; %d rows kept for the next flush",
                self.uri, self._rows.pending,
            )

    def flush(self, deadline_s: float | None = None) -> int:
        """Write everything buffered; returns the rows written.  Safe to call repeatedly.

        Rows of a table leave the buffer only once their write succeeded, so a
        failed flush is retried whole by the next one (same row keys, no duplicates).
        ``deadline_s`` bounds this flush's retries (default: the callback's ``deadline_s``).
        """
        if self._rows.load_journal():  # rows replayed from the journal go out at exit at the latest
            self._register_atexit()
        if self.record_experiment and self._summary.changed and self._started_at is not None:
            self._buffer("experiments", self._experiment_row("running", **self._summary.fields()))
        written = self._rows.flush(self.store, deadline_s)
        if written:
            self._compact(self.compact_over)
        return written

    def _compact(self, over: int) -> None:
        """Merge the experiment's part files of every table that has more than ``over``; a
        failed compaction loses nothing (see :meth:`ResultsStore.compact`) and is retried later."""
        try:
            self.store.compact_experiment(self.experiment, over=over)
        except Exception:  # noqa: BLE001 - compaction is housekeeping; the rows are written
            logger.exception("ResultsCallback: compacting %s in %s failed", self.experiment, self.uri)

    # ------------------------------------------------------------- row making
    def _trial_columns(self, trial: "Trial") -> dict[str, Any]:
        cached = self._trial_config.get(trial.trial_id)
        if cached is None:
            config = dict(getattr(trial, "config", None) or {})
            cached = config_columns(config, self.flatten_config)
            self._trial_config[trial.trial_id] = cached
        return cached

    def _experiment_row(self, status: str, **extra: Any) -> dict[str, Any]:
        return experiment_row(self.experiment, status, spec=self.spec, versions=self.versions,
                              git_commit_sha=self.git_commit_sha, seed=self.seed,
                              started_at=self._started_at, **extra)

    def _trial_row(self, trial: "Trial", status: TrialStatus, reason: str | None) -> dict[str, Any]:
        return trial_row(self.experiment, trial, status, reason,
                         started=self._trial_start.get(trial.trial_id),
                         last=self._trial_last.get(trial.trial_id, {}),
                         columns=self._trial_columns(trial), resources=self.trial_resources)

    def _metrics_row(self, trial: "Trial", result: Mapping[str, Any]) -> dict[str, Any]:
        return metrics_row(self.experiment, trial.trial_id, result_step(result),
                           headline_metrics(result_metrics(result), self.sampling_settings),
                           reported_at=result.get("timestamp") or time.time(),
                           columns=self._trial_columns(trial))

    # ------------------------------------------------------------ Tune hooks
    def setup(self, stop=None, num_samples=None, total_num_samples=None, **info):
        self._started_at = _dt.datetime.now(_dt.timezone.utc)
        if self.git_commit_sha is None:
            self.git_commit_sha = git_commit()
        if self.record_experiment:
            self._buffer("experiments", self._experiment_row("running"))
            self._safe_flush()

    def on_trial_start(self, iteration: int, trials: list, trial: "Trial", **info):
        self._trial_start.setdefault(trial.trial_id, time.time())
        self._buffer("trials", self._trial_row(trial, TrialStatus.RUNNING, None))
        self._summary.observe_trials(trials)
        self._maybe_flush()

    def on_trial_result(self, iteration: int, trials: list, trial: "Trial", result: dict, **info):
        self._trial_start.setdefault(trial.trial_id, time.time())
        row = self._metrics_row(trial, result)
        self._trial_last[trial.trial_id] = last_result(result, row["step"])
        self._buffer("metrics", row)
        for setting_row in setting_rows(self.experiment, trial.trial_id, row["step"], result_metrics(result),
                                        self.sampling_settings, reported_at=result.get("timestamp") or time.time(),
                                        columns=self._trial_columns(trial)):
            self._buffer("metrics", setting_row)
        self._summary.observe_result(row)
        for kind, uri in reported_artifacts(result):
            self._buffer("artifacts", artifact_row(self.experiment, trial.trial_id, kind, uri, row["step"]))
        self._maybe_flush()

    def on_checkpoint(self, iteration: int, trials: list, trial: "Trial", checkpoint, **info):
        path = getattr(checkpoint, "path", None)
        if not path:
            return
        # Tune's storage filesystem (pyarrow), not the results store's backend: its type names the scheme.
        fs_type = getattr(getattr(checkpoint, "filesystem", None), "type_name", "local")
        uri = path if fs_type in ("local", None) else f"{fs_type}://{path}"
        step = self._trial_last.get(trial.trial_id, {}).get("step")
        self._buffer("artifacts", artifact_row(self.experiment, trial.trial_id, "checkpoint", uri, step))
        self._maybe_flush()

    def on_step_end(self, iteration: int, trials: list, **info):
        self._maybe_flush()

    def on_trial_complete(self, iteration: int, trials: list, trial: "Trial", **info):
        status, reason = ended_outcome(self._trial_last.get(trial.trial_id, {}), self.budget_iterations)
        self._buffer("trials", self._trial_row(trial, status, reason))
        self._summary.observe_trials(trials, ended=trial.trial_id)
        self._maybe_flush()

    def on_trial_error(self, iteration: int, trials: list, trial: "Trial", **info):
        status, reason, step = error_outcome(trial)
        row = self._trial_row(trial, status, reason)
        if status is TrialStatus.DIVERGED:  # ended on a divergence: its step and reason, not a failure
            row["last_step"] = step
        self._buffer("trials", row)
        self._summary.observe_trials(trials, ended=trial.trial_id)
        self._maybe_flush()

    def on_experiment_end(self, trials: list, **info):
        self._safe_flush(final=True)
        if self.record_experiment:
            statuses = [getattr(t, "status", None) for t in trials]
            try:  # the final summary, from every row the store holds (a resumed sweep's too)
                summary = summarize(self.store, self.experiment, self.summary_metrics)
            except Exception:  # noqa: BLE001 - the store is unreachable: what this driver saw
                logger.exception("ResultsCallback: summarizing %s failed", self.experiment)
                summary = self._summary.fields()
            summary["n_trials"] = max(summary["n_trials"], len(trials))
            self._summary.changed = False  # no later "running" summary may follow the final row
            row = self._experiment_row("completed", **summary,
                                       n_errored=sum(1 for s in statuses if s == "ERROR"))
            row["ended_at"] = _dt.datetime.now(_dt.timezone.utc)
            self._buffer("experiments", row)
            self._safe_flush(final=True)
        self._compact(over=1)  # one deduplicated part per table: what any Parquet reader sees
