"""Bring source images to the target square resolution and channel count.

Resize modes (``S`` = target resolution, image ``h x w``):

* ``pad``: zero-pad centred to a square of side ``max(h, w, S)`` (the extra pixel of an
  odd padding goes to the bottom/right), then resize to ``S`` only if that side is not
  ``S``. MNIST 28x28 -> 32 is 2 zero pixels on each side, no interpolation.
* ``stretch`` (``resize`` is its older name): resize straight to ``S x S`` (aspect ratio not kept).
* ``center-crop``: crop the centred ``min(h, w)`` square, then resize to ``S``.

Every resize uses the named PIL filter (``RESIZE_FILTERS``); the default is bicubic, which PIL
applies with antialiasing when it shrinks (its support widens with the scale), as clean-fid
(Parmar et al. 2022) recommends over the aliased resizes of most tensor libraries.

Channels: gray -> RGB repeats the plane; RGB -> gray uses PIL's integer ITU-R 601-2
luma (``(19595 R + 38470 G + 7471 B + 32768) >> 16``), identical to ``Image.convert("L")``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

RESIZE_MODES = ("pad", "stretch", "center-crop")
RESIZE_ALIASES = {"resize": "stretch"}  # older names still accepted
RESIZE_FILTERS = ("bicubic", "bilinear", "lanczos", "box", "hamming", "nearest")
DEFAULT_FILTER = "bicubic"


def resize_mode(name: str) -> str:
    """The resize mode ``name`` stands for (an older alias maps to its current name)."""
    mode = RESIZE_ALIASES.get(name, name)
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {RESIZE_MODES}, got {name!r}")
    return mode


@dataclass(frozen=True)
class TargetSpec:
    resolution: int
    channels: int
    resize: str
    filter: str = DEFAULT_FILTER

    def __post_init__(self):
        object.__setattr__(self, "resize", resize_mode(self.resize))
        if self.filter not in RESIZE_FILTERS:
            raise ValueError(f"resize filter must be one of {RESIZE_FILTERS}, got {self.filter!r}")
        if self.resolution <= 0:
            raise ValueError(f"resolution must be positive, got {self.resolution}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")


def _gray_to_rgb(img: np.ndarray) -> np.ndarray:
    return np.repeat(img, 3, axis=-1)


def _rgb_to_gray(img: np.ndarray) -> np.ndarray:
    rgb = img.astype(np.uint32)
    luma = (rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000) >> 16
    return luma.astype(np.uint8)[..., None]


def _same(img: np.ndarray) -> np.ndarray:
    return img


# (from channels, to channels) -> converter; works on HWC and NHWC alike
_CHANNEL_CONVERTERS: dict[tuple[int, int], Callable[[np.ndarray], np.ndarray]] = {
    (1, 1): _same,
    (3, 3): _same,
    (1, 3): _gray_to_rgb,
    (3, 1): _rgb_to_gray,
}


def convert_channels(img: np.ndarray, channels: int) -> np.ndarray:
    try:
        return _CHANNEL_CONVERTERS[(int(img.shape[-1]), channels)](img)
    except KeyError:
        raise ValueError(f"cannot convert {img.shape[-1]} channels to {channels}") from None


def square_resize(img: np.ndarray, size: int, filter: str = DEFAULT_FILTER) -> np.ndarray:
    """PIL resize of one uint8 HWC image to ``size x size`` with the named filter."""
    from PIL import Image

    if img.shape[0] == size and img.shape[1] == size:
        return img
    resample = Image.Resampling[filter.upper()]
    if img.shape[-1] == 1:
        return np.asarray(Image.fromarray(img[..., 0], "L").resize((size, size), resample))[..., None]
    return np.asarray(Image.fromarray(img, "RGB").resize((size, size), resample))


def _pad_offsets(h: int, w: int, side: int) -> tuple[tuple[int, int], tuple[int, int]]:
    top, left = (side - h) // 2, (side - w) // 2
    return (top, side - h - top), (left, side - w - left)


def _pad(img: np.ndarray, size: int, filter: str) -> np.ndarray:
    h, w = img.shape[:2]
    side = max(h, w, size)
    rows, cols = _pad_offsets(h, w, side)
    padded = np.pad(img, (rows, cols, (0, 0)), mode="constant", constant_values=0)
    return square_resize(padded, size, filter)


def _center_crop(img: np.ndarray, size: int, filter: str) -> np.ndarray:
    h, w = img.shape[:2]
    m = min(h, w)
    top, left = (h - m) // 2, (w - m) // 2
    return square_resize(img[top:top + m, left:left + m], size, filter)


_RESIZERS: dict[str, Callable[[np.ndarray, int, str], np.ndarray]] = {
    "pad": _pad,
    "stretch": square_resize,
    "center-crop": _center_crop,
}


def transform_image(img: np.ndarray, spec: TargetSpec) -> np.ndarray:
    """One uint8 HWC image -> uint8 ``(S, S, C)``."""
    return _RESIZERS[spec.resize](convert_channels(img, spec.channels), spec.resolution, spec.filter)


def transform_images(images: np.ndarray | Sequence[np.ndarray], spec: TargetSpec) -> np.ndarray:
    """uint8 NHWC array (or list of HWC arrays) -> contiguous uint8 ``(N, S, S, C)``."""
    s = spec.resolution
    if isinstance(images, np.ndarray) and images.ndim == 4:
        batch = convert_channels(images, spec.channels)
        n, h, w, c = batch.shape
        if (h, w) == (s, s):
            return np.ascontiguousarray(batch, dtype=np.uint8)
        if spec.resize == "pad" and h <= s and w <= s:  # vectorised: pure zero padding
            rows, cols = _pad_offsets(h, w, s)
            return np.pad(batch, ((0, 0), rows, cols, (0, 0)), mode="constant", constant_values=0)
        images = list(batch)
    out = np.empty((len(images), s, s, spec.channels), dtype=np.uint8)
    for i, img in enumerate(images):
        out[i] = transform_image(img, spec)
    return out
