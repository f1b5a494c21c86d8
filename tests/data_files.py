"""Tiny source files of every kind, built by the tests themselves (8x8 images, a handful of records)."""
from __future__ import annotations

import io
import json
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image


def png_bytes(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(buf, format="PNG")
    return buf.getvalue()


def rgb_images(n: int, side: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, side, side, 3), dtype=np.uint8)


def cifar_batch(images: np.ndarray, labels: list[int], key: str = "labels") -> bytes:
    """A CIFAR python batch: rows of 1024 R, 1024 G, 1024 B values (32x32 images)."""
    data = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    return pickle.dumps({b"batch_label": b"training batch", key.encode(): labels, b"data": data,
                         b"filenames": [f"{i}.png".encode() for i in range(len(images))]}, protocol=4)


def add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def cifar10_archive(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``cifar-10-python.tar.gz`` with two training batches (3 + 2 images), a test batch and the meta."""
    x = rgb_images(7, side=32, seed=1)
    y = np.array([3, 1, 4, 1, 5, 9, 2])
    with tarfile.open(path, "w:gz") as tar:
        add_member(tar, "cifar-10-batches-py/data_batch_1", cifar_batch(x[:3], y[:3].tolist()))
        add_member(tar, "cifar-10-batches-py/data_batch_2", cifar_batch(x[3:5], y[3:5].tolist()))
        add_member(tar, "cifar-10-batches-py/test_batch", cifar_batch(x[5:], y[5:].tolist()))
        names = [f"class{i}".encode() for i in range(10)]
        add_member(tar, "cifar-10-batches-py/batches.meta", pickle.dumps({b"label_names": names}, protocol=4))
        add_member(tar, "cifar-10-batches-py/readme.html", b"<html></html>")
    return x[:5], y[:5]


class Planted:
    """A pickled object whose unpickling would create ``marker`` (it must never run)."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def hf_table(images: np.ndarray, labels: list[int | None] | None, *, struct: bool = False,
             column: str = "image", class_names: list[str] | None = None) -> pa.Table:
    blobs = [png_bytes(im) for im in images]
    if struct:
        col = pa.array([{"bytes": b, "path": f"{i}.png"} for i, b in enumerate(blobs)],
                       type=pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
    else:
        col = pa.array(blobs, type=pa.binary())
    cols = {column: col}
    if labels is not None:
        cols["label"] = pa.array(labels, type=pa.int64())
    table = pa.table(cols)
    if class_names:
        features = {"label": {"names": class_names, "_type": "ClassLabel"}}
        table = table.replace_schema_metadata({"huggingface": json.dumps({"info": {"features": features}})})
    return table


def write_parquet(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def write_arrow_stream(table: pa.Table, path: Path) -> None:
    """Arrow IPC stream, as ``datasets.Dataset.save_to_disk`` writes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)


def webdataset_shard(path: Path, images: np.ndarray, labels: list[int], start: int = 0,
                     extra: bool = False) -> None:
    with tarfile.open(path, "w") as tar:
        for i, (im, label) in enumerate(zip(images, labels)):
            key = f"sample{start + i:04d}"
            add_member(tar, f"{key}.png", png_bytes(im))
            add_member(tar, f"{key}.cls", f"{label}\n".encode())
            if extra:
                add_member(tar, f"{key}.json", b"{}")
