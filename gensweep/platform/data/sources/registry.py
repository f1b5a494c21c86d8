"""The registry of source kinds: ``KIND:ARG`` strings, file suffixes and bare paths to a source."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from gensweep.platform.data.sources.base import Source, SourceError
from gensweep.platform.storage.uris import StorageOptions, redact_uri

#: ``factory(argument, storage)``: the argument is what follows ``KIND:`` (or the path / URI);
#: ``storage`` reaches object storage for ``s3://`` arguments (credentials: the AWS chain only)
SourceFactory = Callable[[str, StorageOptions], Source]

#: kind -> factory
SOURCE_KINDS: dict[str, SourceFactory] = {}
_SUFFIX_KINDS: dict[str, str] = {}
#: kinds whose argument is a path or ``s3://`` URI (checked for existence before Ray starts)
PATH_KINDS: set[str] = set()


@dataclass(frozen=True)
class _Match:
    kind: str
    matches: Callable[[str], bool]


_MATCHERS: list[_Match] = []


def register_source(kind: str, factory: SourceFactory, *, suffixes: tuple[str, ...] = (),
                    matches: Optional[Callable[[str], bool]] = None, takes_path: bool = False) -> None:
    """Add a source kind usable as ``"KIND:ARG"``; ``suffixes`` (e.g. ``(".npz",)``) also pick it
    for a bare path with that ending, ``matches`` for a bare spec it accepts (e.g. a directory);
    ``takes_path``: its argument is a local path or ``s3://`` URI."""
    SOURCE_KINDS[kind] = factory
    if takes_path or suffixes:
        PATH_KINDS.add(kind)
    for suffix in suffixes:
        _SUFFIX_KINDS[suffix.lower()] = kind
    if matches is not None:
        _MATCHERS.append(_Match(kind, matches))


def source_kind(spec: str) -> tuple[str, str]:
    """Split a source spec into ``(kind, argument)``."""
    head, sep, rest = spec.partition(":")
    if sep and head in SOURCE_KINDS and not rest.startswith("//"):
        return head, rest
    if spec in SOURCE_KINDS:
        return spec, ""
    suffix_kind = _SUFFIX_KINDS.get(Path(spec).suffix.lower())
    if suffix_kind:
        return suffix_kind, spec
    for m in _MATCHERS:
        if m.matches(spec):
            return m.kind, spec
    matched = {m.kind for m in _MATCHERS}
    raise SourceError(
        f"cannot tell what kind of source {redact_uri(spec)!r} is: expected one of "
        f"{sorted(k for k in SOURCE_KINDS if k not in matched)} / 'KIND:ARG', a .npz/.npy file "
        f"or an image folder (local, or s3://bucket/prefix)"
    )


def open_source(spec: str, storage: StorageOptions | None = None) -> Source:
    """The source ``spec`` names; ``s3://`` files and folders are read with ``storage``."""
    kind, arg = source_kind(spec)
    return SOURCE_KINDS[kind](arg, storage or StorageOptions())
