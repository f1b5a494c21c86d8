"""Where Tune and Train keep experiment state and checkpoints, riding out storage outages.

Tune/Train storage is ``<results.root>/ray``. Ray's ``storage_path`` takes a local path, or a
scheme-less path plus a ``storage_filesystem``; for ``s3://`` the filesystem is s3fs (endpoint,
region and profile from the AWS environment, credentials from the AWS chain, never passed)
behind :class:`RetryingFSSpecHandler`, so checkpoint uploads and experiment-state syncs retry
through an outage with backoff under :data:`~gensweep.platform.storage.artifacts.STORAGE_RETRY`.
"""
from __future__ import annotations

import io
from typing import Any, Callable, Optional, TypeVar

import pyarrow.fs as pafs

from gensweep.platform.storage.artifacts import STORAGE_RETRY
from gensweep.platform.storage.retry import RetryPolicy
from gensweep.platform.storage.uris import (
    StorageOptions,
    fsspec_filesystem,
    is_local,
    resolve,
)

T = TypeVar("T")


def storage_for(uri: str, storage: Optional[StorageOptions] = None) -> tuple[str, Optional[pafs.FileSystem]]:
    """``(storage_path, storage_filesystem)`` for Tune/Train: a local path and None, or a
    scheme-less remote path and a retrying filesystem."""
    if is_local(uri):
        return resolve(uri)[1], None
    fs, path = fsspec_filesystem(uri, storage or StorageOptions())
    return path, pafs.PyFileSystem(RetryingFSSpecHandler(fs))


class _UploadOnClose(io.BytesIO):
    """An output stream buffered in memory and uploaded whole, with retries, on close."""

    def __init__(self, fs: Any, path: str, policy: RetryPolicy):
        super().__init__()
        self._fs, self._path, self._policy = fs, path, policy

    def close(self) -> None:
        if not self.closed:
            data = self.getvalue()
            self._policy.call(lambda: self._fs.pipe_file(self._path, data), what=f"upload {self._path}")
        super().close()


class RetryingFSSpecHandler(pafs.FSSpecHandler):
    """pyarrow's fsspec bridge with every remote call retried on transient errors
    (connection refused/reset, timeouts, 5xx, throttling) under ``policy``."""

    def __init__(self, fs: Any, policy: RetryPolicy = STORAGE_RETRY):
        super().__init__(fs)
        self.policy = policy

    def __reduce__(self):
        return (type(self), (self.fs, self.policy))

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        return self.policy.call(fn, what=what)

    def get_file_info(self, paths):
        return self._call("stat", lambda: super(RetryingFSSpecHandler, self).get_file_info(paths))

    def get_file_info_selector(self, selector):
        return self._call(f"list {selector.base_dir}",
                          lambda: super(RetryingFSSpecHandler, self).get_file_info_selector(selector))

    def create_dir(self, path, recursive):
        return self._call(f"mkdir {path}", lambda: super(RetryingFSSpecHandler, self).create_dir(path, recursive))

    def delete_dir(self, path):
        return self._call(f"delete {path}", lambda: super(RetryingFSSpecHandler, self).delete_dir(path))

    def delete_dir_contents(self, path, missing_dir_ok=False):
        return self._call(f"delete {path}/*",
                          lambda: super(RetryingFSSpecHandler, self).delete_dir_contents(path, missing_dir_ok))

    def delete_file(self, path):
        return self._call(f"delete {path}", lambda: super(RetryingFSSpecHandler, self).delete_file(path))

    def move(self, src, dest):
        return self._call(f"move {src}", lambda: super(RetryingFSSpecHandler, self).move(src, dest))

    def copy_file(self, src, dest):
        return self._call(f"copy {src}", lambda: super(RetryingFSSpecHandler, self).copy_file(src, dest))

    def _read_all(self, path) -> bytes:
        def read():
            if not self.fs.isfile(path):
                raise FileNotFoundError(path)
            return self.fs.cat_file(path)

        return self._call(f"read {path}", read)

    def open_input_stream(self, path):
        import pyarrow as pa

        return pa.BufferReader(self._read_all(path))

    def open_input_file(self, path):
        import pyarrow as pa

        return pa.BufferReader(self._read_all(path))

    def open_output_stream(self, path, metadata):
        from pyarrow import PythonFile

        return PythonFile(_UploadOnClose(self.fs, path, self.policy), mode="w")
