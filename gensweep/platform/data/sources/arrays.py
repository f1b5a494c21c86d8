"""``.npz`` and ``.npy`` files, local or ``s3://``: arrays under ``x``/``images`` (and ``y``/``labels``),
or images only. A local ``.npy`` stays memory-mapped; an object in a bucket is read into memory."""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np

from gensweep.platform.data.sources.base import (
    ArraySource,
    Source,
    SourceError,
    as_labels,
    as_uint8_images,
    source_file,
)
from gensweep.platform.storage.uris import StorageOptions
from gensweep.platform.data.sources.registry import register_source

_NPZ_IMAGE_KEYS = ("x", "images")
_NPZ_LABEL_KEYS = ("y", "labels")


def _first_key(keys: Sequence[str], wanted: Sequence[str]) -> str | None:
    return next((k for k in wanted if k in keys), None)


def _load(f, name: str, **kwargs):
    """``np.load`` whose failures (empty, truncated or foreign files, pickled objects) are a SourceError."""
    try:
        return np.load(f, allow_pickle=False, **kwargs)
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        raise SourceError(f"{name}: not a readable NumPy file ({type(exc).__name__}: {exc})") from None


def _npz_source(path: str, storage: StorageOptions) -> Source:
    f, name = source_file(path, "npz", storage)
    data = _load(f, name)
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise SourceError(f"{name}: a .npy array, not an .npz archive (use the npy: kind)")
    with data:
        keys = list(data.keys())
        image_key = _first_key(keys, _NPZ_IMAGE_KEYS)
        if image_key is None:
            raise SourceError(f"{name}: no image array under keys {_NPZ_IMAGE_KEYS}; found {keys}")
        try:
            images = as_uint8_images(data[image_key], name)
            label_key = _first_key(keys, _NPZ_LABEL_KEYS)
            labels = as_labels(data[label_key] if label_key else None, images.shape[0], name)
        except (OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
            if isinstance(exc, SourceError):
                raise
            raise SourceError(f"{name}: an array cannot be read ({type(exc).__name__}: {exc})") from None
    return ArraySource(images, labels, f"npz:{name}")


def _npy_source(path: str, storage: StorageOptions) -> Source:
    f, name = source_file(path, "npy", storage)
    arr = _load(f, name, mmap_mode="r" if isinstance(f, Path) else None)
    if not isinstance(arr, np.ndarray):
        raise SourceError(f"{name}: an .npz archive, not a .npy array (use the npz: kind)")
    images = as_uint8_images(arr, name)  # a local uint8 file stays memory-mapped
    return ArraySource(images, as_labels(None, images.shape[0], name), f"npy:{name}")


register_source("npz", _npz_source, suffixes=(".npz",))
register_source("npy", _npy_source, suffixes=(".npy",))
