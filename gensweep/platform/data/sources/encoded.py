"""Sources of encoded images (PNG/JPEG bytes): an image folder, WebDataset shards, a Hugging Face
image column. Headers are read once when the source opens (channels, common size); pixels are
decoded when loaded. A record that cannot be read is remembered and raised as a
:class:`~gensweep.platform.data.sources.decode.RecordError` when it is loaded."""
from __future__ import annotations

from abc import abstractmethod

import numpy as np

from gensweep.platform.data.sources.base import Source, SourceError
from gensweep.platform.data.sources.decode import GRAY_MODES, RecordError, decode_image, image_header

HEADER_BYTES = 64 * 1024  # PNG: the first 33 bytes; JPEG: up to the frame header, after any EXIF
FETCH_BATCH = 256  # records requested at once


class EncodedSource(Source):
    """Subclasses set ``names`` (one per record, as errors and manifests show it), ``labels`` and
    ``description``, implement :meth:`_read`, then call :meth:`_scan_headers`."""

    names: list[str]

    @abstractmethod
    def _read(self, indices: list[int], head: int | None) -> list[bytes | Exception]:
        """The encoded bytes of the records (their first ``head`` bytes, or all), or the error of each."""

    def _scan_headers(self) -> None:
        self._bad: dict[int, str] = {}
        modes, sizes = set(), set()
        for start in range(0, self.count, FETCH_BATCH):
            batch = list(range(start, min(start + FETCH_BATCH, self.count)))
            for i, head in zip(batch, self._read(batch, HEADER_BYTES)):
                try:
                    mode, size = self._header(i, head)
                except RecordError as exc:
                    self._bad[i] = exc.reason
                    continue
                modes.add(mode)
                sizes.add(size)
        if not modes:
            raise SourceError(f"{self.description}: none of its {self.count} images can be read "
                              f"(first: {self.names[min(self._bad)]!r}: {self._bad[min(self._bad)]})")
        self._channels = 1 if modes <= GRAY_MODES else 3
        self._shape = sizes.pop() if len(sizes) == 1 else None

    def _header(self, i: int, head: bytes | Exception):
        if isinstance(head, Exception):
            raise RecordError(self.names[i], str(head))
        try:
            return image_header(head, self.names[i])
        except RecordError:  # the header lies further in (e.g. after a long EXIF block): read it all
            whole = self._read([i], None)[0]
            if isinstance(whole, Exception):
                raise RecordError(self.names[i], str(whole)) from None
            return image_header(whole, self.names[i])

    @property
    def native_channels(self) -> int:
        return self._channels

    @property
    def native_shape(self) -> tuple[int, int] | None:
        return self._shape

    def load(self, indices: np.ndarray) -> list[np.ndarray]:
        wanted = [int(i) for i in np.asarray(indices)]
        out: list[np.ndarray] = []
        for start in range(0, len(wanted), FETCH_BATCH):
            batch = wanted[start:start + FETCH_BATCH]
            for i, blob in zip(batch, self._read(batch, None)):
                if i in self._bad:
                    raise RecordError(self.names[i], self._bad[i])
                if isinstance(blob, Exception):
                    raise RecordError(self.names[i], str(blob))
                out.append(decode_image(blob, self.names[i], self._channels))
        return out


class RangeSource(EncodedSource):
    """Records that are byte ranges ``(path, start, end)`` of files of an fsspec filesystem (``end``
    None: to the end of the file), requested together (a bucket answers many requests at once)."""

    def __init__(self, fs, ranges: list[tuple[str, int, int | None]]):
        self.fs, self.ranges = fs, ranges

    def _read(self, indices: list[int], head: int | None) -> list[bytes | Exception]:
        paths = [self.ranges[i][0] for i in indices]
        starts = [self.ranges[i][1] for i in indices]
        ends = [_end(self.ranges[i], head) for i in indices]
        return self.fs.cat_ranges(paths, starts, ends, on_error="return")


def _end(rng: tuple[str, int, int | None], head: int | None) -> int | None:
    _, start, end = rng
    if head is None:
        return end
    return start + head if end is None else min(end, start + head)
