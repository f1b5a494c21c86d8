"""Write and read trial artifacts (resolved configs, sample grids, divergence records) on a local
path or object storage, retrying through a storage outage."""
from __future__ import annotations

import posixpath

from gensweep.platform.storage.retry import RetryPolicy
from gensweep.platform.storage.uris import (
    StorageOptions,
    is_local,
    read_bytes,
    resolve,
    write_bytes_atomic,
)

# Backoff with jitter for every artifact and Tune/Train storage call: a 30 s outage of the
# object store costs waiting, not trials; one that lasts longer than this fails the call.
STORAGE_RETRY = RetryPolicy(deadline_s=300.0)


def put_bytes(uri: str, data: bytes, storage: StorageOptions | None = None) -> str:
    """Atomically write ``data`` at ``uri`` (parent folders created on local disk); returns the URI."""
    fs, path = resolve(uri, storage)

    def write() -> None:
        if is_local(uri):
            fs.create_dir(posixpath.dirname(path), recursive=True)
        write_bytes_atomic(fs, path, data)

    STORAGE_RETRY.call(write, f"write {uri}")
    return uri


def get_bytes(uri: str, storage: StorageOptions | None = None) -> bytes:
    """The bytes at ``uri``; FileNotFoundError when there is nothing there."""
    fs, path = resolve(uri, storage)
    return STORAGE_RETRY.call(lambda: read_bytes(fs, path), f"read {uri}")
