"""Declared Arrow types of each table's known columns, and the names old stores used.

Every part file writes a known column with its declared type, even when all its values are
null, so that any Parquet reader (pyarrow.dataset, Polars, DuckDB) sees one type per column
across parts. Columns that are not declared (metrics, ``config/...``) keep the type of their
values; compaction merges an experiment's parts into one file of one schema.

Column names follow one rule: ``*_s`` is a duration in seconds, ``*_at`` a UTC timestamp.
Stores written before the rule had ``wall_time_s`` as a UNIX timestamp in ``metrics`` and
``artifacts``; :data:`LEGACY_TIMESTAMPS` maps it to the new name when reading.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

TIMESTAMP = pa.timestamp("us", tz="UTC")

_COMMON = {"experiment": pa.string(), "row_key": pa.string(), "written_at": TIMESTAMP}

COLUMN_TYPES: dict[str, dict[str, pa.DataType]] = {
    "experiments": {
        **_COMMON,
        "status": pa.string(),
        "spec": pa.string(),
        "versions": pa.string(),
        "git_commit": pa.string(),
        "seed": pa.int64(),
        "started_at": TIMESTAMP,
        "ended_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
        "n_trials": pa.int64(),
        "n_finished": pa.int64(),
        "n_errored": pa.int64(),
        "n_reports": pa.int64(),
    },
    "trials": {
        **_COMMON,
        "trial_id": pa.string(),
        "status": pa.string(),
        "reason": pa.string(),
        "config": pa.string(),
        "seed": pa.int64(),
        "resources": pa.string(),
        "wall_time_s": pa.float64(),
        "gpu_hours": pa.float64(),
        "cpu_hours": pa.float64(),
        "last_step": pa.int64(),
        "started_at": TIMESTAMP,
        "ended_at": TIMESTAMP,
        "trial_dir": pa.string(),
    },
    "metrics": {
        **_COMMON,
        "trial_id": pa.string(),
        "step": pa.int64(),
        "reported_at": TIMESTAMP,
        "reeval": pa.bool_(),
        "backfilled": pa.bool_(),
        "sampling": pa.string(),
        "sampling_row": pa.bool_(),
    },
    "artifacts": {
        **_COMMON,
        "trial_id": pa.string(),
        "kind": pa.string(),
        "uri": pa.string(),
        "step": pa.int64(),
        "created_at": TIMESTAMP,
    },
    "lineage": {
        **_COMMON,
        "trial_id": pa.string(),
        "step": pa.int64(),  # the donor's step, where the trial continues from
        "donor_trial_id": pa.string(),
        "replaced_step": pa.int64(),  # the trial's own step when its state was replaced
        "perturbation": pa.string(),  # JSON: {param: {"from": donor's value, "to": new value, "op": how}}
        "exploited_at": TIMESTAMP,
    },
}

# table -> {old column (epoch seconds): new timestamp column}
LEGACY_TIMESTAMPS: dict[str, dict[str, str]] = {
    "metrics": {"wall_time_s": "reported_at"},
    "artifacts": {"wall_time_s": "created_at"},
}


def declared(table: str) -> dict[str, pa.DataType]:
    return COLUMN_TYPES.get(table, {})


def source_columns(table: str, columns: list[str], present: list[str]) -> list[str]:
    """The columns of a part (its columns: ``present``) to read for ``columns``: a name ending
    in ``*`` asks for every column that starts with the rest (``"config/*"``), a renamed
    column also for its old name; names the part lacks are left out."""
    old_of = {new: old for old, new in LEGACY_TIMESTAMPS.get(table, {}).items()}
    wanted: dict[str, None] = {}
    for name in columns:
        if name.endswith("*"):
            wanted.update(dict.fromkeys(c for c in present if c.startswith(name[:-1])))
        else:
            wanted.update(dict.fromkeys([name, old_of.get(name, name)]))
    available = set(present)
    return [c for c in wanted if c in available]


def upgrade_legacy(table: str, data: pa.Table) -> pa.Table:
    """A part written before the column-name rule, with its epoch-seconds column renamed and typed."""
    for old, new in LEGACY_TIMESTAMPS.get(table, {}).items():
        if old not in data.column_names:
            continue
        seconds = data.column(old).cast(pa.float64())
        stamps = pc.multiply(seconds, 1e6).cast(pa.int64(), safe=False).cast(TIMESTAMP)
        data = data.remove_column(data.column_names.index(old))
        if new in data.column_names:  # a part with both: the new column where it has a value
            i = data.column_names.index(new)
            stamps = pc.coalesce(data.column(i).cast(TIMESTAMP), stamps)
            data = data.remove_column(i)
        data = data.append_column(pa.field(new, TIMESTAMP), stamps)
    return data


def conform(table: str, data: pa.Table) -> pa.Table:
    """Cast the declared columns of ``data`` to their declared types (a column whose values
    cannot be cast keeps its own type: no data is lost)."""
    types = declared(table)
    for i, field in enumerate(data.schema):
        want = types.get(field.name)
        if want is None or field.type == want:
            continue
        try:
            data = data.set_column(i, pa.field(field.name, want), data.column(i).cast(want))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            pass
    return data
