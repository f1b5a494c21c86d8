"""Hugging Face image datasets saved as Parquet (``push_to_hub``/``to_parquet``, the Hub's
``data/train-*.parquet``) or Arrow (``save_to_disk``), read with pyarrow: the ``datasets``
library is not needed. Local or ``s3://``: one file, or a folder of them (every ``*.parquet``,
else every ``*.arrow`` file below it, in name order; only those with ``train`` in their path when
some have).

The image column is ``image`` (else ``img``): encoded bytes, or the ``{bytes, path}`` struct of
the ``Image`` feature (a path without bytes is read relative to the file). The label column is
``label`` (else ``labels``, ``fine_label``); absent or null: unlabeled. Class names come from the
``ClassLabel`` feature recorded in the file's ``huggingface`` schema metadata.
"""
from __future__ import annotations

import json
import posixpath

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gensweep.platform.data.sources.base import UNLABELED, Source, SourceError, source_location
from gensweep.platform.data.sources.encoded import EncodedSource
from gensweep.platform.data.sources.registry import register_source
from gensweep.platform.storage.uris import StorageOptions

IMAGE_COLUMNS = ("image", "img")
LABEL_COLUMNS = ("label", "labels", "fine_label")
_SUFFIXES = (".parquet", ".arrow")


def _table(fs, path: str, name: str) -> pa.Table:
    try:
        if path.endswith(".parquet"):
            with fs.open(path, "rb") as f:
                return pq.read_table(f)
        buf = pa.py_buffer(fs.cat_file(path))
        try:
            return pa.ipc.open_stream(buf).read_all()  # what save_to_disk writes
        except pa.ArrowInvalid:
            return pa.ipc.open_file(buf).read_all()
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise SourceError(f"{name}: {posixpath.basename(path)} is not a readable Parquet/Arrow file "
                          f"({type(exc).__name__}: {exc})") from None


def _data_files(fs, path: str, name: str) -> list[str]:
    if not fs.isdir(path):
        return [path]
    found = sorted(str(p) for p in fs.find(path))
    for suffix in _SUFFIXES:
        files = [p for p in found if p.endswith(suffix) and "/." not in p[len(path):]]
        train = [p for p in files if "train" in p[len(path):]]
        if files:
            return train or files
    raise SourceError(f"{name}: no .parquet or .arrow files in this folder")


def _class_names(schema: pa.Schema, column: str | None) -> dict[int, str] | None:
    meta = (schema.metadata or {}).get(b"huggingface")
    if not meta or column is None:
        return None
    try:
        feature = json.loads(meta)["info"]["features"][column]
        names = feature["names"]
    except (ValueError, KeyError, TypeError):
        return None
    return {i: str(n) for i, n in enumerate(names)} if isinstance(names, list) else None


def _column(table: pa.Table, wanted: tuple[str, ...]) -> str | None:
    return next((c for c in wanted if c in table.column_names), None)


class HuggingFaceSource(EncodedSource):
    def __init__(self, fs, path: str, name: str):
        self.fs, self.description = fs, f"hf:{name}"
        self.blobs: list[bytes | None] = []
        self.paths: list[str | None] = []
        self.names, labels = [], []
        self.label_names = None
        for file in _data_files(fs, path, name):
            self._add(file, _table(fs, file, name), name)
            labels.append(self._labels)
        self.labels = np.concatenate(labels)
        if not self.count:
            raise SourceError(f"{name}: no rows")
        self._scan_headers()

    def _add(self, file: str, table: pa.Table, name: str) -> None:
        image = _column(table, IMAGE_COLUMNS)
        if image is None:
            raise SourceError(f"{name}: {posixpath.basename(file)} has no image column {IMAGE_COLUMNS}; "
                              f"columns: {table.column_names}")
        values = table.column(image).to_pylist()
        for row, v in enumerate(values):
            if isinstance(v, dict):
                rel = v.get("path")
                self.blobs.append(v.get("bytes"))
                self.paths.append(posixpath.join(posixpath.dirname(file), rel) if rel else None)
            else:
                self.blobs.append(v if isinstance(v, (bytes, type(None))) else None)
                self.paths.append(None)
            self.names.append(f"{posixpath.basename(file)}[{row}]")
        label = _column(table, LABEL_COLUMNS)
        raw = table.column(label).to_pylist() if label else [None] * len(values)
        if not all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in raw):
            raise SourceError(f"{name}: label column {label!r} must hold integers")
        self._labels = np.array([UNLABELED if v is None else v for v in raw], dtype=np.int64)
        self.label_names = self.label_names or _class_names(table.schema, label)

    def _read(self, indices: list[int], head: int | None) -> list[bytes | Exception]:
        out: list[bytes | Exception] = []
        for i in indices:
            if self.blobs[i] is not None:
                out.append(self.blobs[i])
            elif self.paths[i] is None:
                out.append(SourceError("no image bytes or path in this row"))
            else:
                try:
                    out.append(self.fs.cat_file(self.paths[i]))
                except OSError as exc:
                    out.append(exc)
        return out


def _hf_source(spec: str, storage: StorageOptions) -> Source:
    fs, path, name = source_location(spec, "hf", storage)
    return HuggingFaceSource(fs, path, name)


def _is_hf_folder(spec: str) -> bool:
    """A local folder holding Parquet or Arrow files (``save_to_disk`` output, a Hub snapshot)."""
    import os

    local = os.path.expanduser(spec[len("file://"):] if spec.startswith("file://") else spec)
    if not os.path.isdir(local):
        return False
    for folder, dirs, files in os.walk(local):  # the folder and its first level (a Hub snapshot's data/)
        dirs[:] = [d for d in dirs if not d.startswith(".")] if folder == local else []
        if any(f.endswith(_SUFFIXES) for f in files):
            return True
    return False


register_source("hf", _hf_source, suffixes=_SUFFIXES, matches=_is_hf_folder, takes_path=True)
