"""What every image source is: a finite, indexable collection of labelled uint8 images."""
from __future__ import annotations

import io
from abc import ABC, abstractmethod
from pathlib import Path
from typing import BinaryIO

import numpy as np

from gensweep.platform.storage.uris import StorageOptions, fsspec_filesystem, is_local, redact_uri

UNLABELED = -1


class SourceError(ValueError):
    """The source cannot be read as asked."""


class Source(ABC):
    """A finite, indexable collection of labelled images."""

    #: human-readable origin stored in the manifest (never holds credentials)
    description: str
    #: int64 label per image (UNLABELED = -1 when there is none)
    labels: np.ndarray
    #: optional {label: name}
    label_names: dict[int, str] | None = None
    #: files or members found but not read (not images), as relative names; prepare reports them
    ignored: list[str] = []

    @property
    def count(self) -> int:
        return int(self.labels.shape[0])

    @property
    @abstractmethod
    def native_channels(self) -> int:
        """1 if every image is single-channel, else 3."""

    @property
    @abstractmethod
    def native_shape(self) -> tuple[int, int] | None:
        """(H, W) if all images share it, else None."""

    @abstractmethod
    def load(self, indices: np.ndarray) -> np.ndarray | list[np.ndarray]:
        """Images at ``indices`` as uint8 HWC: one array (N,H,W,C) or a list of (H,W,C)."""


def as_uint8_images(arr: np.ndarray, what: str) -> np.ndarray:
    """Validate NHW / NHWC (C in 1, 3) arrays of 0..255 integers; return NHWC uint8."""
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4 or arr.shape[-1] not in (1, 3):
        raise SourceError(
            f"{what}: expected images shaped (N, H, W) or (N, H, W, C) with C in (1, 3), "
            f"got {arr.shape} (channels-first arrays must be transposed to NHWC)"
        )
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype.kind not in "iuf":
        raise SourceError(f"{what}: unsupported image dtype {arr.dtype}")
    values = np.asarray(arr)
    if values.size and (values.min() < 0 or values.max() > 255 or not np.all(np.mod(values, 1) == 0)):
        raise SourceError(f"{what}: dtype {arr.dtype} holds values that are not integers in 0..255")
    return values.astype(np.uint8)


def as_labels(y: np.ndarray | None, n: int, what: str) -> np.ndarray:
    if y is None:
        return np.full(n, UNLABELED, dtype=np.int64)
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise SourceError(f"{what}: labels shaped {y.shape}, expected ({n},)")
    if y.dtype.kind not in "iu" and not (y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0)):
        raise SourceError(f"{what}: labels must be integers, got dtype {y.dtype}")
    if y.size and y.min() < UNLABELED:
        raise SourceError(f"{what}: labels must be class indices >= 0 (or {UNLABELED}: unlabeled), found {y.min()}")
    return y.astype(np.int64)


class ArraySource(Source):
    """Images already in memory (or memory-mapped) as an NHWC uint8 array."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, description: str,
                 label_names: dict[int, str] | None = None):
        self.images = images
        self.labels = labels
        self.description = description
        self.label_names = label_names

    @property
    def native_channels(self) -> int:
        return int(self.images.shape[-1])

    @property
    def native_shape(self) -> tuple[int, int]:
        return (int(self.images.shape[1]), int(self.images.shape[2]))

    def load(self, indices: np.ndarray) -> np.ndarray:
        return np.asarray(self.images[np.asarray(indices)], dtype=np.uint8)


def existing_file(path: str, kind: str) -> Path:
    p = Path(path[len("file://"):] if path.startswith("file://") else path).expanduser().resolve()
    if not p.is_file():
        raise SourceError(f"{kind} source {path!r} is not an existing file")
    return p


def source_file(spec: str, kind: str, storage: StorageOptions) -> tuple[Path | BinaryIO, str]:
    """A local file as its resolved path (memory-mappable), or an ``s3://`` object read into memory,
    with the name the manifest records for it (never credentials)."""
    if is_local(spec):
        p = existing_file(spec, kind)
        return p, str(p)
    fs, path = fsspec_filesystem(spec, storage)
    try:
        data = fs.cat_file(path)
    except FileNotFoundError:
        raise SourceError(f"{kind} source {redact_uri(spec)!r} is not an existing object") from None
    return io.BytesIO(data), redact_uri(spec)


def source_location(spec: str, kind: str, storage: StorageOptions) -> tuple[object, str, str]:
    """``(fsspec filesystem, path, name for messages)`` of an existing local or ``s3://`` file or folder."""
    import os

    fs, path = fsspec_filesystem(spec, storage)
    if is_local(spec):
        path = os.path.realpath(path)
        name = path
    else:
        name = redact_uri(spec)
    try:
        found = fs.exists(path)
    except OSError as exc:
        raise SourceError(f"{kind} source {name!r} cannot be reached: {exc}") from None
    if not found:
        raise SourceError(f"{kind} source {name!r} does not exist")
    return fs, path, name
