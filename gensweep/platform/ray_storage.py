"""Where Tune and Train keep experiment state and checkpoints, and writes that ride out outages.

Tune/Train storage defaults to ``<results.root>/ray``; ``GENSWEEP_RAY_STORAGE`` (or
``run_sweep(ray_storage=...)``) puts it elsewhere, e.g. on local or shared disk while results
go to S3. Ray's ``storage_path`` takes a local path, or a scheme-less path plus a
``storage_filesystem``; for ``s3://`` the filesystem is s3fs (endpoint, region and profile
from the AWS environment, credentials from the AWS chain, never passed) behind
:class:`RetryingFSSpecHandler`, so checkpoint uploads and experiment-state syncs retry
through a storage outage under the same backoff and deadline as the results store.
"""
from __future__ import annotations

import io
import logging
import os
from typing import Any, Callable, Optional, TypeVar

import pyarrow.fs as pafs

from gensweep.platform.data.storage import StorageOptions, fsspec_filesystem, is_local, join_uri, resolve
from gensweep.platform.results.retry import RetryPolicy

logger = logging.getLogger(__name__)
T = TypeVar("T")

RAY_STORAGE_ENV = "GENSWEEP_RAY_STORAGE"
RETRY_ENV = "GENSWEEP_STORAGE_RETRY_S"


def retry_policy() -> RetryPolicy:
    """Backoff with jitter under a total deadline (``GENSWEEP_STORAGE_RETRY_S``, default 300 s)."""
    return RetryPolicy(deadline_s=float(os.environ.get(RETRY_ENV, "300")))


def with_retry(fn: Callable[[], T], what: str) -> T:
    return retry_policy().call(fn, what=what)


def ray_storage_uri(results_root: str, override: Optional[str] = None) -> str:
    uri = override or os.environ.get(RAY_STORAGE_ENV) or join_uri(results_root, "ray")
    return uri if "://" in uri else os.path.abspath(os.path.expanduser(uri))


def storage_for(uri: str, storage: Optional[StorageOptions] = None) -> tuple[str, Optional[pafs.FileSystem]]:
    """``(storage_path, storage_filesystem)`` for Tune/Train: a local path and None, or a
    scheme-less remote path and a retrying filesystem."""
    if is_local(uri):
        return resolve(uri)[1], None
    fs, path = fsspec_filesystem(uri, storage or StorageOptions())
    return path, pafs.PyFileSystem(RetryingFSSpecHandler(fs))


def put_bytes_retrying(uri: str, data: bytes, storage: Optional[StorageOptions] = None) -> str:
    from gensweep.platform.artifacts import put_bytes

    return with_retry(lambda: put_bytes(uri, data, storage), f"write {uri}")


def get_bytes(uri: str, storage: Optional[StorageOptions] = None) -> bytes:
    fs, path = resolve(uri, storage)

    def read() -> bytes:
        with fs.open_input_stream(path) as f:
            return f.read()

    return with_retry(read, f"read {uri}")


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
    (connection refused/reset, timeouts, 5xx, throttling) under :func:`retry_policy`."""

    def __init__(self, fs: Any, policy: Optional[RetryPolicy] = None):
        super().__init__(fs)
        self.policy = policy or retry_policy()

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
