"""Dataset preparation (sources -> fingerprinted Parquet shards) and streaming into Ray Train.

Importing this package does not import Ray; :func:`open_dataset` and
:class:`BadRecordTally` import it lazily on first use.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gensweep.platform.data.loader import ShardLoader
from gensweep.platform.data.manifest import (
    DatasetNotFoundError,
    Manifest,
    load_manifest,
    short_fingerprint,
)
from gensweep.platform.data.prepare import (
    DatasetExistsError,
    ensure_mnist,
    mnist_uri,
    prepare,
)
from gensweep.platform.data.records import (
    BadRecord,
    BadRecordError,
    count_bad_records,
    read_arrays,
)
from gensweep.platform.data.sources import (
    SOURCE_KINDS,
    Source,
    SourceError,
    open_source,
    register_source,
)
from gensweep.platform.data.transforms import RESIZE_MODES, TargetSpec
from gensweep.platform.storage.uris import StorageOptions, fsspec_filesystem, resolve

if TYPE_CHECKING:  # pragma: no cover
    from gensweep.platform.data.stream import (
        BadRecordTally,
        ingest_execution_options,
        open_dataset,
    )

_LAZY = {"open_dataset", "BadRecordTally", "ingest_execution_options"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from gensweep.platform.data import stream

        return getattr(stream, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BadRecord",
    "BadRecordError",
    "BadRecordTally",
    "DatasetExistsError",
    "DatasetNotFoundError",
    "Manifest",
    "RESIZE_MODES",
    "SOURCE_KINDS",
    "ShardLoader",
    "Source",
    "SourceError",
    "StorageOptions",
    "TargetSpec",
    "count_bad_records",
    "ensure_mnist",
    "fsspec_filesystem",
    "ingest_execution_options",
    "load_manifest",
    "mnist_uri",
    "open_dataset",
    "open_source",
    "prepare",
    "read_arrays",
    "register_source",
    "resolve",
    "short_fingerprint",
]
