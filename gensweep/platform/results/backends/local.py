"""Local-disk backend of the results store: plain paths and ``file://`` URIs.

``write_bytes`` writes a hidden temp file in the target folder, fsyncs it and
``os.replace``-s it into place, so readers never see a partial file; a writer killed
before the rename leaves only the hidden temp file (see :meth:`LocalBackend.clean_temp`).
"""
from __future__ import annotations

import os
import time
from typing import Any
from urllib.parse import urlsplit

from gensweep.platform.storage.local_files import is_temp_name, publish_file

from .base import Backend, is_hidden, register_backend


class LocalBackend(Backend):
    """Local disk (or a shared file system mounted on every node)."""

    scheme = "file"

    def __init__(self, fsync: bool = True):
        self.fsync = fsync

    @classmethod
    def from_uri(cls, uri: str, **options: Any) -> tuple["LocalBackend", str]:
        parts = urlsplit(uri)
        path = parts.path if parts.scheme == "file" else uri
        return cls(**options), os.path.abspath(os.path.expanduser(path))

    def write_bytes(self, path: str, data: bytes) -> None:
        publish_file(path, data, fsync=self.fsync)

    def read_bytes(self, path: str, limit: int | None = None) -> bytes:
        with open(path, "rb") as handle:
            return handle.read(-1 if limit is None else limit)

    def list(self, prefix: str) -> list[str]:
        found: list[str] = []
        for folder, dirs, files in os.walk(prefix):
            dirs[:] = [d for d in dirs if not is_hidden(d)]
            found.extend(os.path.join(folder, f) for f in files if not is_hidden(f))
        return sorted(found)

    def list_dirs(self, prefix: str) -> list[str]:
        try:
            entries = list(os.scandir(prefix))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(e.name for e in entries if e.is_dir() and not is_hidden(e.name))

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def delete(self, path: str) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    def join(self, *parts: str) -> str:
        return os.path.join(*parts)

    def uri(self, path: str) -> str:
        return path

    def storage_options(self) -> dict[str, Any]:
        return {"fsync": self.fsync}

    def clean_temp(self, root: str, older_than_s: float) -> int:
        removed = 0
        cutoff = time.time() - older_than_s
        for folder, _dirs, files in os.walk(root):
            for name in files:
                if is_temp_name(name):
                    path = os.path.join(folder, name)
                    try:
                        if os.stat(path).st_mtime < cutoff:
                            os.unlink(path)
                            removed += 1
                    except FileNotFoundError:
                        pass
        return removed


register_backend(("", "file"), LocalBackend.from_uri)
