"""CIFAR-10 / CIFAR-100 in their "python version" format (the training split): the archive
``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz`` as downloaded, or its extracted folder
(``data_batch_1``..``5`` + ``batches.meta``; CIFAR-100: ``train`` + ``meta``), local or ``s3://``.

The batches are pickles, and unpickling can run any code a file names. They are read by
:class:`SafeUnpickler`, which resolves only the globals that rebuild a NumPy array
(``_reconstruct``, ``ndarray``, ``dtype``) and refuses every other one before it is looked up;
the result must then be a dict of the expected arrays and lists of integers.
"""
from __future__ import annotations

import io
import pickle
import posixpath
import re
import tarfile

import numpy as np

from gensweep.platform.data.sources.base import ArraySource, Source, SourceError, as_labels, source_location
from gensweep.platform.data.sources.registry import register_source
from gensweep.platform.storage.uris import StorageOptions

_ARRAY_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
})
_TRAIN_BATCH = re.compile(r"^data_batch_\d+$")
_SIDE = 32
_ROW = 3 * _SIDE * _SIDE  # one image: 1024 red, then green, then blue values, rows in order


class SafeUnpickler(pickle.Unpickler):
    """Unpickles plain containers, numbers, strings and NumPy arrays; any other global is refused."""

    def find_class(self, module: str, name: str):
        if (module, name) in _ARRAY_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")


def safe_load(blob: bytes, what: str) -> dict:
    try:
        obj = SafeUnpickler(io.BytesIO(blob), encoding="bytes").load()
    except Exception as exc:  # noqa: BLE001 - refused globals, truncated or foreign files
        raise SourceError(f"{what}: not a CIFAR python batch ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, dict):
        raise SourceError(f"{what}: a CIFAR batch is a dict, found {type(obj).__name__}")
    return {k.decode("latin-1") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def _batch(blob: bytes, what: str) -> tuple[np.ndarray, np.ndarray]:
    d = safe_load(blob, what)
    data = d.get("data")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _ROW:
        shape = getattr(data, "shape", None)
        raise SourceError(f"{what}: 'data' must be a uint8 array of shape (N, {_ROW}), found {shape}")
    key = "labels" if "labels" in d else "fine_labels"
    labels = d.get(key)
    if not isinstance(labels, (list, np.ndarray)) or not all(isinstance(v, (int, np.integer)) for v in labels):
        raise SourceError(f"{what}: 'labels' (CIFAR-10) or 'fine_labels' (CIFAR-100) must be a list of integers")
    images = data.reshape(-1, 3, _SIDE, _SIDE).transpose(0, 2, 3, 1)
    return images, as_labels(np.asarray(labels, dtype=np.int64), images.shape[0], what)


def _names(blob: bytes | None, what: str) -> dict[int, str] | None:
    if blob is None:
        return None
    d = safe_load(blob, what)
    names = d.get("label_names", d.get("fine_label_names"))
    if not isinstance(names, list) or not all(isinstance(n, (bytes, str)) for n in names):
        return None
    return {i: n.decode("utf-8", "replace") if isinstance(n, bytes) else n for i, n in enumerate(names)}


def _pick(files: dict[str, bytes], name: str) -> tuple[list[str], str | None]:
    """The training batches among ``files`` (basename -> bytes) in order, and the meta file's name."""
    batches = sorted((b for b in files if _TRAIN_BATCH.match(b)), key=lambda b: int(b.rsplit("_", 1)[1]))
    if batches:
        return batches, "batches.meta" if "batches.meta" in files else None
    if "train" in files:
        return ["train"], "meta" if "meta" in files else None
    raise SourceError(f"{name}: no CIFAR training batches (data_batch_N for CIFAR-10, train for CIFAR-100)")


def _wanted(base: str) -> bool:
    return bool(_TRAIN_BATCH.match(base)) or base in ("train", "meta", "batches.meta")


def _archive_files(fs, path: str, name: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    try:
        with fs.open(path, "rb") as f, tarfile.open(fileobj=f, mode="r:*") as tar:
            for member in tar:
                base = posixpath.basename(member.name)
                if member.isfile() and _wanted(base):
                    out[base] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise SourceError(f"{name}: not a readable tar archive ({type(exc).__name__}: {exc})") from None
    return out


def _folder_files(fs, path: str) -> dict[str, bytes]:
    found = [str(p) for p in fs.ls(path, detail=False)]
    wanted = [p for p in found if _wanted(posixpath.basename(p))]
    return {posixpath.basename(p): fs.cat_file(p) for p in wanted}


def _cifar_source(spec: str, storage: StorageOptions) -> Source:
    fs, path, name = source_location(spec, "cifar", storage)
    files = _folder_files(fs, path) if fs.isdir(path) else _archive_files(fs, path, name)
    batches, meta = _pick(files, name)
    parts = [_batch(files[b], f"{name}:{b}") for b in batches]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return ArraySource(np.ascontiguousarray(images), labels, f"cifar:{name}",
                       _names(files.get(meta) if meta else None, f"{name}:{meta}"))


def _is_cifar(spec: str) -> bool:
    """The archive as downloaded (any location), or a local folder holding extracted batches."""
    import os

    base = spec.rstrip("/").rsplit("/", 1)[-1]
    if base.endswith("-python.tar.gz") and base.startswith("cifar-"):
        return True
    local = spec[len("file://"):] if spec.startswith("file://") else spec
    local = os.path.expanduser(local)
    return os.path.isdir(local) and (os.path.isfile(os.path.join(local, "data_batch_1"))
                                     or os.path.isfile(os.path.join(local, "train"))
                                     and os.path.isfile(os.path.join(local, "meta")))


register_source("cifar", _cifar_source, matches=_is_cifar, takes_path=True)
