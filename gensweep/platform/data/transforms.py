"""Bring source images to the target square resolution and channel count.

Resize modes (``S`` = target resolution, image ``h x w``):

* ``pad``: zero-pad centred to a square of side ``max(h, w, S)`` (the extra pixel of an
  odd padding goes to the bottom/right), then bilinear-resize to ``S`` only if that side
  is not ``S``. MNIST 28x28 -> 32 is 2 zero pixels on each side, no interpolation.
* ``resize``: bilinear resize (PIL) straight to ``S x S`` (aspect ratio not kept).
* ``center-crop``: crop the centred ``min(h, w)`` square, then bilinear-resize to ``S``.

Channels: gray -> RGB repeats the plane; RGB -> gray uses PIL's integer ITU-R 601-2
luma (``(19595 R + 38470 G + 7471 B + 32768) >> 16``), identical to ``Image.convert("L")``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

RESIZE_MODES = ("pad", "resize", "center-crop")


@dataclass(frozen=True)
class TargetSpec:
    resolution: int
    channels: int
    resize: str

    def __post_init__(self):
        if self.resolution <= 0:
            raise ValueError(f"resolution must be positive, got {self.resolution}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if self.resize not in _RESIZERS:
            raise ValueError(f"resize must be one of {RESIZE_MODES}, got {self.resize!r}")


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


def bilinear_resize(img: np.ndarray, size: int) -> np.ndarray:
    """PIL bilinear resize of one uint8 HWC image to ``size x size``."""
    from PIL import Image

    if img.shape[0] == size and img.shape[1] == size:
        return img
    if img.shape[-1] == 1:
        out = np.asarray(Image.fromarray(img[..., 0], "L").resize((size, size), Image.Resampling.BILINEAR))
        return out[..., None]
    return np.asarray(Image.fromarray(img, "RGB").resize((size, size), Image.Resampling.BILINEAR))


def _pad_offsets(h: int, w: int, side: int) -> tuple[tuple[int, int], tuple[int, int]]:
    top, left = (side - h) // 2, (side - w) // 2
    return (top, side - h - top), (left, side - w - left)


def _pad(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    side = max(h, w, size)
    rows, cols = _pad_offsets(h, w, side)
    padded = np.pad(img, (rows, cols, (0, 0)), mode="constant", constant_values=0)
    return bilinear_resize(padded, size)


def _center_crop(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    m = min(h, w)
    top, left = (h - m) // 2, (w - m) // 2
    return bilinear_resize(img[top:top + m, left:left + m], size)


_RESIZERS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "pad": _pad,
    "resize": bilinear_resize,
    "center-crop": _center_crop,
}


def transform_image(img: np.ndarray, spec: TargetSpec) -> np.ndarray:
    """One uint8 HWC image -> uint8 ``(S, S, C)``."""
    return _RESIZERS[spec.resize](convert_channels(img, spec.channels), spec.resolution)


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
