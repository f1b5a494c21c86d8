"""``.npz`` and ``.npy`` files: arrays under ``x``/``images`` (and ``y``/``labels``), or images only."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from gensweep.platform.data.sources.base import ArraySource, Source, SourceError, as_labels, as_uint8_images, existing_file
from gensweep.platform.data.sources.registry import register_source

_NPZ_IMAGE_KEYS = ("x", "images")
_NPZ_LABEL_KEYS = ("y", "labels")


def _first_key(keys: Sequence[str], wanted: Sequence[str]) -> str | None:
    return next((k for k in wanted if k in keys), None)


def _npz_source(path: str) -> Source:
    p = existing_file(path, "npz")
    with np.load(p, allow_pickle=False) as data:
        keys = list(data.keys())
        image_key = _first_key(keys, _NPZ_IMAGE_KEYS)
        if image_key is None:
            raise SourceError(f"{p}: no image array under keys {_NPZ_IMAGE_KEYS}; found {keys}")
        images = as_uint8_images(data[image_key], str(p))
        label_key = _first_key(keys, _NPZ_LABEL_KEYS)
        labels = as_labels(data[label_key] if label_key else None, images.shape[0], str(p))
    return ArraySource(images, labels, f"npz:{p}")


def _npy_source(path: str) -> Source:
    p = existing_file(path, "npy")
    arr = np.load(p, mmap_mode="r", allow_pickle=False)
    images = as_uint8_images(arr, str(p))  # uint8 stays memory-mapped
    return ArraySource(images, as_labels(None, images.shape[0], str(p)), f"npy:{p}")


register_source("npz", _npz_source, suffixes=(".npz",))
register_source("npy", _npy_source, suffixes=(".npy",))
