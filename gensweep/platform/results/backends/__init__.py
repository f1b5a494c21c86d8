"""Results-store backends: the :class:`Backend` interface, the registry by URI scheme and
the built-in backends (local disk, S3).

Adding a backend is one module here: a :class:`Backend` subclass with a
``from_uri(uri, **options) -> (backend, root)`` factory and a :func:`register_backend` call
for its schemes, imported below so that it registers with the rest.
"""
from .base import BACKENDS, Backend, BackendFactory, backend_for_uri, is_hidden, register_backend
from .local import LocalBackend
from .s3 import S3Backend

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendFactory",
    "LocalBackend",
    "S3Backend",
    "backend_for_uri",
    "is_hidden",
    "register_backend",
]
