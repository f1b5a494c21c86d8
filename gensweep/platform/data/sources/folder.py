"""An image folder (PNG/JPEG); first-level class subfolders become labels (sorted, stable)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gensweep.platform.data.sources.base import UNLABELED, Source, SourceError
from gensweep.platform.data.sources.registry import register_source

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")

# PIL modes that are single-channel; everything else is converted to RGB.
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


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


def _is_local_dir(spec: str) -> bool:
    local = spec[len("file://"):] if spec.startswith("file://") else spec
    return os.path.isdir(os.path.expanduser(local))


register_source("folder", _folder_source, matches=_is_local_dir)
