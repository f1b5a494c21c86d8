"""Write trial artifacts (resolved configs, sample grids) to a local path or object storage."""
from __future__ import annotations

import posixpath

from gensweep.platform.data.storage import StorageOptions, is_local, resolve, write_bytes_atomic


def put_bytes(uri: str, data: bytes, storage: StorageOptions | None = None) -> str:
    """Atomically write ``data`` at ``uri`` (parent folders created on local disk); returns the URI."""
    fs, path = resolve(uri, storage)
    if is_local(uri):
        fs.create_dir(posixpath.dirname(path), recursive=True)
    write_bytes_atomic(fs, path, data)
    return uri
