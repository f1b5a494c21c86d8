"""The interface every results-store backend implements, and the registry of backends by scheme.

A backend works on its own path strings (an absolute local path, or ``bucket/key``
for S3) and promises:

* ``write_bytes`` is atomic: readers see either no object or the whole object,
  and parent folders are created as needed.
* ``list`` returns visible files only: names that start with ``_`` or ``.`` (temp
  files, markers) are skipped, at any depth.

Backends are picked by URI scheme from :data:`BACKENDS`. A backend is one module of
this package that defines a :class:`Backend` subclass and calls :func:`register_backend`
for its schemes (see :mod:`.local` and :mod:`.s3`). Credentials are never taken nor stored.
"""
from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import Any, Callable, Iterable
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
    def read_bytes(self, path: str, limit: int | None = None) -> bytes:
        """Whole content of ``path``, or at most its first ``limit`` bytes; FileNotFoundError when absent."""

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

    def clean_temp(self, root: str, older_than_s: float) -> int:
        """Remove temp files under ``root`` that a killed writer left, older than ``older_than_s``;
        returns how many. Backends whose writes leave no temp files have nothing to do."""
        return 0


BackendFactory = Callable[..., "tuple[Backend, str]"]

# URI scheme ("" for a plain path) -> factory; filled by the backend modules as they are imported.
BACKENDS: dict[str, BackendFactory] = {}


def register_backend(scheme: str | Iterable[str], factory: BackendFactory) -> None:
    """Make ``scheme://...`` URIs (one scheme or several) open with
    ``factory(uri, **options) -> (backend, root)``."""
    for name in [scheme] if isinstance(scheme, str) else scheme:
        BACKENDS[name.lower()] = factory


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
