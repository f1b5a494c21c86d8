"""Ray Tune callback that streams trial results into a :class:`ResultsStore`.

The callback holds only the store URI and options (no live connection), so it
pickles with the Tuner; the store is opened lazily in whichever process runs
the callback.  Rows are buffered and written in batches: every ``flush_every``
rows, every ``flush_interval_s`` seconds (checked on every result and every
Tune loop step), when a trial ends, at the end of the experiment and at
interpreter exit.  Row keys are deterministic, so a batch that is re-sent after
a failed or ambiguous write does not duplicate rows.

With ``journal=<local folder>``, every buffered row is also appended to a local write-ahead
journal (``<folder>/<experiment>.jsonl``) that is emptied after each successful flush; a
callback for the same experiment (e.g. a resumed sweep after the driver was killed) re-sends
what the journal still holds, under the same row keys. A driver killed between flushes, or
during a storage outage, so loses no rows.
"""
from __future__ import annotations

import atexit
import base64
import dataclasses
import datetime as _dt
import importlib.metadata
import json
import logging
import math
import numbers
import os
import subprocess
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ray.tune import Callback

from gensweep.platform.storage.retry import RetryPolicy
from gensweep.trainables.errors import Diverged

from .schema import CONFIG_PREFIX, flatten, is_scalar, normalize_value, to_json
from .schema import flatten_config as _flatten_config
from .store import ResultsStore

if TYPE_CHECKING:  # pragma: no cover
    from ray.tune.experiment import Trial

logger = logging.getLogger(__name__)

ConfigFlattener = Callable[[Mapping[str, Any]], Mapping[str, Any]]

# Tune bookkeeping that is not worth a metrics column (or is stored elsewhere).
_SKIP_RESULT_KEYS = frozenset(
    {
        "config",
        "date",
        "hostname",
        "node_ip",
        "pid",
        "experiment_tag",
        "experiment_id",
        "checkpoint_dir_name",
        "should_checkpoint",
        "done",
        "timestamp",
        "trial_id",
        "time_since_restore",
        "iterations_since_restore",
        "timesteps_since_restore",
    }
)
_RESERVED = frozenset({"experiment", "trial_id", "step", "row_key", "written_at", "wall_time_s"})

# A reported ``artifact/<kind>: <uri>`` (e.g. ``artifact/sample_grid``) becomes an artifacts row.
ARTIFACT_PREFIX = "artifact/"

_VERSION_PACKAGES = ("ray", "torch", "pyarrow", "pandas", "numpy", "gensweep")


def runtime_versions() -> dict[str, str]:
    """Python and key package versions (not importing anything heavy)."""
    import platform
    import sys

    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in _VERSION_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def git_commit(path: str | None = None) -> str | None:
    """``HEAD`` of the git checkout at ``path`` (cwd by default), or None."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=path or os.getcwd(),
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else None


def _mapping_flattener(mapping: Mapping[str, Any]) -> ConfigFlattener:
    """``{"lr": "optimizer/lr", "arch": lambda c: c["model"]["name"]}`` -> flattener."""

    def flatten_with(config: Mapping[str, Any]) -> dict[str, Any]:
        flat = flatten(config)
        out: dict[str, Any] = {}
        for column, source in mapping.items():
            if callable(source):
                try:
                    value = source(config)
                except (KeyError, IndexError, TypeError):
                    value = None
            else:
                value = flat.get(str(source))
            out[column] = value
        return out

    return flatten_with


def trial_exception(trial: "Trial") -> BaseException | None:
    """The exception a failed trial raised (unwrapped from Ray's RayTaskError), when Tune kept it."""
    pickled = getattr(trial, "pickled_error_file", None)
    if not pickled or not os.path.exists(pickled):
        return None
    try:
        import cloudpickle

        with open(pickled, "rb") as handle:
            exc = cloudpickle.load(handle)
    except Exception:  # noqa: BLE001 - unreadable: fall back to the text file
        return None
    cause = getattr(exc, "cause", None)  # RayTaskError wraps the user's exception
    return cause if isinstance(cause, BaseException) else exc


def error_message(trial: "Trial") -> str:
    """A one-line reason for a failed trial: the original exception's type and message."""
    exc = trial_exception(trial)
    if exc is not None:
        text = str(exc).strip().splitlines()
        return f"{type(exc).__name__}: {text[-1] if text else ''}".strip().rstrip(":")
    path = getattr(trial, "error_file", None)
    if path and os.path.exists(path):
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = [ln.strip() for ln in handle if ln.strip() and not ln.startswith("Failure #")]
        if lines:
            return lines[-1]
    return "trial failed (no error message recorded)"


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
            :func:`runtime_versions`).

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
    ):
        if not experiment:
            raise ValueError("ResultsCallback needs an experiment name")
        self.uri = os.fspath(uri)
        self.experiment = experiment
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
        self._init_runtime()

    # -------------------------------------------------------------- plumbing
    def _init_runtime(self) -> None:
        self._store: ResultsStore | None = None
        self._lock = threading.RLock()
        self._buffers: dict[str, list[dict[str, Any]]] = {}
        self._n_buffered = 0
        self._last_flush = time.monotonic()
        self._pause_until = 0.0
        self._trial_start: dict[str, float] = {}
        self._trial_last: dict[str, dict[str, Any]] = {}
        self._trial_config: dict[str, dict[str, Any]] = {}
        self._started_at: _dt.datetime | None = None
        self._atexit_registered = False
        self._journal_loaded = False

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for key in ("_store", "_lock"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._store = None
        self._lock = threading.RLock()
        self._atexit_registered = False
        self._last_flush = time.monotonic()
        self._pause_until = 0.0

    @property
    def store(self) -> ResultsStore:
        if self._store is None:
            self._store = ResultsStore.open(
                self.uri, retry=RetryPolicy(deadline_s=self.deadline_s), **self.storage
            )
        return self._store

    def _register_atexit(self) -> None:
        if not self._atexit_registered:
            _register_exit_hook(self._flush_at_exit)
            self._atexit_registered = True

    def _flush_at_exit(self) -> None:
        try:
            self.flush()
        except Exception:  # noqa: BLE001 - nothing to raise to at exit
            logger.exception("ResultsCallback: final flush to %s failed", self.uri)

    def _buffer(self, table: str, row: dict[str, Any]) -> None:
        with self._lock:
            self._load_journal()
            self._buffers.setdefault(table, []).append(row)
            self._n_buffered += 1
            self._journal_append(table, row)
            self._register_atexit()

    # ------------------------------------------------------- write-ahead journal
    def _journal_path(self) -> str | None:
        if not self.journal:
            return None
        from .store import quote_experiment

        return os.path.join(self.journal, quote_experiment(self.experiment) + ".jsonl")

    def _journal_append(self, table: str, row: dict[str, Any]) -> None:
        path = self._journal_path()
        if path is None:
            return
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"table": table, "row": row}, default=_journal_default) + "\n")
                handle.flush()
        except OSError:
            logger.exception("ResultsCallback: cannot append to the journal %s", path)

    def _load_journal(self) -> None:
        """Put rows a previous driver journaled but never flushed back into the buffer (once)."""
        if self._journal_loaded:
            return
        self._journal_loaded = True
        path = self._journal_path()
        if path is None or not os.path.exists(path):
            return
        replayed = 0
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    entry = json.loads(line, object_hook=_journal_hook)
                    table, row = entry["table"], entry["row"]
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short when the previous driver was killed
                self._buffers.setdefault(table, []).append(row)
                self._n_buffered += 1
                replayed += 1
        if replayed:
            logger.warning("ResultsCallback: re-sending %d journaled rows of %s", replayed, self.experiment)
            self._register_atexit()

    def _journal_clear(self) -> None:
        path = self._journal_path()
        if path is not None and os.path.exists(path):
            with open(path, "w", encoding="utf-8"):
                pass

    def _maybe_flush(self) -> None:
        with self._lock:
            if time.monotonic() < self._pause_until:  # the last flush failed: back off
                return
            due = self._n_buffered >= self.flush_every or (
                self._n_buffered and time.monotonic() - self._last_flush >= self.flush_interval_s
            )
        if due:
            self._safe_flush()

    def _safe_flush(self, final: bool = False) -> None:
        # A store outage must not kill the sweep: the rows stay buffered and go
        # out with the next flush (same row keys, so no duplicates).
        try:
            self.flush(deadline_s=None if final else min(self.deadline_s, self.in_loop_deadline_s))
        except Exception:  # noqa: BLE001
            self._pause_until = time.monotonic() + max(1.0, self.flush_interval_s)
            logger.exception(
                "ResultsCallback: writing to %s failed; %d rows kept for the next flush",
                self.uri, self._n_buffered,
            )

    def flush(self, deadline_s: float | None = None) -> int:
        """Write everything buffered; returns the rows written.  Safe to call repeatedly.

        Rows of a table leave the buffer only once their write succeeded, so a
        failed flush is retried whole by the next one (same row keys, no duplicates).
        ``deadline_s`` bounds this flush's retries (default: the callback's ``deadline_s``).
        """
        written = 0
        with self._lock:
            self._load_journal()
            store = self.store
            saved_policy = store.retry
            if deadline_s is not None:
                store.retry = dataclasses.replace(saved_policy, deadline_s=deadline_s)
            try:
                for table in ("experiments", "trials", "metrics", "artifacts"):
                    rows = self._buffers.get(table)
                    if not rows:
                        continue
                    store.write(table, rows)
                    written += len(rows)
                    self._n_buffered -= len(rows)
                    self._buffers[table] = []
            finally:
                store.retry = saved_policy
            if self._n_buffered == 0:
                self._journal_clear()
            self._last_flush = time.monotonic()
            self._pause_until = 0.0
        return written

    # ------------------------------------------------------------- row making
    def _config_columns(self, config: Mapping[str, Any]) -> dict[str, Any]:
        if self.flatten_config is None:
            return _flatten_config(config)
        fn = (
            _mapping_flattener(self.flatten_config)
            if isinstance(self.flatten_config, Mapping)
            else self.flatten_config
        )
        out = {}
        for name, value in dict(fn(config)).items():
            column = str(name) if str(name).startswith(CONFIG_PREFIX) else CONFIG_PREFIX + str(name)
            out[column] = normalize_value(value)
        return out

    def _trial_columns(self, trial: "Trial") -> dict[str, Any]:
        cached = self._trial_config.get(trial.trial_id)
        if cached is None:
            config = dict(getattr(trial, "config", None) or {})
            cached = self._config_columns(config)
            self._trial_config[trial.trial_id] = cached
        return cached

    def _experiment_row(self, status: str, **extra: Any) -> dict[str, Any]:
        spec = self.spec
        if isinstance(spec, Mapping):
            spec = to_json(spec)
        return {
            "experiment": self.experiment,
            "spec": spec,
            "versions": to_json(self.versions if self.versions is not None else runtime_versions()),
            "git_commit": self.git_commit_sha,
            "seed": self.seed,
            "started_at": self._started_at,
            "ended_at": None,
            "status": status,
            **extra,
        }

    def _trial_row(self, trial: "Trial", status: str, reason: str | None) -> dict[str, Any]:
        tid = trial.trial_id
        last = self._trial_last.get(tid, {})
        now = time.time()
        start = self._trial_start.get(tid)
        wall = now - start if start is not None else None
        if last.get("time_total_s") is not None and (wall is None or wall < last["time_total_s"]):
            wall = float(last["time_total_s"])
        config = dict(getattr(trial, "config", None) or {})
        resources = self.trial_resources or _trial_resources(trial)
        hours = (wall or 0.0) / 3600.0
        columns = self._trial_columns(trial)
        seed = config.get("seed")
        if seed is None:
            seed = next((v for k, v in columns.items() if k.endswith("/seed")), None)
        return {
            "experiment": self.experiment,
            "trial_id": tid,
            "status": status,
            "reason": reason,
            "config": to_json(config),
            **columns,
            "seed": seed,
            "resources": to_json(resources),
            "wall_time_s": wall,
            "gpu_hours": float(resources.get("GPU", 0.0)) * hours,
            "cpu_hours": float(resources.get("CPU", 0.0)) * hours,
            "last_step": last.get("step"),
            "started_at": _utc(start) if start is not None else None,
            "ended_at": _utc(now) if status != "running" else None,
            "trial_dir": getattr(trial, "path", None),
        }

    def _artifact_row(self, trial: "Trial", kind: str, uri: str, step: Any) -> dict[str, Any]:
        return {"experiment": self.experiment, "trial_id": trial.trial_id, "kind": kind, "uri": uri,
                "step": step, "wall_time_s": time.time()}

    def _metrics_row(self, trial: "Trial", result: Mapping[str, Any]) -> dict[str, Any]:
        step = result.get("step")
        if not isinstance(step, numbers.Number) or isinstance(step, bool):
            step = result.get("training_iteration", 0)
        row: dict[str, Any] = {
            "experiment": self.experiment,
            "trial_id": trial.trial_id,
            "step": step,
            "wall_time_s": float(result.get("timestamp") or time.time()),
        }
        for key, value in flatten({k: v for k, v in result.items() if k not in _SKIP_RESULT_KEYS}).items():
            if key == "step" or key.startswith(ARTIFACT_PREFIX) or not is_scalar(value):
                continue
            if key in _RESERVED:
                key = f"result/{key}"
            row[key] = value.item() if hasattr(value, "item") else value
        row.update(self._trial_columns(trial))
        return row

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
        self._buffer("trials", self._trial_row(trial, "running", None))
        self._maybe_flush()

    def on_trial_result(self, iteration: int, trials: list, trial: "Trial", result: dict, **info):
        self._trial_start.setdefault(trial.trial_id, time.time())
        row = self._metrics_row(trial, result)
        self._trial_last[trial.trial_id] = {
            "step": row["step"],
            "time_total_s": result.get("time_total_s"),
            "diverged": bool(result.get("diverged", False)),
            "reason": result.get("reason"),
            # Tune sets done=True on the result passed here when it decided to
            # stop the trial (scheduler / stopper); a trainable that simply
            # returns ends without a further on_trial_result.
            "stop_decided": bool(result.get("done", False)),
            "iteration": result.get("training_iteration"),
        }
        self._buffer("metrics", row)
        reported = flatten({k: v for k, v in result.items() if str(k).startswith("artifact")})
        for key, value in reported.items():
            if key.startswith(ARTIFACT_PREFIX) and isinstance(value, str) and value:
                self._buffer("artifacts", self._artifact_row(trial, key[len(ARTIFACT_PREFIX):], value,
                                                             row["step"]))
        self._maybe_flush()

    def on_checkpoint(self, iteration: int, trials: list, trial: "Trial", checkpoint, **info):
        path = getattr(checkpoint, "path", None)
        if not path:
            return
        fs_type = getattr(getattr(checkpoint, "filesystem", None), "type_name", "local")
        uri = path if fs_type in ("local", None) else f"{fs_type}://{path}"
        step = self._trial_last.get(trial.trial_id, {}).get("step")
        self._buffer("artifacts", self._artifact_row(trial, "checkpoint", uri, step))
        self._maybe_flush()

    def on_step_end(self, iteration: int, trials: list, **info):
        self._maybe_flush()

    def on_trial_complete(self, iteration: int, trials: list, trial: "Trial", **info):
        last = self._trial_last.get(trial.trial_id, {})
        if last.get("diverged"):
            status, reason = "diverged", str(last.get("reason") or "diverged")
        elif last.get("stop_decided") and not self._used_budget(last):
            status, reason = "stopped", last.get("reason")
            reason = str(reason) if reason is not None else "stopped by scheduler or stopping criterion"
        else:
            status, reason = "completed", None
        self._buffer("trials", self._trial_row(trial, status, reason))
        self._safe_flush()

    def _used_budget(self, last: Mapping[str, Any]) -> bool:
        it = last.get("iteration")
        return self.budget_iterations is not None and it is not None and it >= self.budget_iterations

    def on_trial_error(self, iteration: int, trials: list, trial: "Trial", **info):
        exc = trial_exception(trial)
        if isinstance(exc, Diverged):  # the trial ended on a divergence: its step and reason, not a failure
            row = self._trial_row(trial, "diverged", str(exc))
            row["last_step"] = exc.step
        else:
            row = self._trial_row(trial, "failed", _redact(error_message(trial)))
        self._buffer("trials", row)
        self._safe_flush()

    def on_experiment_end(self, trials: list, **info):
        if self.record_experiment:
            statuses = [getattr(t, "status", None) for t in trials]
            row = self._experiment_row(
                "completed",
                n_trials=len(trials),
                n_errored=sum(1 for s in statuses if s == "ERROR"),
            )
            row["ended_at"] = _dt.datetime.now(_dt.timezone.utc)
            self._buffer("experiments", row)
        self._safe_flush(final=True)


def _register_exit_hook(fn: Callable[[], None]) -> None:
    """Run ``fn`` at interpreter exit, early enough for thread pools to still work.

    Plain ``atexit`` handlers run after ``concurrent.futures`` has shut its
    executors down, and asyncio-based clients (s3fs/aiobotocore resolve hosts and
    load credentials in an executor) then fail with "cannot schedule new futures
    after interpreter shutdown".  ``threading._register_atexit`` hooks run before
    that (and before non-daemon threads are joined); a plain ``atexit`` handler
    stays as a second chance for rows buffered after it.
    """
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        try:
            register(fn)
        except RuntimeError:  # already shutting down
            pass
    atexit.register(fn)


def _redact(text: str) -> str:
    """Credential values from the environment never go into a stored reason."""
    from gensweep.platform.storage.secrets import redact, secret_values

    return redact(text, secret_values())


def _journal_default(value: Any) -> Any:
    if isinstance(value, _dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return item()
        except Exception:  # noqa: BLE001
            pass
    return str(value)


def _journal_hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        if "$datetime" in obj:
            return _dt.datetime.fromisoformat(obj["$datetime"])
        if "$bytes" in obj:
            return base64.b64decode(obj["$bytes"])
    return obj


def _utc(ts: float) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(ts, tz=_dt.timezone.utc)


def _trial_resources(trial: "Trial") -> dict[str, float]:
    pgf = getattr(trial, "placement_group_factory", None)
    required = getattr(pgf, "required_resources", None)
    if isinstance(required, Mapping):
        return {str(k): float(v) for k, v in required.items() if not math.isnan(float(v))}
    return {}
