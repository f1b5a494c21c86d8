"""One encoded image (PNG, JPEG, ...) to uint8 HWC pixels, and its header, with clean errors.

16-bit images (PIL modes ``I;16*`` and ``I``, as PNG's 16-bit grayscale opens) are scaled to
8 bits (``round(v / 257)``: 65535 -> 255), never clipped at 255. An image that cannot be read
raises :class:`RecordError` naming the record, which :func:`~gensweep.platform.data.prepare.prepare`
either reports (``bad_records: fail``) or skips and counts (``bad_records: skip``).
"""
from __future__ import annotations

import io
import warnings

import numpy as np

from gensweep.platform.data.sources.base import SourceError

# PIL modes that are single-channel; everything else is converted to RGB.
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})
_WIDE_MODES = frozenset({"I", "I;16", "I;16B", "I;16L"})  # integer pixels up to 16 bits
_WIDE_MAX = 65535


class RecordError(SourceError):
    """One record (image) of a source cannot be read; ``name`` says which."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"cannot read image {name!r}: {reason}")
        self.name, self.reason = name, reason


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _open(blob: bytes, name: str):
    from PIL import Image

    if not blob:
        raise RecordError(name, "empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(blob))
    except Exception as exc:  # noqa: BLE001 - any decoder failure is this record's problem
        raise RecordError(name, _reason(exc)) from None


def image_header(blob: bytes, name: str) -> tuple[str, tuple[int, int]]:
    """``(PIL mode, (height, width))`` from the first bytes of an encoded image."""
    with _open(blob, name) as im:
        return im.mode, (im.height, im.width)


def decode_image(blob: bytes, name: str, channels: int) -> np.ndarray:
    """The whole image as uint8 ``(H, W, channels)``; 16-bit pixels scaled to 8 bits."""
    try:
        with _open(blob, name) as im:
            if im.mode in _WIDE_MODES:
                wide = np.asarray(im, dtype=np.int64)
                arr = np.round(np.clip(wide, 0, _WIDE_MAX) * (255.0 / _WIDE_MAX)).astype(np.uint8)
                arr = arr[..., None] if channels == 1 else np.repeat(arr[..., None], 3, axis=-1)
            else:
                arr = np.asarray(im.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    except RecordError:
        raise
    except Exception as exc:  # noqa: BLE001 - truncated data, bad chunks, decompression bombs
        raise RecordError(name, _reason(exc)) from None
    return arr[..., None] if arr.ndim == 2 else arr
