"""Table definitions of the results store: required columns, row keys, value normalisation.

Rows are plain dicts.  Each table names a few required columns (validated on write,
a missing one raises :class:`SchemaError` naming it) and how the deterministic
``row_key`` of a row is built; every other column passes through unchanged, so new
metrics or config keys need no schema change.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import numbers
from dataclasses import dataclass
from collections.abc import Mapping
from typing import Any, Callable, Iterable
from urllib.parse import quote

from .status import TrialStatus

ROW_KEY = "row_key"
WRITTEN_AT = "written_at"
EXPERIMENT = "experiment"
CONFIG_PREFIX = "config/"
# True on a metrics row made by re-scoring a stored checkpoint (``gensweep eval``), not by the
# training loop; such rows may use another backbone or N, so leaderboards leave them out.
REEVAL = "reeval"
# A metrics row of one sampling-time setting (``sampling``: its tag; ``sampling/<field>``: its values),
# written beside the report's own row, which holds the setting the trial chose; leaderboards leave it out.
SAMPLING = "sampling"
SAMPLING_ROW = "sampling_row"


class SchemaError(ValueError):
    """A row does not satisfy its table's required columns."""


def _key_part(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)  # step 3 and 3.0 are the same row
    return quote(str(value), safe="-_.:=+@")


def make_row_key(*parts: Any) -> str:
    """Unambiguous, readable key: URL-quoted parts joined by ``/``."""
    return "/".join(_key_part(p) for p in parts)


@dataclass(frozen=True)
class TableSpec:
    name: str
    required: tuple[str, ...]
    key_columns: tuple[str, ...]
    # Extra check on a row (after required columns are known present); raise SchemaError.
    check: Callable[[Mapping[str, Any], int], None] | None = None

    def row_key(self, row: Mapping[str, Any]) -> str:
        return make_row_key(*(row.get(c) for c in self.key_columns))


def _check_trial(row: Mapping[str, Any], index: int) -> None:
    status = row.get("status")
    if status not in TrialStatus.values():
        raise SchemaError(
            f"trials row {index}: column 'status' is {status!r}, expected one of {TrialStatus.values()}"
        )


TABLES: dict[str, TableSpec] = {
    "experiments": TableSpec("experiments", ("experiment",), ("experiment",)),
    "trials": TableSpec(
        "trials", ("experiment", "trial_id", "status"), ("experiment", "trial_id"), _check_trial
    ),
    "metrics": TableSpec(
        "metrics", ("experiment", "trial_id", "step"), ("experiment", "trial_id", "step")
    ),
    "artifacts": TableSpec(
        "artifacts",
        ("experiment", "trial_id", "kind", "uri"),
        ("experiment", "trial_id", "kind", "step", "uri"),
    ),
    # one row per PBT exploit: the trial continued from ``donor_trial_id``'s checkpoint at ``step``
    "lineage": TableSpec(
        "lineage",
        ("experiment", "trial_id", "step", "donor_trial_id"),
        ("experiment", "trial_id", "step", "donor_trial_id"),
    ),
}


def table_spec(table: str) -> TableSpec:
    try:
        return TABLES[table]
    except KeyError:
        raise ValueError(f"unknown results table {table!r}; known tables: {sorted(TABLES)}") from None


def to_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=_json_default)


def _json_default(value: Any) -> Any:
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        try:
            return item()
        except Exception:  # noqa: BLE001 - arrays with >1 element etc.
            pass
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    return repr(value)


_PLAIN = frozenset({bool, str, int, float})


def is_scalar(value: Any) -> bool:
    """A value a metrics column holds as it is: a string, bool or real number (numpy's included)."""
    if type(value) in _PLAIN:
        return True
    return isinstance(value, (str, bool, numbers.Number)) and not isinstance(value, complex)


def normalize_value(value: Any) -> Any:
    """Map a Python value onto something a Parquet column holds.

    Scalars stay, numpy scalars become Python scalars, datetimes become UTC-aware,
    containers become JSON strings, anything else its ``str``.
    """
    if value is None or type(value) in _PLAIN:  # the common case, without the ABC checks below
        return value
    if isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return value.astimezone(_dt.timezone.utc)
    if isinstance(value, (Mapping, list, tuple, set, frozenset)):
        return to_json(value)
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == ():
        return normalize_value(item())
    if isinstance(value, bytes):
        return value
    return str(value)


def normalize_rows(table: str, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validate required columns, normalise values and fill in ``row_key``.

    A ``config`` mapping is stored as JSON and also flattened into ``config/...``
    columns (explicit ones win).  A caller-given ``row_key`` is kept.  Raises :class:`SchemaError` naming the
    first missing column.
    """
    spec = table_spec(table)
    out: list[dict[str, Any]] = []
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise SchemaError(f"{table} row {index} is a {type(row).__name__}, expected a mapping")
        for column in spec.required:
            if row.get(column) is None or (isinstance(row.get(column), str) and row.get(column) == ""):
                raise SchemaError(
                    f"{table} row {index} is missing required column {column!r} "
                    f"(required: {', '.join(spec.required)})"
                )
        if spec.check is not None:
            spec.check(row, index)
        clean = {str(k): normalize_value(v) for k, v in row.items() if k != WRITTEN_AT}
        config = row.get("config")
        if isinstance(config, Mapping):  # JSON in "config" plus flat "config/..." columns
            for key, value in flatten_config(config).items():
                clean.setdefault(key, value)
        if clean.get(ROW_KEY) is None:
            clean[ROW_KEY] = spec.row_key(clean)
        out.append(clean)
    return out


def flatten(
    mapping: Mapping[str, Any], prefix: str = "", sep: str = "/"
) -> dict[str, Any]:
    """Flatten nested mappings into ``prefix + "a/b/c"`` keys; leaves stay as they are."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, prefix=name + sep, sep=sep))
        else:
            flat[name] = value
    return flat


def flatten_config(config: Mapping[str, Any], prefix: str = CONFIG_PREFIX) -> dict[str, Any]:
    """``{"opt": {"lr": 1e-3}, "arch": "dcgan"}`` -> ``{"config/opt/lr": 1e-3, "config/arch": "dcgan"}``.

    Leaves that are not scalars (lists, objects) become JSON / ``str`` values.
    """
    return {k: normalize_value(v) for k, v in flatten(config, prefix=prefix).items()}
