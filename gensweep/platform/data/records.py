"""Record layout of the Parquet shards, validation of records and Ray-free reading.

Each shard row is ``image`` (binary: raw uint8 HWC bytes, C-order), ``label`` (int64)
and ``index`` (int64, position in the source). A record is *bad* when its image is
null, its byte length is not ``H*W*C`` from the manifest, or its label is null.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gensweep.platform.data.manifest import Manifest, load_manifest
from gensweep.platform.storage.uris import StorageOptions, resolve

IMAGE, LABEL, INDEX = "image", "label", "index"
COLUMNS = [IMAGE, LABEL, INDEX]
SCHEMA = pa.schema([(IMAGE, pa.binary()), (LABEL, pa.int64()), (INDEX, pa.int64())])
_MAX_BINARY_BYTES = 2**31 - 1  # int32 offsets of pa.binary()


@dataclass(frozen=True)
class BadRecord:
    shard: str | None
    row: int | None
    index: int | None
    reason: str

    def where(self) -> str:
        parts = [f"shard {self.shard}" if self.shard else "shard <unknown>",
                 f"row {self.row}" if self.row is not None else "row <unknown>"]
        if self.index is not None:
            parts.append(f"index {self.index}")
        return ", ".join(parts)

    def __str__(self) -> str:
        return f"{self.where()}: {self.reason}"


class BadRecordError(ValueError):
    """A record of a prepared dataset cannot be decoded (policy ``fail``)."""

    def __init__(self, record: BadRecord, total_bad: int = 1):
        self.record = record
        more = f" ({total_bad - 1} more bad record(s) in the same batch)" if total_bad > 1 else ""
        super().__init__(f"bad record in {record}{more}")


def records_table(images: np.ndarray, labels: np.ndarray, indices: np.ndarray) -> pa.Table:
    """Zero-copy Arrow table of uint8 NHWC images with their labels and indices."""
    images = np.ascontiguousarray(images, dtype=np.uint8)
    n = images.shape[0]
    per = int(np.prod(images.shape[1:]))
    if n * per > _MAX_BINARY_BYTES:
        raise ValueError(f"{n} images of {per} bytes exceed 2 GiB in one shard; use fewer shard_rows")
    offsets = np.arange(n + 1, dtype=np.int32) * np.int32(per)
    image_arr = pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(images)])
    return pa.Table.from_arrays(
        [image_arr, pa.array(np.asarray(labels, dtype=np.int64)), pa.array(np.asarray(indices, dtype=np.int64))],
        schema=SCHEMA,
    )


def to_unit_float_chw(images: np.ndarray) -> np.ndarray:
    """uint8 NHWC -> float32 NCHW in [-1, 1] as ``x / 127.5 - 1``."""
    x = np.ascontiguousarray(images.transpose(0, 3, 1, 2)).astype(np.float32)
    x /= np.float32(127.5)
    x -= np.float32(1.0)
    return x


def check_numpy_batch(images: np.ndarray, labels: np.ndarray, nbytes: int) -> tuple[np.ndarray, list[str | None]]:
    """Validate a numpy batch (``images``: object array of bytes/None).

    Returns ``(ok_mask, reasons)`` with ``reasons[i]`` None for good rows.
    """
    reasons: list[str | None] = []
    for img in images:
        if img is None:
            reasons.append("image is null")
        elif len(img) != nbytes:
            reasons.append(f"image has {len(img)} bytes, expected {nbytes}")
        else:
            reasons.append(None)
    labels = np.asarray(labels)
    if labels.dtype.kind == "f":  # Arrow int64 with nulls arrives as float64 with NaN
        for i in np.flatnonzero(np.isnan(labels)):
            reasons[i] = reasons[i] or "label is null"
    elif labels.dtype == object:
        for i, v in enumerate(labels):
            if v is None:
                reasons[i] = reasons[i] or "label is null"
    ok = np.array([r is None for r in reasons], dtype=bool)
    return ok, reasons


def stack_image_bytes(images: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Object array of equal-length bytes -> uint8 ``(N, H, W, C)``."""
    n = len(images)
    if n == 0:
        return np.empty((0, *shape), dtype=np.uint8)
    return np.frombuffer(b"".join(images), dtype=np.uint8).reshape(n, *shape)


def _table_bad_rows(table: pa.Table, nbytes: int, shard: str) -> list[BadRecord]:
    image = table.column(IMAGE)
    lengths = pc.binary_length(image).to_numpy(zero_copy_only=False)
    image_null = image.is_null().to_numpy(zero_copy_only=False)
    label_null = table.column(LABEL).is_null().to_numpy(zero_copy_only=False)
    index = table.column(INDEX).to_numpy(zero_copy_only=False)
    bad = []
    for row in np.flatnonzero(image_null | label_null | (np.nan_to_num(lengths, nan=-1) != nbytes)):
        idx = None if index[row] is None or (isinstance(index[row], float) and np.isnan(index[row])) else int(index[row])
        if image_null[row]:
            reason = "image is null"
        elif lengths[row] != nbytes:
            reason = f"image has {int(lengths[row])} bytes, expected {nbytes}"
        else:
            reason = "label is null"
        bad.append(BadRecord(shard, int(row), idx, reason))
    return bad


def _shard_tables(uri: str, storage: StorageOptions | None, manifest: Manifest, columns=COLUMNS):
    fs, root = resolve(uri, storage)
    for name in manifest.shards:
        yield name, pq.read_table(f"{root.rstrip('/')}/{name}", filesystem=fs, columns=columns)


def _index_order_slots(uri: str, storage: StorageOptions | None, manifest: Manifest) -> np.ndarray:
    """For each stored row (shards in manifest order), its position in ascending-index order."""
    if manifest.record_order == "source":
        return np.arange(manifest.count)
    stored = [t.column(INDEX).to_numpy() for _, t in _shard_tables(uri, storage, manifest, columns=[INDEX])]
    stored_index = np.concatenate(stored) if stored else np.zeros(0, np.int64)
    slots = np.empty(len(stored_index), dtype=np.int64)
    slots[np.argsort(stored_index, kind="stable")] = np.arange(len(stored_index))
    return slots


def count_bad_records(uri: str, storage: StorageOptions | None = None) -> list[BadRecord]:
    """Scan every shard (pyarrow, no Ray) and list its bad records with shard and row.

    This is the authoritative, deterministic count of what ``open_dataset(...,
    bad_records="skip")`` drops on every pass over the data.
    """
    manifest = load_manifest(uri, storage)
    bad: list[BadRecord] = []
    for name, table in _shard_tables(uri, storage, manifest):
        bad.extend(_table_bad_rows(table, manifest.image_nbytes, name))
    return bad


def read_arrays(uri: str, storage: StorageOptions | None = None, limit: int | None = None,
                *, return_index: bool = False):
    """Read a prepared dataset without Ray: ``(images uint8 (N,H,W,C), labels int64 (N,))``.

    Records come in ascending source-index order, whatever order the shards hold them in;
    ``limit`` keeps the first ``limit`` of that order (a permuted dataset reads every shard's
    small index column first, then only the rows it keeps). Any bad record among those read
    raises :class:`BadRecordError`. With ``return_index=True`` a third array holds the original
    indices.
    """
    manifest = load_manifest(uri, storage)
    want = manifest.count if limit is None else min(limit, manifest.count)
    slots = _index_order_slots(uri, storage, manifest)
    images = np.empty((want, *manifest.image_shape), dtype=np.uint8)
    labels = np.empty(want, dtype=np.int64)
    indices = np.empty(want, dtype=np.int64)
    filled, start = 0, 0
    fs, root = resolve(uri, storage)
    for name, stored in zip(manifest.shards, manifest.shard_counts):
        shard_slots = slots[start:start + stored]
        start += stored
        rows = np.flatnonzero(shard_slots < want)
        if rows.size == 0:
            continue
        table = pq.read_table(f"{root.rstrip('/')}/{name}", filesystem=fs, columns=COLUMNS).take(rows)
        bad = [BadRecord(b.shard, int(rows[b.row]), b.index, b.reason)  # row within the shard, not the selection
               for b in _table_bad_rows(table, manifest.image_nbytes, name)]
        if bad:
            raise BadRecordError(bad[0], len(bad))
        at = shard_slots[rows]
        col = table.column(IMAGE).combine_chunks()
        offsets = np.frombuffer(col.buffers()[1], dtype=np.int32)[col.offset: col.offset + len(rows) + 1]
        data = np.frombuffer(col.buffers()[2], dtype=np.uint8)
        images[at] = data[offsets[0]:offsets[-1]].reshape(len(rows), *manifest.image_shape)
        labels[at] = table.column(LABEL).to_numpy()
        indices[at] = table.column(INDEX).to_numpy()
        filled += len(rows)
    if filled != want or start != len(slots):
        raise ValueError(f"{uri}: shards hold {len(slots)} records, the manifest says {manifest.count}")
    return (images, labels, indices) if return_index else (images, labels)
