"""Storage backends of the results store: a small interface, local disk and S3.

A backend works on its own path strings (an absolute local path, or ``bucket/key``
for S3) and promises:

* ``write_bytes`` is atomic: readers see either no object or the whole object.
  Local disk writes a hidden temp file in the target folder, fsyncs it and
  ``os.replace``-s it into place; S3 sends one PUT of the whole object (multipart
  uploads of very large objects are likewise invisible until completed).
* ``list`` returns visible files only: names that start with ``_`` or ``.`` (temp
  files, markers) are skipped, at any depth.

Backends are picked by URI scheme from :data:`BACKENDS`; add one with
:func:`register_backend`.  Credentials are never taken nor stored: S3 uses the
standard AWS chain (environment, profile, instance role).
"""
from __future__ import annotations

import os
import uuid
from abc import ABC, abstractmethod
from typing import Any, Callable
from urllib.parse import urlsplit


def is_hidden(name: str) -> bool:
    return name.startswith(("_", "."))


class Backend(ABC):
    """Minimal file store used by :class:`~gensweep.platform.results.store.ResultsStore`."""

    scheme: str = ""

    @abstractmethod
    def write_bytes(self, path: str, data: bytes) -> None:
        """Atomically create or replace ``path`` with ``data``."""

    @abstractmethod
    def read_bytes(self, path: str) -> bytes:
        """Whole content of ``path``; FileNotFoundError when absent."""

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Visible files under folder ``prefix`` (recursive, sorted); [] when absent."""

    @abstractmethod
    def list_dirs(self, prefix: str) -> list[str]:
        """Names (not paths) of visible sub-folders directly under ``prefix``."""

    @abstractmethod
    def exists(self, path: str) -> bool: ...

    @abstractmethod
    def delete(self, path: str) -> None:
        """Remove a file; absent files are fine."""

    def join(self, *parts: str) -> str:
        return "/".join(p.strip("/") if i else p.rstrip("/") for i, p in enumerate(parts) if p)

    def uri(self, path: str) -> str:
        """Path back to a URI a user could pass to ``ResultsStore.open``."""
        return path

    def storage_options(self) -> dict[str, Any]:
        """The (credential-free) options needed to re-open this backend elsewhere."""
        return {}


class LocalBackend(Backend):
    scheme = "file"

    def __init__(self, fsync: bool = True):
        self.fsync = fsync

    @classmethod
    def from_uri(cls, uri: str, **options: Any) -> tuple["LocalBackend", str]:
        parts = urlsplit(uri)
        path = parts.path if parts.scheme == "file" else uri
        return cls(**options), os.path.abspath(os.path.expanduser(path))

    def write_bytes(self, path: str, data: bytes) -> None:
        folder, name = os.path.split(path)
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f".{name}.{uuid.uuid4().hex}.tmp")
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                if self.fsync:
                    os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        if self.fsync:
            try:  # make the rename itself durable
                dir_fd = os.open(folder, os.O_RDONLY)
            except OSError:
                return
            try:
                os.fsync(dir_fd)
            except OSError:
                pass
            finally:
                os.close(dir_fd)

    def read_bytes(self, path: str) -> bytes:
        with open(path, "rb") as handle:
            return handle.read()

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


class S3Backend(Backend):
    """S3 (or any S3-compatible server) through s3fs.

    The endpoint comes from ``endpoint_url``, else ``AWS_ENDPOINT_URL_S3`` /
    ``AWS_ENDPOINT_URL``; the region from ``region_name``, else ``AWS_REGION`` /
    ``AWS_DEFAULT_REGION``.  s3fs' and botocore's own retries are turned off so
    that :class:`~gensweep.platform.storage.retry.RetryPolicy` alone governs
    retrying (one deadline, one backoff schedule).
    """

    scheme = "s3"

    def __init__(
        self,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        profile: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
    ):
        self.endpoint_url = (
            endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        )
        self.region_name = (
            region_name or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        )
        self.profile = profile
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._fs = None
        self._fs_pid: int | None = None

    @classmethod
    def from_uri(cls, uri: str, **options: Any) -> tuple["S3Backend", str]:
        parts = urlsplit(uri)
        if not parts.netloc:
            raise ValueError(f"S3 URI {uri!r} names no bucket (expected s3://bucket/prefix)")
        root = parts.netloc + ("/" + parts.path.strip("/") if parts.path.strip("/") else "")
        return cls(**options), root

    @property
    def fs(self):
        # One filesystem per process (a forked child must not reuse the parent's loop).
        if self._fs is None or self._fs_pid != os.getpid():
            import s3fs

            kwargs: dict[str, Any] = dict(
                skip_instance_cache=True,
                use_listings_cache=False,
                config_kwargs={
                    "retries": {"max_attempts": 1, "mode": "standard"},
                    "connect_timeout": self.connect_timeout,
                    "read_timeout": self.read_timeout,
                },
                client_kwargs={},
            )
            if self.endpoint_url:
                kwargs["endpoint_url"] = self.endpoint_url
            if self.region_name:
                kwargs["client_kwargs"]["region_name"] = self.region_name
            if self.profile:
                kwargs["profile"] = self.profile
            fs = s3fs.S3FileSystem(**kwargs)
            fs.retries = 1  # RetryPolicy does the retrying
            self._fs, self._fs_pid = fs, os.getpid()
        return self._fs

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_fs"] = None
        state["_fs_pid"] = None
        return state

    def write_bytes(self, path: str, data: bytes) -> None:
        self.fs.pipe_file(path, data)

    def read_bytes(self, path: str) -> bytes:
        return self.fs.cat_file(path)

    def list(self, prefix: str) -> list[str]:
        try:
            paths = self.fs.find(prefix.rstrip("/") + "/", detail=False)
        except FileNotFoundError:
            return []
        base = prefix.rstrip("/") + "/"
        visible = []
        for path in paths:
            rel = path[len(base):] if path.startswith(base) else path
            if rel and not any(is_hidden(part) for part in rel.split("/")):
                visible.append(path)
        return sorted(visible)

    def list_dirs(self, prefix: str) -> list[str]:
        try:
            entries = self.fs.ls(prefix.rstrip("/"), detail=True, refresh=True)
        except FileNotFoundError:
            return []
        names = {
            e["name"].rstrip("/").rsplit("/", 1)[-1]
            for e in entries
            if e.get("type") == "directory"
        }
        return sorted(n for n in names if n and not is_hidden(n))

    def exists(self, path: str) -> bool:
        return self.fs.exists(path)

    def delete(self, path: str) -> None:
        try:
            self.fs.rm_file(path)
        except FileNotFoundError:
            pass

    def uri(self, path: str) -> str:
        return "s3://" + path

    def storage_options(self) -> dict[str, Any]:
        return {
            "endpoint_url": self.endpoint_url,
            "region_name": self.region_name,
            "profile": self.profile,
            "connect_timeout": self.connect_timeout,
            "read_timeout": self.read_timeout,
        }


BackendFactory = Callable[..., "tuple[Backend, str]"]

BACKENDS: dict[str, BackendFactory] = {
    "": LocalBackend.from_uri,
    "file": LocalBackend.from_uri,
    "s3": S3Backend.from_uri,
    "s3a": S3Backend.from_uri,
}


def register_backend(scheme: str, factory: BackendFactory) -> None:
    """Make ``scheme://...`` URIs open with ``factory(uri, **options) -> (backend, root)``."""
    BACKENDS[scheme.lower()] = factory


def backend_for_uri(uri: str, **options: Any) -> tuple[Backend, str]:
    """The backend for ``uri`` and the root path inside it."""
    uri = os.fspath(uri)
    scheme = urlsplit(uri).scheme.lower()
    if len(scheme) == 1:  # a Windows drive letter, not a scheme
        scheme = ""
    try:
        factory = BACKENDS[scheme]
    except KeyError:
        raise ValueError(
            f"no results-store backend for scheme {scheme!r} in {uri!r}; known: "
            f"{sorted(s for s in BACKENDS if s)}"
        ) from None
    return factory(uri, **options)
