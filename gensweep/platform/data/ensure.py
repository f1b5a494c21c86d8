"""Make sure the spec's dataset is prepared (once) and return its URI."""
from __future__ import annotations

import hashlib
import re

from filelock import FileLock

from gensweep.platform.data import (
    DatasetNotFoundError,
    StorageOptions,
    ensure_mnist,
    load_manifest,
    prepare,
)
from gensweep.platform.data.prepare import mnist_uri
from gensweep.platform.storage.layout import RootLayout
from gensweep.platform.storage.uris import is_local, resolve


def storage_of(data) -> StorageOptions:
    return StorageOptions(**(data.storage.model_dump() if data.storage else {}))


def default_uri(data, root: str) -> str:
    base = re.sub(r"[^A-Za-z0-9]+", "-", data.source.rsplit("/", 1)[-1]).strip("-").lower() or "data"
    opts = (f"{data.source}|{data.resolution}|{data.channels}|{data.resize}|{data.resize_filter}|{data.fraction}"
            f"|{data.seed}")
    return RootLayout(root).dataset(f"{base}-{data.resolution}px-{hashlib.sha256(opts.encode()).hexdigest()[:8]}")


def dataset_uri(data, root: str) -> str:
    """Where :func:`ensure_dataset` finds or prepares the dataset of ``data`` (a spec's
    ``data:``) under the results ``root``."""
    if data.uri:
        return data.uri
    if data.source == "mnist" and data.fraction == 1.0:
        return mnist_uri(root, data.resolution, data.channels, data.resize, data.resize_filter)
    return default_uri(data, root)


def ensure_dataset(data, root: str) -> str:
    storage = storage_of(data)
    if data.uri:
        try:
            load_manifest(data.uri, storage)
            return data.uri
        except DatasetNotFoundError:
            pass
    elif data.source == "mnist" and data.fraction == 1.0:
        return ensure_mnist(root, data.resolution, channels=data.channels, resize=data.resize,
                            resize_filter=data.resize_filter, storage=storage)
    uri = dataset_uri(data, root)
    kwargs = dict(resolution=data.resolution, channels=data.channels, resize=data.resize,
                  resize_filter=data.resize_filter, fraction=data.fraction, seed=data.seed, storage=storage,
                  bad_records=data.bad_records)
    if is_local(uri):
        fs, path = resolve(uri)
        fs.create_dir(path, recursive=True)
        with FileLock(path.rstrip("/") + ".lock"):
            prepare(data.source, uri, **kwargs)
    else:
        prepare(data.source, uri, **kwargs)
    return uri
