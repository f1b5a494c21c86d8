"""The results store: an append-only, partitioned Parquet dataset.

Layout::

    {root}/{table}/experiment={quoted name}/part-{UTC timestamp}-{uuid}.parquet

Every write creates new part files (one per experiment in the batch) and never
touches existing ones, so any number of writers in any number of processes or
machines can append concurrently.  Each row carries a deterministic ``row_key``
and the ``written_at`` time of its write; readers union all part files and keep,
per ``row_key``, the row written last (for ``trials``, a terminal status always
beats ``running``), so re-sending a batch after a failure or a crash never
duplicates rows.

Part files stay few: :meth:`ResultsStore.compact` merges an experiment's parts of a table
into one deduplicated part (the results callback does so whenever a table passes
:data:`COMPACT_OVER` parts and at the experiment's end; ``gensweep results compact`` for
stores written before), so once an experiment has ended a plain Parquet reader sees exactly
the rows :meth:`ResultsStore.read` returns.  Known columns have declared types
(:mod:`.columns`); blob files live outside the tables' folders (``<root>/files/``).
"""
from __future__ import annotations

import datetime as _dt
import io
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import quote, unquote

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gensweep.platform.storage.retry import RetryPolicy

from .backends import Backend, backend_for_uri, is_hidden
from .columns import conform, source_columns
from .parts import concat_tables, decode, dedupe, dedupe_columns, encode, rows_to_table
from .schema import (
    EXPERIMENT,
    ROW_KEY,
    TABLES,
    WRITTEN_AT,
    normalize_rows,
    table_spec,
)

logger = logging.getLogger(__name__)

PARTITION_KEY = "experiment="
PART_SUFFIX = ".parquet"
# An experiment's table is merged into one part once it has more parts than this.
COMPACT_OVER = 20


def quote_experiment(name: str) -> str:
    return quote(name, safe="-_.+@:,")


def part_name(now: _dt.datetime | None = None) -> str:
    """``part-20250101T120000.123456Z-<uuid4hex>.parquet``; sorts by write time."""
    now = now or _dt.datetime.now(_dt.timezone.utc)
    return f"part-{now.strftime('%Y%m%dT%H%M%S.%fZ')}-{uuid.uuid4().hex}{PART_SUFFIX}"


class ResultsStore:
    """Append-only results store over a :class:`Backend` (local path or ``s3://``)."""

    def __init__(
        self,
        backend: Backend,
        root: str,
        retry: RetryPolicy | None = None,
        *,
        read_threads: int = 8,
    ):
        self.backend = backend
        self.root = root
        self.retry = retry or RetryPolicy()
        self.read_threads = read_threads

    @classmethod
    def open(
        cls,
        uri: str,
        *,
        retry: RetryPolicy | None = None,
        deadline_s: float | None = None,
        read_threads: int = 8,
        **storage: Any,
    ) -> "ResultsStore":
        """Open the store at ``uri`` (a local path, ``file://`` or ``s3://bucket/prefix``).

        ``storage`` goes to the backend (S3: ``endpoint_url``, ``region_name``,
        ``profile``, ``connect_timeout``, ``read_timeout``; local: ``fsync``).
        ``deadline_s`` is a shortcut for ``RetryPolicy(deadline_s=...)``.
        """
        backend, root = backend_for_uri(uri, **storage)
        if retry is None:
            retry = RetryPolicy() if deadline_s is None else RetryPolicy(deadline_s=deadline_s)
        return cls(backend, root, retry, read_threads=read_threads)

    @property
    def uri(self) -> str:
        return self.backend.uri(self.root)

    def __repr__(self) -> str:
        return f"ResultsStore({self.uri!r})"

    # ------------------------------------------------------------------ paths
    def table_path(self, table: str) -> str:
        table_spec(table)
        return self.backend.join(self.root, table)

    def partition_path(self, table: str, experiment: str) -> str:
        return self.backend.join(self.table_path(table), PARTITION_KEY + quote_experiment(experiment))

    # ----------------------------------------------------------------- writes
    def write(
        self, table: str, rows: Iterable[Mapping[str, Any]], *, written_at: _dt.datetime | None = None
    ) -> list[str]:
        """Append ``rows`` to ``table``; returns the part files written.

        Rows are validated (required columns), given a ``row_key`` when they have
        none and stamped with ``written_at``.  One part file per experiment; each
        is written atomically and retried under the store's :class:`RetryPolicy`
        (a retry re-sends the same object name, so it cannot duplicate files).
        """
        clean = normalize_rows(table, rows)
        if not clean:
            return []
        stamp = written_at or _dt.datetime.now(_dt.timezone.utc)
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=_dt.timezone.utc)
        groups: dict[str, list[dict[str, Any]]] = {}
        for row in clean:
            row[WRITTEN_AT] = stamp
            groups.setdefault(str(row[EXPERIMENT]), []).append(row)
        written = []
        for experiment, group in groups.items():
            data = encode(rows_to_table(group, table))
            path = self.backend.join(self.partition_path(table, experiment), part_name())
            self.retry.call(lambda: self.backend.write_bytes(path, data), what=f"write {path}")
            written.append(path)
        return written

    append = write

    # ------------------------------------------------------------------ reads
    def part_files(self, table: str, experiment: str | None = None) -> list[str]:
        """Visible part files of ``table`` (optionally one experiment), oldest first."""
        prefix = self.partition_path(table, experiment) if experiment else self.table_path(table)
        paths = self.retry.call(lambda: self.backend.list(prefix), what=f"list {prefix}")
        parts = []
        for path in paths:
            name = path.rsplit("/", 1)[-1]
            if name.endswith(PART_SUFFIX) and not is_hidden(name):
                parts.append(path)
        return sorted(parts, key=lambda p: (p.rsplit("/", 1)[-1], p))

    def _fetch(self, path: str) -> bytes:
        return self.retry.call(lambda: self.backend.read_bytes(path), what=f"read {path}")

    @staticmethod
    def _decode(path: str, data: bytes, table: str, columns: Sequence[str] | None = None) -> pa.Table:
        try:
            return decode(data, table, columns)
        except Exception as exc:  # noqa: BLE001
            raise OSError(f"results store: cannot read part file {path}: {exc}") from exc

    def read_arrow(
        self,
        table: str,
        experiment: str | None = None,
        *,
        columns: Sequence[str] | None = None,
        dedupe_rows: bool = True,
    ) -> pa.Table | None:
        """Like :meth:`read`, as an Arrow table (None when the table has no part)."""
        table_spec(table)
        wanted = None if columns is None else list(dict.fromkeys([*columns, *dedupe_columns(table)]))
        for attempt in range(5):
            paths = self.part_files(table, experiment)
            try:
                tables = self._read_parts(paths, table, wanted)
                break
            except FileNotFoundError:
                # A part vanished between list and read (a concurrent compact()); re-list.
                if attempt == 4:
                    raise
                time.sleep(0.05 * (attempt + 1))
        if not tables:
            return None
        merged = concat_tables(tables)
        if dedupe_rows:
            merged = dedupe(merged, table)
        if columns is not None:
            merged = merged.select(source_columns(table, list(columns), merged.column_names))
        return merged

    def read(
        self,
        table: str,
        experiment: str | None = None,
        *,
        columns: Sequence[str] | None = None,
        dedupe_rows: bool = True,
    ) -> pd.DataFrame:
        """All rows of ``table`` (optionally one experiment) as a DataFrame.

        Unions the part files, tolerating schema evolution (new columns appear,
        missing ones are null, int columns that became float are promoted), and
        keeps one row per ``row_key`` unless ``dedupe_rows=False``. ``columns`` reads
        only those columns of each part (Parquet column projection; ``"config/*"`` names
        every column with that prefix; columns no part has are left out).
        """
        merged = self.read_arrow(table, experiment, columns=columns, dedupe_rows=dedupe_rows)
        if merged is None:
            names = (*table_spec(table).required, ROW_KEY) if columns is None else \
                [c for c in columns if not c.endswith("*")]
            return pd.DataFrame({c: pd.Series(dtype="object") for c in names})
        return merged.to_pandas()

    def _fetch_parts(self, paths: list[str]) -> list[bytes]:
        if len(paths) <= 1 or self.read_threads <= 1:
            return [self._fetch(p) for p in paths]
        with ThreadPoolExecutor(max_workers=min(self.read_threads, len(paths))) as pool:
            return list(pool.map(self._fetch, paths))

    def _read_parts(self, paths: list[str], table: str, columns: Sequence[str] | None = None) -> list[pa.Table]:
        return [self._decode(p, d, table, columns) for p, d in zip(paths, self._fetch_parts(paths))]

    def experiments(self) -> list[str]:
        """Names of all experiments with rows in any table."""
        names: set[str] = set()
        for table in TABLES:
            prefix = self.table_path(table)
            dirs = self.retry.call(lambda: self.backend.list_dirs(prefix), what=f"list {prefix}")
            names.update(unquote(d[len(PARTITION_KEY):]) for d in dirs if d.startswith(PARTITION_KEY))
        return sorted(names)

    # ------------------------------------------------------------ maintenance
    def compact(self, table: str, experiment: str, *, over: int = 1) -> int:
        """Merge one experiment's part files of ``table`` into one deduplicated part when it
        has more than ``over`` parts; returns the files removed.

        Safe beside concurrent writers, readers and other compactions: the merged part is
        written (atomically) before any merged part is deleted, so a reader or a killed
        compaction meets at worst the same rows twice, which reads dedupe and the next
        compaction removes; parts written meanwhile are neither read nor deleted. When a
        part vanishes under it (another compaction), it gives up and returns 0.

        With ``over`` > 1 (compaction during a sweep) a part holding more rows than all the
        others together is left as it is, so each row is rewritten O(log rows) times over a
        sweep, not once per compaction; ``over=1`` merges every part.
        """
        paths = self.part_files(table, experiment)
        if len(paths) < 2 or len(paths) <= over:
            return 0
        try:
            blobs = self._fetch_parts(paths)
        except FileNotFoundError:
            return 0
        if over > 1:  # while a sweep runs: a part bigger than all the others together stays
            paths, blobs = _without_dominant(paths, blobs)
        merged = conform(table, dedupe(concat_tables(
            [self._decode(p, d, table) for p, d in zip(paths, blobs)]), table))
        data = encode(merged)
        target = self.backend.join(self.partition_path(table, experiment), part_name())
        self.retry.call(lambda: self.backend.write_bytes(target, data), what=f"write {target}")
        for path in paths:
            self.retry.call(lambda p=path: self.backend.delete(p), what=f"delete {path}")
        return len(paths)

    def compact_experiment(self, experiment: str, *, over: int = 1) -> dict[str, int]:
        """:meth:`compact` every table of ``experiment``; returns the files removed per table."""
        return {table: self.compact(table, experiment, over=over) for table in TABLES}

    def clean_temp(self, older_than_s: float = 3600.0) -> int:
        """Remove stale temp files left by killed writers (local disk); returns how many."""
        return self.backend.clean_temp(self.root, older_than_s)

    # ---------------------------------------------------------- conveniences
    def log_experiment(self, experiment: str, **fields: Any) -> list[str]:
        return self.write("experiments", [{"experiment": experiment, **fields}])

    def log_trial(self, experiment: str, trial_id: str, status: str, **fields: Any) -> list[str]:
        return self.write(
            "trials", [{"experiment": experiment, "trial_id": trial_id, "status": status, **fields}]
        )

    def log_metrics(self, experiment: str, trial_id: str, step: int, **metrics: Any) -> list[str]:
        return self.write(
            "metrics", [{"experiment": experiment, "trial_id": trial_id, "step": step, **metrics}]
        )

    def log_artifact(
        self, experiment: str, trial_id: str, kind: str, uri: str, step: int | None = None, **fields: Any
    ) -> list[str]:
        return self.write(
            "artifacts",
            [{"experiment": experiment, "trial_id": trial_id, "kind": kind, "uri": uri, "step": step, **fields}],
        )




def _without_dominant(paths: list[str], blobs: list[bytes]) -> tuple[list[str], list[bytes]]:
    """The parts less the one with more rows than all the others together, if there is one."""
    rows = [pq.ParquetFile(io.BytesIO(b)).metadata.num_rows for b in blobs]
    big = max(range(len(rows)), key=rows.__getitem__)
    if rows[big] <= sum(rows) - rows[big] or len(paths) < 3:
        return paths, blobs
    return paths[:big] + paths[big + 1:], blobs[:big] + blobs[big + 1:]
