"""WebDataset shards: uncompressed ``.tar`` files whose members are grouped into samples by key
(the member's path up to the first dot of its name): ``KEY.png`` / ``KEY.jpg`` / ``KEY.jpeg`` /
``KEY.webp`` is the image, ``KEY.cls`` (text, an integer) its label. One shard, or a folder (or
``s3://`` prefix) of them in name order. Images are read as byte ranges of the shards, so nothing
is unpacked; a member of another kind (``.json``, ``.txt``) or a sample without an image is
counted in ``ignored`` and reported.
"""
from __future__ import annotations

import posixpath
import tarfile

import numpy as np

from gensweep.platform.data.sources.base import UNLABELED, Source, SourceError, source_location
from gensweep.platform.data.sources.encoded import RangeSource
from gensweep.platform.data.sources.registry import register_source
from gensweep.platform.storage.uris import StorageOptions

IMAGE_SUFFIXES = ("png", "jpg", "jpeg", "webp")
LABEL_SUFFIX = "cls"


def _split(member: str) -> tuple[str, str]:
    folder, base = posixpath.split(member)
    stem, _, ext = base.partition(".")
    return posixpath.join(folder, stem), ext.lower()


def _parse_label(raw: bytes, where: str) -> int:
    try:
        return int(raw.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        raise SourceError(f"{where}: a .cls member must hold an integer, found {raw[:20]!r}") from None


class WebDatasetSource(RangeSource):
    def __init__(self, fs, shards: list[str], name: str):
        ranges, names, labels, self.ignored = [], [], [], []
        for shard in shards:
            for key, image, label, extra in self._samples(fs, shard, name):
                self.ignored += extra
                if image is None:
                    self.ignored.append(f"{posixpath.basename(shard)}:{key} (no image)")
                    continue
                ranges.append((shard, image[0], image[0] + image[1]))
                names.append(f"{posixpath.basename(shard)}:{key}")
                labels.append(UNLABELED if label is None else label)
        if not ranges:
            raise SourceError(f"{name}: no samples with a {'/'.join(IMAGE_SUFFIXES)} image in {len(shards)} shards")
        super().__init__(fs, ranges)
        self.names, self.labels = names, np.asarray(labels, dtype=np.int64)
        self.description = f"webdataset:{name}"
        self._scan_headers()

    @staticmethod
    def _samples(fs, shard: str, name: str):
        samples: dict[str, dict] = {}
        where = f"{name}:{posixpath.basename(shard)}"
        try:
            with fs.open(shard, "rb") as f, tarfile.open(fileobj=f, mode="r:") as tar:
                for m in tar:
                    if not m.isfile():
                        continue
                    key, ext = _split(m.name)
                    s = samples.setdefault(key, {"image": None, "label": None, "extra": []})
                    if ext in IMAGE_SUFFIXES and s["image"] is None:
                        s["image"] = (m.offset_data, m.size)
                    elif ext == LABEL_SUFFIX:
                        s["label"] = _parse_label(tar.extractfile(m).read(64), f"{where}:{m.name}")
                    else:
                        s["extra"].append(f"{posixpath.basename(shard)}:{m.name}")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise SourceError(f"{where}: not a readable uncompressed tar shard ({type(exc).__name__}: {exc})") from None
        return [(k, s["image"], s["label"], s["extra"]) for k, s in samples.items()]


def _webdataset_source(spec: str, storage: StorageOptions) -> Source:
    fs, path, name = source_location(spec, "webdataset", storage)
    if fs.isdir(path):
        shards = sorted(str(p) for p in fs.find(path) if str(p).endswith(".tar"))
        if not shards:
            raise SourceError(f"{name}: no .tar shards in this folder")
    else:
        shards = [path]
    return WebDatasetSource(fs, shards, name)


def _is_shard_folder(spec: str) -> bool:
    import os

    local = os.path.expanduser(spec[len("file://"):] if spec.startswith("file://") else spec)
    return os.path.isdir(local) and any(f.endswith(".tar") for f in os.listdir(local))


register_source("webdataset", _webdataset_source, suffixes=(".tar",), matches=_is_shard_folder, takes_path=True)
