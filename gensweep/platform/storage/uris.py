"""Where datasets live: local paths and S3 URIs, as pyarrow / fsspec filesystems.

Credentials are never taken as arguments and never written anywhere: they come from
the standard AWS chain (environment variables, shared config/credential files,
instance/role metadata) of the process that touches the data. A filesystem object
built here is picklable (Ray ships it to read tasks) and carries only the options
below, so each Ray worker resolves credentials from its own environment.
"""
from __future__ import annotations

import os
import posixpath
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

import pyarrow.fs as pafs
from pydantic import BaseModel, ConfigDict

from .local_files import publish_file

S3_SCHEMES = ("s3", "s3a")
LOCAL_SCHEMES = ("", "file")


class StorageOptions(BaseModel):
    """Non-secret options for reaching object storage.

    ``endpoint_url`` falls back to the ``AWS_ENDPOINT_URL`` environment variable (read
    when a filesystem is resolved). ``region`` falls back to the AWS chain
    (``AWS_REGION`` / ``AWS_DEFAULT_REGION`` / profile). ``profile`` names a profile of
    the shared AWS config files. ``anon`` uses unsigned requests (public buckets).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    anon: bool = False

    def effective_endpoint(self) -> str | None:
        return self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None


def scheme_of(uri: str) -> str:
    """Lower-case URI scheme; ``""`` for a plain local path (Windows drive letters too)."""
    if "://" not in uri:
        return ""
    scheme = uri.split("://", 1)[0].lower()
    return scheme


def is_local(uri: str) -> bool:
    return scheme_of(uri) in LOCAL_SCHEMES


def _local_path(uri: str) -> str:
    path = uri[len("file://"):] if scheme_of(uri) == "file" else uri
    return os.path.abspath(os.path.expanduser(path))


def _s3_path(uri: str) -> str:
    rest = uri.split("://", 1)[1].strip("/")
    if not rest or rest.startswith("/"):
        raise ValueError(f"S3 URI without a bucket: {redact_uri(uri)!r}")
    return rest


def _s3fs(storage: StorageOptions):
    import s3fs

    client_kwargs: dict = {}
    if storage.region:
        client_kwargs["region_name"] = storage.region
    kwargs: dict = {
        "anon": storage.anon,
        "client_kwargs": client_kwargs,
        # Each resolve builds its own instance: no stale directory listings across
        # processes and no session captured with another process's credentials.
        "skip_instance_cache": True,
        "use_listings_cache": False,
    }
    endpoint = storage.effective_endpoint()
    if endpoint:
        kwargs["endpoint_url"] = endpoint
    if storage.profile:
        kwargs["profile"] = storage.profile
    return s3fs.S3FileSystem(**kwargs)


def _local_fsspec(storage: StorageOptions):
    from fsspec.implementations.local import LocalFileSystem

    return LocalFileSystem(auto_mkdir=True)


# scheme -> (fsspec filesystem builder, uri -> path understood by that filesystem)
_FSSPEC_BUILDERS: dict[str, tuple[Callable[[StorageOptions], object], Callable[[str], str]]] = {
    "": (_local_fsspec, _local_path),
    "file": (_local_fsspec, _local_path),
    "s3": (_s3fs, _s3_path),
    "s3a": (_s3fs, _s3_path),
}


def _builder(uri: str):
    scheme = scheme_of(uri)
    try:
        return _FSSPEC_BUILDERS[scheme]
    except KeyError:
        raise ValueError(
            f"unsupported storage scheme {scheme!r} in {redact_uri(uri)!r}; "
            f"supported: local paths, file://, s3://"
        ) from None


def fsspec_filesystem(uri: str, storage: StorageOptions | None = None):
    """``(fsspec filesystem, path without scheme)`` for ``uri``."""
    build, to_path = _builder(uri)
    return build(storage or StorageOptions()), to_path(uri)


def resolve(uri: str, storage: StorageOptions | None = None) -> tuple[pafs.FileSystem, str]:
    """``(pyarrow filesystem, path without scheme)`` for ``uri``.

    Local paths and ``file://`` map to :class:`pyarrow.fs.LocalFileSystem` with an
    absolute path. ``s3://bucket/prefix`` maps to a pyarrow ``PyFileSystem`` over
    ``s3fs`` (it honours custom endpoints such as a loopback moto server and pickles
    without credentials) and the path ``bucket/prefix`` -- the form Ray Data wants
    together with an explicit ``filesystem=``.
    """
    scheme = scheme_of(uri)
    _builder(uri)  # validates the scheme
    if scheme in LOCAL_SCHEMES:
        return pafs.LocalFileSystem(), _local_path(uri)
    fs, path = fsspec_filesystem(uri, storage)
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path


def join_uri(uri: str, *parts: str) -> str:
    """Join path components onto a local path or URI (keeps the scheme)."""
    if scheme_of(uri) == "":
        return os.path.join(uri, *parts)
    return posixpath.join(uri.rstrip("/"), *parts)


def redact_uri(uri: str) -> str:
    """Drop user info, query and fragment from a URI so it can be logged or stored."""
    if "://" not in uri:
        return uri
    parts = urlsplit(uri)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def exists(fs: pafs.FileSystem, path: str) -> bool:
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def read_bytes(fs: pafs.FileSystem, path: str) -> bytes:
    with fs.open_input_stream(path) as f:
        return f.read()


def write_bytes_atomic(fs: pafs.FileSystem, path: str, data: bytes) -> None:
    """Write ``data`` so that readers see either nothing or the whole object.

    Local: :func:`~gensweep.platform.storage.local_files.publish_file` (a complete temporary
    sibling renamed into place). Object stores: a single PUT is already atomic.
    """
    if isinstance(fs, pafs.LocalFileSystem):
        publish_file(path, data)
        return
    with fs.open_output_stream(path) as f:
        f.write(data)


def list_files(fs: pafs.FileSystem, path: str) -> list[str]:
    """Base names of the files directly under ``path`` (empty if it does not exist)."""
    if not exists(fs, path):
        return []
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=False, allow_not_found=True))
    return sorted(posixpath.basename(i.path) for i in infos if i.type == pafs.FileType.File)
