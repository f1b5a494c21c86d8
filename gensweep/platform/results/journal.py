"""Rows on their way to the results store: a buffer, its write-ahead journal and when to flush.

Rows are buffered per table and written in batches. With a journal folder, every buffered
row is also appended to ``<folder>/<experiment>.jsonl`` before it can be lost, and the journal
is emptied once everything buffered has been written; a buffer for the same experiment (e.g.
a resumed sweep after the driver was killed) first takes back what the journal still holds.
Row keys are deterministic, so a batch re-sent after a failed or ambiguous write, or replayed
from the journal, does not duplicate rows.
"""
from __future__ import annotations

import atexit
import base64
import dataclasses
import datetime as _dt
import json
import logging
import os
import threading
import time
from typing import Any, Callable

from .store import ResultsStore, quote_experiment

logger = logging.getLogger(__name__)

# Tables in the order a flush writes them (a trial's row before its metrics and artifacts).
FLUSH_ORDER = ("experiments", "trials", "metrics", "artifacts")


class RowBuffer:
    """Buffered rows of one experiment, journaled to local disk (``journal``: a folder) until
    they are written. Thread-safe. Pickles with its rows (the lock and a pause are not kept).
    """

    def __init__(self, experiment: str, journal: str | None = None):
        self.experiment = experiment
        self.journal = journal
        self.tables: dict[str, list[dict[str, Any]]] = {}  # table -> rows not written yet
        self.pending = 0
        self.journal_loaded = False
        self._init_runtime()

    def _init_runtime(self) -> None:
        self.lock = threading.RLock()
        self.last_flush = time.monotonic()
        self.pause_until = 0.0

    def __getstate__(self) -> dict[str, Any]:
        # The rows travel (and the journal state); the lock, flush time and any pause do not.
        return {name: getattr(self, name) for name in ("experiment", "journal", "tables", "pending", "journal_loaded")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_runtime()

    # ---------------------------------------------------------------- buffering
    def add(self, table: str, row: dict[str, Any]) -> None:
        """Buffer ``row`` for ``table`` and journal it."""
        with self.lock:
            self.load_journal()
            self.tables.setdefault(table, []).append(row)
            self.pending += 1
            self._journal_append(table, row)

    def due(self, every: int, interval_s: float) -> bool:
        """Whether ``every`` rows, or rows buffered ``interval_s`` seconds after the last flush,
        wait; never while :meth:`pause`-d."""
        with self.lock:
            if time.monotonic() < self.pause_until:
                return False
            return self.pending >= every or bool(
                self.pending and time.monotonic() - self.last_flush >= interval_s
            )

    def pause(self, seconds: float) -> None:
        """Hold back flushes that are merely :meth:`due` (after a failed flush); the next
        successful flush ends the pause."""
        self.pause_until = time.monotonic() + seconds

    def flush(self, store: ResultsStore, deadline_s: float | None = None) -> int:
        """Write everything buffered to ``store``; returns the rows written.

        Rows of a table leave the buffer only once their write succeeded, so a failed flush
        is retried whole by the next one (same row keys, no duplicates). ``deadline_s`` bounds
        this flush's retries (default: the store's own retry policy).
        """
        written = 0
        with self.lock:
            self.load_journal()
            saved_policy = store.retry
            if deadline_s is not None:
                store.retry = dataclasses.replace(saved_policy, deadline_s=deadline_s)
            try:
                for table in FLUSH_ORDER:
                    rows = self.tables.get(table)
                    if not rows:
                        continue
                    store.write(table, rows)
                    written += len(rows)
                    self.pending -= len(rows)
                    self.tables[table] = []
            finally:
                store.retry = saved_policy
            if self.pending == 0:
                self._journal_clear()
            self.last_flush = time.monotonic()
            self.pause_until = 0.0
        return written

    # ------------------------------------------------------- write-ahead journal
    def journal_path(self) -> str | None:
        if not self.journal:
            return None
        return os.path.join(self.journal, quote_experiment(self.experiment) + ".jsonl")

    def _journal_append(self, table: str, row: dict[str, Any]) -> None:
        path = self.journal_path()
        if path is None:
            return
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"table": table, "row": row}, default=_journal_default) + "\n")
                handle.flush()
        except OSError:
            logger.exception("ResultsCallback: cannot append to the journal %s", path)

    def load_journal(self) -> int:
        """Put rows a previous driver journaled but never flushed back into the buffer (once);
        returns how many."""
        with self.lock:
            if self.journal_loaded:
                return 0
            self.journal_loaded = True
            path = self.journal_path()
            if path is None or not os.path.exists(path):
                return 0
            replayed = 0
            with open(path, encoding="utf-8") as handle:
                for line in handle:
                    try:
                        entry = json.loads(line, object_hook=_journal_hook)
                        table, row = entry["table"], entry["row"]
                    except (ValueError, KeyError, TypeError):
                        continue  # a line cut short when the previous driver was killed
                    self.tables.setdefault(table, []).append(row)
                    self.pending += 1
                    replayed += 1
            if replayed:
                logger.warning("ResultsCallback: re-sending %d journaled rows of %s", replayed, self.experiment)
            return replayed

    def _journal_clear(self) -> None:
        path = self.journal_path()
        if path is not None and os.path.exists(path):
            with open(path, "w", encoding="utf-8"):
                pass


def register_exit_hook(fn: Callable[[], None]) -> None:
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
