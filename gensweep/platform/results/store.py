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
"""
from __future__ import annotations

import datetime as _dt
import io
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable, Mapping
from urllib.parse import quote, unquote

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gensweep.platform.storage.retry import RetryPolicy

from .backends import Backend, backend_for_uri, is_hidden
from .schema import (
    EXPERIMENT,
    ROW_KEY,
    TABLES,
    WRITTEN_AT,
    normalize_rows,
    table_spec,
)
from .status import TrialStatus

logger = logging.getLogger(__name__)

PARTITION_KEY = "experiment="
PART_SUFFIX = ".parquet"
_ORDER = "__gensweep_order"


def quote_experiment(name: str) -> str:
    return quote(name, safe="-_.+@:,")


def part_name(now: _dt.datetime | None = None) -> str:
    """``part-20250101T120000.123456Z-<uuid4hex>.parquet``; sorts by write time."""
    now = now or _dt.datetime.now(_dt.timezone.utc)
    return f"part-{now.strftime('%Y%m%dT%H%M%S.%fZ')}-{uuid.uuid4().hex}{PART_SUFFIX}"


def _column_array(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        # Mixed types in one column (e.g. int and str): keep the data, as text.
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    columns: dict[str, None] = {}
    for row in rows:
        for key in row:
            columns.setdefault(key, None)
    arrays = [_column_array([row.get(c) for row in rows]) for c in columns]
    return pa.Table.from_arrays(arrays, names=list(columns))


def concat_tables(tables: list[pa.Table]) -> pa.Table:
    """Union part files with schema evolution.

    Missing columns become null and numeric types are promoted (int -> float);
    columns whose types cannot be unified (e.g. int in one file, string in
    another) are kept as strings.
    """
    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        pass
    types: dict[str, set[pa.DataType]] = {}
    for t in tables:
        for f in t.schema:
            if not pa.types.is_null(f.type):
                types.setdefault(f.name, set()).add(f.type)
    conflicting = set()
    for name, found in types.items():
        if len(found) > 1:
            try:
                pa.unify_schemas([pa.schema([(name, ty)]) for ty in found], promote_options="permissive")
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                conflicting.add(name)
    fixed = []
    for t in tables:
        for name in conflicting & set(t.column_names):
            i = t.column_names.index(name)
            t = t.set_column(i, name, _to_string(t.column(i)))
        fixed.append(t)
    return pa.concat_tables(fixed, promote_options="permissive")


def _to_string(column: pa.ChunkedArray) -> pa.ChunkedArray:
    try:
        return column.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.chunked_array(
            [pa.array([None if v is None else str(v) for v in column.to_pylist()], type=pa.string())]
        )


def dedupe_indices(table: pa.Table, name: str) -> list[int]:
    """Positions of the rows to keep, in original order: per ``row_key`` the last
    written (ordered by ``written_at``, then file order); for ``trials`` a terminal
    status beats ``running`` whatever the clocks said."""
    if ROW_KEY not in table.column_names or table.num_rows == 0:
        return list(range(table.num_rows))
    cols = [c for c in (ROW_KEY, WRITTEN_AT, "status") if c in table.column_names]
    df = table.select(cols).to_pandas()
    df[_ORDER] = range(len(df))
    keys = [WRITTEN_AT, _ORDER] if WRITTEN_AT in df.columns else [_ORDER]
    if name == "trials" and "status" in df.columns:
        df["__terminal"] = df["status"].isin(TrialStatus.terminals())
        keys = ["__terminal", *keys]
    df = df.sort_values(keys, kind="stable", na_position="first")
    kept = df.drop_duplicates(ROW_KEY, keep="last")[_ORDER]
    return sorted(int(i) for i in kept)


def dedupe(table: pa.Table, name: str) -> pa.Table:
    indices = dedupe_indices(table, name)
    if len(indices) == table.num_rows:
        return table
    return table.take(pa.array(indices, type=pa.int64()))


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
            data = self._encode(group)
            path = self.backend.join(self.partition_path(table, experiment), part_name())
            self.retry.call(lambda: self.backend.write_bytes(path, data), what=f"write {path}")
            written.append(path)
        return written

    append = write

    @staticmethod
    def _encode(rows: list[dict[str, Any]]) -> bytes:
        sink = io.BytesIO()
        pq.write_table(rows_to_table(rows), sink, compression="zstd")
        return sink.getvalue()

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

    def _read_part(self, path: str) -> pa.Table:
        data = self.retry.call(lambda: self.backend.read_bytes(path), what=f"read {path}")
        try:
            return pq.read_table(io.BytesIO(data))
        except Exception as exc:  # noqa: BLE001
            raise OSError(f"results store: cannot read part file {path}: {exc}") from exc

    def read(
        self, table: str, experiment: str | None = None, *, dedupe_rows: bool = True
    ) -> pd.DataFrame:
        """All rows of ``table`` (optionally one experiment) as a DataFrame.

        Unions the part files, tolerating schema evolution (new columns appear,
        missing ones are null, int columns that became float are promoted), and
        keeps one row per ``row_key`` unless ``dedupe_rows=False``.
        """
        spec = table_spec(table)
        for attempt in range(5):
            paths = self.part_files(table, experiment)
            try:
                tables = self._read_parts(paths)
                break
            except FileNotFoundError:
                # A part vanished between list and read (a concurrent compact()); re-list.
                if attempt == 4:
                    raise
                time.sleep(0.05 * (attempt + 1))
        if not tables:
            return pd.DataFrame({c: pd.Series(dtype="object") for c in (*spec.required, ROW_KEY)})
        merged = concat_tables(tables)
        if dedupe_rows:
            merged = dedupe(merged, table)
        return merged.to_pandas()

    def _read_parts(self, paths: list[str]) -> list[pa.Table]:
        if len(paths) <= 1 or self.read_threads <= 1:
            return [self._read_part(p) for p in paths]
        with ThreadPoolExecutor(max_workers=min(self.read_threads, len(paths))) as pool:
            return list(pool.map(self._read_part, paths))

    def experiments(self) -> list[str]:
        """Names of all experiments with rows in any table."""
        names: set[str] = set()
        for table in TABLES:
            prefix = self.table_path(table)
            dirs = self.retry.call(lambda: self.backend.list_dirs(prefix), what=f"list {prefix}")
            names.update(unquote(d[len(PARTITION_KEY):]) for d in dirs if d.startswith(PARTITION_KEY))
        return sorted(names)

    # ------------------------------------------------------------ maintenance
    def compact(self, table: str, experiment: str) -> int:
        """Merge one experiment's part files of ``table`` into one; returns files removed.

        Safe with concurrent writers and readers: the merged file is written
        before the old parts are deleted (readers dedupe the overlap), and only
        parts that were merged are deleted.
        """
        paths = self.part_files(table, experiment)
        if len(paths) < 2:
            return 0
        merged = dedupe(concat_tables(self._read_parts(paths)), table)
        sink = io.BytesIO()
        pq.write_table(merged, sink, compression="zstd")
        data = sink.getvalue()
        target = self.backend.join(self.partition_path(table, experiment), part_name())
        self.retry.call(lambda: self.backend.write_bytes(target, data), what=f"write {target}")
        for path in paths:
            self.retry.call(lambda p=path: self.backend.delete(p), what=f"delete {path}")
        return len(paths)

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

