"""Part files of the results store: rows to a typed Arrow table and back, unions of parts,
dedupe, and Parquet encoding with column projection."""
from __future__ import annotations

import io
from typing import Any, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from .columns import conform, declared, source_columns, upgrade_legacy
from .schema import ROW_KEY, WRITTEN_AT
from .status import TrialStatus

_ORDER = "__gensweep_order"


def _column_array(values: list[Any], want: pa.DataType | None = None) -> pa.Array:
    if want is not None:
        try:
            return pa.array(values, type=want)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass  # e.g. a step of 2.5: keep the value, in its own type
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        # Mixed types in one column (e.g. int and str): keep the data, as text.
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def rows_to_table(rows: list[dict[str, Any]], table: str | None = None) -> pa.Table:
    """Rows as one Arrow table: every declared column of ``table`` with its declared type
    (all-null ones too); other columns typed by their values, left out when all null."""
    types = declared(table) if table else {}
    columns: dict[str, None] = dict.fromkeys(types)
    for row in rows:
        for key in row:
            columns.setdefault(key, None)
    names, arrays = [], []
    for name in columns:
        values = [row.get(name) for row in rows]
        if name not in types and all(v is None for v in values):
            continue  # an undeclared all-null column would get Arrow's null type
        names.append(name)
        arrays.append(_column_array(values, types.get(name)))
    return pa.Table.from_arrays(arrays, names=names)


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


def dedupe_columns(table: str) -> tuple[str, ...]:
    """The columns :func:`dedupe` needs besides those a reader asked for."""
    return (ROW_KEY, WRITTEN_AT, "status") if table == "trials" else (ROW_KEY, WRITTEN_AT)


def encode(data: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(data, sink, compression="zstd")
    return sink.getvalue()


def decode(data: bytes, table: str, columns: Sequence[str] | None = None) -> pa.Table:
    """A part file's rows (only ``columns`` when given: those the file has), old column names
    mapped to new ones and declared columns in their declared types."""
    if columns is None:
        part = pq.read_table(io.BytesIO(data))
    else:
        handle = pq.ParquetFile(io.BytesIO(data))
        part = handle.read(columns=source_columns(table, list(columns), handle.schema_arrow.names))
    return conform(table, upgrade_legacy(table, part))
