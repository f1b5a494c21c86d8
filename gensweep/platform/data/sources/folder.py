"""An image folder (PNG/JPEG), local or ``s3://bucket/prefix``; first-level class subfolders become
labels (sorted, stable).

Both are read through fsspec (:func:`~gensweep.platform.storage.uris.fsspec_filesystem`), so the
same relative paths give the same labels, records and fingerprint wherever the folder lives. Image
headers are read from each file's first bytes (the whole file only when PIL needs more), images
in batches: a bucket answers many small requests at once. Files that are not images (other
suffixes; hidden files and folders aside) are counted in ``ignored`` and reported by prepare.
"""
from __future__ import annotations

import os

import numpy as np

from gensweep.platform.data.sources.base import UNLABELED, Source, SourceError
from gensweep.platform.data.sources.encoded import RangeSource
from gensweep.platform.data.sources.registry import register_source
from gensweep.platform.storage.uris import S3_SCHEMES, StorageOptions, fsspec_filesystem, is_local, redact_uri, scheme_of

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


def _hidden(rel: str) -> bool:
    return any(p.startswith(".") for p in rel.split("/"))


def relative_files(fs, root: str) -> list[str]:
    """Every file under ``root`` as a sorted path relative to it (hidden files and folders left out)."""
    found = [str(p) for p in fs.find(root)]
    return sorted(r for r in (p[len(root):].lstrip("/") for p in found if p.startswith(root + "/"))
                  if r and not _hidden(r))


class FolderSource(RangeSource):
    """PNG/JPEG files under a folder of ``fs`` (an fsspec filesystem); first-level subfolders are classes."""

    def __init__(self, fs, root: str, name: str):
        root = root.rstrip("/")
        if is_local(name) and not fs.isdir(root):
            raise SourceError(f"image folder {name!r} is not a directory")
        files = relative_files(fs, root)
        rel = [r for r in files if r.lower().endswith(IMAGE_EXTENSIONS)]
        self.ignored = [r for r in files if not r.lower().endswith(IMAGE_EXTENSIONS)]
        if not rel:
            raise SourceError(f"image folder {name!r} holds no {'/'.join(IMAGE_EXTENSIONS)} files"
                              + (f" ({len(self.ignored)} other files, e.g. {self.ignored[0]!r})" if self.ignored else ""))
        super().__init__(fs, [(f"{root}/{r}", 0, None) for r in rel])
        classes = sorted({r.split("/", 1)[0] for r in rel if "/" in r})
        label_of = {c: i for i, c in enumerate(classes)}
        self.files = [f"{root}/{r}" for r in rel]
        scheme = "" if is_local(name) else "s3://"  # how files are named in errors
        self.names = [f"{scheme}{f}" for f in self.files]
        self.labels = np.array([label_of[r.split("/", 1)[0]] if "/" in r else UNLABELED for r in rel],
                               dtype=np.int64)
        self.label_names = {i: c for c, i in label_of.items()} or None
        self.description = f"folder:{name}"
        self._scan_headers()


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


register_source("folder", _folder_source, matches=_is_folder, takes_path=True)
