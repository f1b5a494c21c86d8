"""The manifest of a prepared dataset and its content fingerprint.

A prepared dataset is a directory (local or S3) holding Parquet shards and a
``manifest.json`` written last: a manifest present means a complete dataset.

The fingerprint identifies the *content* only. It is the SHA-256 of this byte
stream::

    b"gensweep-dataset-v1\\n" + f"{count} {height} {width} {channels}\\n".encode()
    then, for each record in ascending original-index order:
        int64 little-endian label || image bytes (uint8, HWC, C-order)

so it does not depend on shard size, destination, creation time, the order of the
records in the shards or options that do not change pixels/labels.

Record order is layout, not content: :func:`~gensweep.platform.data.prepare.prepare` writes
the records in a seeded global permutation across the shards (``record_order: permuted``,
``permutation_seed``), so the same records laid out with another seed, or in source order by
an older version (``record_order: source``, the default of manifests without the field), keep
the same fingerprint and so the same reference statistics and results identity.
"""
from __future__ import annotations

import hashlib
import json
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from gensweep.platform.storage.uris import (
    StorageOptions,
    exists,
    join_uri,
    read_bytes,
    redact_uri,
    resolve,
    write_bytes_atomic,
)

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 2  # 2: record_order / permutation_seed
_FINGERPRINT_PREFIX = "sha256:"


class DatasetNotFoundError(FileNotFoundError):
    """No (complete) prepared dataset at the location."""


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format_version: int = FORMAT_VERSION
    fingerprint: str
    count: int = Field(ge=0)
    resolution: int = Field(gt=0)
    channels: int
    labels: list[int]
    label_names: dict[int, str] | None = None
    shards: list[str]
    shard_counts: list[int]
    source: str
    created: str
    fraction: float
    seed: int
    resize: str
    #: "permuted": shards hold the records in a seeded permutation (``permutation_seed``);
    #: "source": in ascending source index (datasets prepared before the permutation existed)
    record_order: Literal["source", "permuted"] = "source"
    permutation_seed: int | None = None
    layout: str = "HWC"
    dtype: str = "uint8"
    #: PIL filter of every resize (None: prepared before the filter was recorded, bilinear)
    resize_filter: str | None = None
    #: records left out under ``bad_records: skip``, and the first few of their names
    skipped_records: int = Field(0, ge=0)
    skipped_examples: list[str] = Field(default_factory=list)
    #: files (or archive members) of the source that are not images, and the first few names
    ignored_files: int = Field(0, ge=0)
    ignored_examples: list[str] = Field(default_factory=list)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of the stored bytes."""
        return (self.resolution, self.resolution, self.channels)

    @property
    def chw_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of decoded tensors."""
        return (self.channels, self.resolution, self.resolution)

    @property
    def image_nbytes(self) -> int:
        return self.resolution * self.resolution * self.channels

    def decoded_nbytes(self, workers: int = 1) -> int:
        """Bytes one of ``workers`` equal shards takes once decoded (float32 image + int64 label/index)."""
        per_row = self.image_nbytes * 4 + 16
        return -(-self.count // max(1, workers)) * per_row

    @property
    def layout_key(self) -> tuple[str, int | None]:
        """How the records are laid out over the shards (not part of the fingerprint)."""
        return (self.record_order, self.permutation_seed)

    @property
    def short_fingerprint(self) -> str:
        return short_fingerprint(self.fingerprint)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"


def short_fingerprint(fingerprint: str, length: int = 12) -> str:
    """The first ``length`` hex digits of a ``sha256:...`` fingerprint."""
    digest = fingerprint[len(_FINGERPRINT_PREFIX):] if fingerprint.startswith(_FINGERPRINT_PREFIX) else fingerprint
    if length <= 0 or len(digest) < length:
        raise ValueError(f"cannot shorten fingerprint {fingerprint!r} to {length} digits")
    return digest[:length]


class Fingerprinter:
    """Incremental content hash (see module docstring); feed records in index order."""

    def __init__(self, count: int, height: int, width: int, channels: int):
        self._shape = (height, width, channels)
        self._h = hashlib.sha256()
        self._h.update(b"gensweep-dataset-v1\n")
        self._h.update(f"{count} {height} {width} {channels}\n".encode())
        self._seen = 0
        self._count = count
        self._record = np.dtype([("label", "<i8"), ("pixels", np.uint8, (height * width * channels,))])

    def update(self, images: np.ndarray, labels: np.ndarray) -> None:
        images = np.ascontiguousarray(images, dtype=np.uint8)
        if images.shape[1:] != self._shape:
            raise ValueError(f"image shape {images.shape[1:]} != {self._shape}")
        n = images.shape[0]
        if labels.shape != (n,):
            raise ValueError(f"labels shape {labels.shape} != ({n},)")
        records = np.empty(n, dtype=self._record)
        records["label"] = labels
        records["pixels"] = images.reshape(n, -1)
        self._h.update(records.tobytes())
        self._seen += n

    def hexdigest(self) -> str:
        if self._seen != self._count:
            raise ValueError(f"fingerprinted {self._seen} records, expected {self._count}")
        return _FINGERPRINT_PREFIX + self._h.hexdigest()


def manifest_path(fs, root: str) -> str:
    return f"{root.rstrip('/')}/{MANIFEST_NAME}"


def try_load_manifest_at(fs, root: str) -> Manifest | None:
    path = manifest_path(fs, root)
    if not exists(fs, path):
        return None
    return Manifest.model_validate_json(read_bytes(fs, path))


def write_manifest_at(fs, root: str, manifest: Manifest) -> None:
    write_bytes_atomic(fs, manifest_path(fs, root), manifest.to_json().encode())


def load_manifest(uri: str, storage: StorageOptions | None = None) -> Manifest:
    """Read ``manifest.json`` of the prepared dataset at ``uri``."""
    fs, root = resolve(uri, storage)
    manifest = try_load_manifest_at(fs, root)
    if manifest is None:
        raise DatasetNotFoundError(
            f"no prepared dataset at {redact_uri(uri)!r}: {MANIFEST_NAME} is missing "
            f"(run gensweep's prepare first, or the preparation did not finish)"
        )
    return manifest


def shard_uris(uri: str, manifest: Manifest) -> list[str]:
    return [join_uri(uri, name) for name in manifest.shards]
