"""An image folder (PNG/JPEG), local or ``s3://bucket/prefix``; first-level class subfolders become
labels (sorted, stable).

Both are read through fsspec (:func:`~gensweep.platform.storage.uris.fsspec_filesystem`), so the
same relative paths give the same labels, records and fingerprint wherever the folder lives. Image
headers are read from each file's first bytes (the whole file only when PIL needs more), images
in batches: a bucket answers many small requests at once.
"""
from __future__ import annotations

import io
import os

import numpy as np

from gensweep.platform.data.sources.base import UNLABELED, Source, SourceError
from gensweep.platform.data.sources.registry import register_source
from gensweep.platform.storage.uris import S3_SCHEMES, StorageOptions, fsspec_filesystem, is_local, redact_uri, scheme_of

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
HEADER_BYTES = 64 * 1024  # PNG: the first 33 bytes; JPEG: up to the frame header, after any EXIF
FETCH_BATCH = 256  # files requested at once

# PIL modes that are single-channel; everything else is converted to RGB.
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


def _visible_image(rel: str) -> bool:
    parts = rel.split("/")
    return not any(p.startswith(".") for p in parts) and parts[-1].lower().endswith(IMAGE_EXTENSIONS)


class FolderSource(Source):
    """PNG/JPEG files under a folder of ``fs`` (an fsspec filesystem); first-level subfolders are classes."""

    def __init__(self, fs, root: str, name: str):
        root = root.rstrip("/")
        self.fs, self.root = fs, root
        self._scheme = "" if is_local(name) else "s3://"  # how files are named in errors
        if is_local(name) and not fs.isdir(root):
            raise SourceError(f"image folder {name!r} is not a directory")
        found = [str(p) for p in fs.find(root)]
        rel = sorted(r for r in (p[len(root):].lstrip("/") for p in found if p.startswith(root + "/"))
                     if _visible_image(r))
        if not rel:
            raise SourceError(f"image folder {name!r} holds no {'/'.join(IMAGE_EXTENSIONS)} files")
        classes = sorted({r.split("/", 1)[0] for r in rel if "/" in r})
        label_of = {c: i for i, c in enumerate(classes)}
        self.files = [f"{root}/{r}" for r in rel]
        self.labels = np.array([label_of[r.split("/", 1)[0]] if "/" in r else UNLABELED for r in rel],
                               dtype=np.int64)
        self.label_names = {i: c for c, i in label_of.items()} or None
        self.description = f"folder:{name}"
        modes, sizes = set(), set()
        for start in range(0, len(self.files), FETCH_BATCH):
            for mode, size in self._headers(self.files[start:start + FETCH_BATCH]):
                modes.add(mode)
                sizes.add(size)
        self._channels = 1 if modes <= _GRAY_MODES else 3
        self._shape = sizes.pop() if len(sizes) == 1 else None

    def _fetch(self, paths: list[str], end: int | None = None) -> list[bytes]:
        """The files' bytes (up to ``end``), requested together."""
        blobs = self.fs.cat_ranges(paths, 0, end, on_error="return")
        for path, blob in zip(paths, blobs):
            if isinstance(blob, Exception):
                raise SourceError(f"cannot read image {self._scheme}{path!r}: {blob}") from blob
        return blobs

    def _headers(self, paths: list[str]) -> list[tuple[str, tuple[int, int]]]:
        from PIL import Image

        out = []
        for path, head in zip(paths, self._fetch(paths, HEADER_BYTES)):
            try:
                try:
                    im = Image.open(io.BytesIO(head))
                except Exception:  # noqa: BLE001 - the header lies further in: read the whole file
                    im = Image.open(io.BytesIO(self._fetch([path])[0]))
                with im:
                    out.append((im.mode, (im.height, im.width)))
            except Exception as exc:  # noqa: BLE001 - reported with the file name
                raise SourceError(f"cannot read image {self._scheme}{path!r}: {exc}") from exc
        return out

    @property
    def native_channels(self) -> int:
        return self._channels

    @property
    def native_shape(self) -> tuple[int, int] | None:
        return self._shape

    def load(self, indices: np.ndarray) -> list[np.ndarray]:
        from PIL import Image

        mode = "L" if self._channels == 1 else "RGB"
        out: list[np.ndarray] = []
        wanted = [self.files[int(i)] for i in np.asarray(indices)]
        for start in range(0, len(wanted), FETCH_BATCH):
            for blob in self._fetch(wanted[start:start + FETCH_BATCH]):
                with Image.open(io.BytesIO(blob)) as im:
                    arr = np.asarray(im.convert(mode), dtype=np.uint8)
                out.append(arr[..., None] if arr.ndim == 2 else arr)
        return out


def _folder_source(spec: str, storage: StorageOptions) -> Source:
    fs, root = fsspec_filesystem(spec, storage)
    if is_local(spec):
        root = os.path.realpath(root)
        return FolderSource(fs, root, root)
    return FolderSource(fs, root, redact_uri(spec))


def _is_folder(spec: str) -> bool:
    """An existing local directory, or any ``s3://`` URI without a file suffix of another kind
    (a bucket prefix cannot be checked without a request; an empty one fails when opened)."""
    if scheme_of(spec) in S3_SCHEMES:
        return True
    local = spec[len("file://"):] if spec.startswith("file://") else spec
    return os.path.isdir(os.path.expanduser(local))


register_source("folder", _folder_source, matches=_is_folder)
