"""S3 backend of the results store: ``s3://`` and ``s3a://`` URIs, through s3fs.

Each write is one PUT of the whole object (multipart uploads of very large objects are
likewise invisible until completed), so readers never see a partial part file. Credentials
come from the standard AWS chain (environment, profile, instance role) of the process.
"""
from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from .base import Backend, is_hidden, register_backend


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

    def read_bytes(self, path: str, limit: int | None = None) -> bytes:
        return self.fs.cat_file(path) if limit is None else self.fs.cat_file(path, start=0, end=limit)

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


register_backend(("s3", "s3a"), S3Backend.from_uri)
