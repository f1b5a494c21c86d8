"""Prepare a source into fingerprinted Parquet shards + ``manifest.json``.

Layout under DEST (local path or ``s3://bucket/prefix``)::

    part-00000.parquet ... part-NNNNN.parquet   # image/label/index, in a seeded permutation
    manifest.json                               # written last

The records go to the shards in a global permutation seeded by ``seed`` (the manifest says
``record_order: permuted`` and ``permutation_seed``), never in source order: sources are often
sorted by class (MNIST, class folders), and a reader that streams the shards in order would
otherwise see one class at a time. The permutation is layout, not content: the fingerprint
(:mod:`gensweep.platform.data.manifest`) is computed over the records in source-index order,
so it does not change with the seed.

Each source image is loaded and transformed once: in source-index order, into a memory-mapped
spill file in the local temporary directory (the prepared images' uncompressed size), while the
fingerprint is computed; the shards are then written from the spill in permuted order.

Re-running with the same content and layout is a no-op (the existing manifest is returned); the
same content laid out otherwise (another seed, or source order from an older version) is laid
out again in place; different content at a DEST that already holds a dataset is an error unless
``overwrite=True``. Local destinations are guarded by a file lock so concurrent preparations of
the same directory serialise; on S3 concurrent writers of the same content write identical
objects and the manifest is a single atomic PUT.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import tempfile
from datetime import datetime, timezone
import numpy as np
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from filelock import FileLock

from gensweep.platform.data.manifest import (
    MANIFEST_NAME,
    Fingerprinter,
    Manifest,
    try_load_manifest_at,
    write_manifest_at,
)
from gensweep.platform.data.records import records_table
from gensweep.platform.data.sources import (
    MNIST_DESCRIPTION,
    Source,
    SourceError,
    open_source,
)
from gensweep.platform.data.sources.decode import RecordError
from gensweep.platform.data.subset import stratified_indices
from gensweep.platform.data.transforms import DEFAULT_FILTER, TargetSpec, resize_mode, transform_images
from gensweep.platform.storage.uris import (
    StorageOptions,
    exists,
    is_local,
    join_uri,
    list_files,
    redact_uri,
    resolve,
)

log = logging.getLogger(__name__)

SHARD_PATTERN = re.compile(r"^part-\d{5,}\.parquet$")
LOCK_NAME = ".gensweep-prepare.lock"
PARQUET_COMPRESSION = "zstd"
BAD_RECORD_POLICIES = ("fail", "skip")
EXAMPLES = 5  # names of skipped records / ignored files kept in the manifest and messages


class DatasetExistsError(FileExistsError):
    """DEST already holds a prepared dataset with different content."""


def shard_name(i: int) -> str:
    return f"part-{i:05d}.parquet"


def target_spec(src: Source, resolution: int | None, channels: int | None, resize: str,
                filter: str = DEFAULT_FILTER) -> TargetSpec:
    resize = resize_mode(resize)
    if resolution is None:
        shape = src.native_shape
        if shape is None or shape[0] != shape[1]:
            raise SourceError(
                f"{src.description}: images are not all the same square size "
                f"({'mixed sizes' if shape is None else f'{shape[0]}x{shape[1]}'}); pass resolution=..."
            )
        resolution = shape[0]
    return TargetSpec(int(resolution), int(channels if channels is not None else src.native_channels), resize, filter)


def record_permutation(count: int, seed: int) -> np.ndarray:
    """The order (positions ``0..count-1``) in which the shards hold the selected records."""
    digest = hashlib.sha256(f"gensweep-prepare-permutation|{int(seed)}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little")).permutation(count)


def _load_chunk(src: Source, chunk: np.ndarray, skip: bool, skipped: list[str]) -> tuple[list, np.ndarray]:
    """The chunk's images and the indices they belong to; unreadable records raise, or are left out
    (and named in ``skipped``) when ``skip``."""
    try:
        return list(src.load(chunk)), chunk
    except RecordError as exc:
        if not skip:
            raise SourceError(f"{exc} (data.bad_records: skip leaves unreadable images out and counts them)") from None
    images, kept = [], []
    for i in chunk:  # one at a time, to tell the readable records from the others
        try:
            images.append(src.load(np.array([i]))[0])
            kept.append(i)
        except RecordError as exc:
            skipped.append(exc.name)
    return images, np.asarray(kept, dtype=chunk.dtype)


def _transform_to_spill(src: Source, spec: TargetSpec, indices: np.ndarray, rows: int, spill: np.ndarray,
                        bad_records: str) -> tuple[str, np.ndarray, list[str]]:
    """Load and transform the records in source-index order into ``spill``; return the fingerprint, the
    indices of the records kept (``spill[:len(kept)]``) and the names of those skipped."""
    skipped: list[str] = []
    kept_parts, filled = [], 0
    for start in range(0, len(indices), rows):
        images, kept = _load_chunk(src, indices[start:start + rows], bad_records == "skip", skipped)
        if len(kept):
            spill[filled:filled + len(kept)] = transform_images(images, spec)
        kept_parts.append(kept)
        filled += len(kept)
    kept = np.concatenate(kept_parts) if kept_parts else indices[:0]
    if not filled:
        raise SourceError(f"{src.description}: none of the {len(indices)} selected images can be read "
                          f"(e.g. {skipped[:EXAMPLES]})")
    fp = Fingerprinter(filled, spec.resolution, spec.resolution, spec.channels)
    for start in range(0, filled, rows):
        end = min(start + rows, filled)
        fp.update(spill[start:end], src.labels[kept[start:end]])
    return fp.hexdigest(), kept, skipped


def _dest_lock(fs, root: str):
    if not isinstance(fs, pafs.LocalFileSystem):
        return contextlib.nullcontext()
    os.makedirs(root, exist_ok=True)
    return FileLock(os.path.join(root, LOCK_NAME))


def _remove(fs, root: str, names: list[str]) -> None:
    for name in names:
        path = f"{root.rstrip('/')}/{name}"
        if exists(fs, path):
            fs.delete_file(path)


def prepare(
    source: str,
    dest: str,
    *,
    resolution: int | None = None,
    channels: int | None = None,
    resize: str = "pad",
    resize_filter: str = DEFAULT_FILTER,
    fraction: float = 1.0,
    seed: int = 0,
    shard_rows: int = 2048,
    storage: StorageOptions | None = None,
    overwrite: bool = False,
    bad_records: str = "fail",
) -> Manifest:
    """Transform ``source`` and write it as Parquet shards + manifest under ``dest``.

    ``resolution``/``channels`` default to the source's own (square, uniform) size and
    channel count. ``fraction < 1`` keeps a seeded, class-stratified subset (rounding
    rule in :mod:`gensweep.platform.data.subset`). An image that cannot be read fails the
    preparation (``bad_records="fail"``, naming it) or is left out and counted (``"skip"``: the
    manifest holds the count and the first few names). Returns the manifest.
    """
    if shard_rows < 1:
        raise ValueError(f"shard_rows must be >= 1, got {shard_rows}")
    if bad_records not in BAD_RECORD_POLICIES:
        raise ValueError(f"bad_records must be one of {BAD_RECORD_POLICIES}, got {bad_records!r}")
    src = open_source(source, storage)
    if src.count == 0:
        raise SourceError(f"{src.description}: no images")
    spec = target_spec(src, resolution, channels, resize, resize_filter)
    selected = stratified_indices(src.labels, fraction, seed)
    if src.ignored:
        log.warning("%s: %d files are not images and were not read (e.g. %s)", src.description,
                    len(src.ignored), ", ".join(src.ignored[:EXAMPLES]))
    fs, root = resolve(dest, storage)

    with _dest_lock(fs, root), tempfile.TemporaryDirectory(prefix="gensweep-prepare-") as tmp:
        spill = np.lib.format.open_memmap(os.path.join(tmp, "images.npy"), mode="w+", dtype=np.uint8,
                                          shape=(len(selected), spec.resolution, spec.resolution, spec.channels))
        fingerprint, indices, skipped = _transform_to_spill(src, spec, selected, shard_rows, spill, bad_records)
        if skipped:
            log.warning("%s: skipped %d unreadable images (data.bad_records: skip), e.g. %s", src.description,
                        len(skipped), ", ".join(skipped[:EXAMPLES]))
        order = record_permutation(len(indices), seed)  # positions into ``indices``
        existing = try_load_manifest_at(fs, root)
        if existing is not None:
            if fingerprint == existing.fingerprint and existing.layout_key == ("permuted", int(seed)):
                log.info("dataset at %s is up to date (%s)", redact_uri(dest), existing.short_fingerprint)
                return existing
            if fingerprint != existing.fingerprint and not overwrite:
                raise DatasetExistsError(
                    f"{redact_uri(dest)!r} already holds a different dataset "
                    f"({existing.short_fingerprint}, source {existing.source!r}); new content would be "
                    f"{fingerprint[len('sha256:'):][:12]}. Pass overwrite=True or choose another destination."
                )
            if fingerprint == existing.fingerprint:
                log.info("dataset at %s: same content (%s), laying it out again (%s order -> permuted, seed %d)",
                         redact_uri(dest), existing.short_fingerprint, existing.record_order, seed)
            # Drop the manifest first: from here on the location reads as incomplete.
            _remove(fs, root, [MANIFEST_NAME])
            _remove(fs, root, existing.shards)
        # Shards left by an interrupted preparation (no manifest) are ours to replace.
        _remove(fs, root, [n for n in list_files(fs, root) if SHARD_PATTERN.match(n)])

        shards, counts = [], []
        for i, start in enumerate(range(0, len(order), shard_rows)):
            rows = order[start:start + shard_rows]
            name = shard_name(i)
            pq.write_table(records_table(spill[rows], src.labels[indices[rows]], indices[rows]),
                           f"{root.rstrip('/')}/{name}", filesystem=fs, compression=PARQUET_COMPRESSION)
            shards.append(name)
            counts.append(int(len(rows)))
        labels_seen = set(int(v) for v in np.unique(src.labels[indices]))

        names = src.label_names
        manifest = Manifest(
            fingerprint=fingerprint,
            count=int(len(indices)),
            resolution=spec.resolution,
            channels=spec.channels,
            labels=sorted(labels_seen),
            label_names={k: v for k, v in names.items() if k in labels_seen} if names else None,
            shards=shards,
            shard_counts=counts,
            source=redact_uri(src.description),
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            fraction=float(fraction),
            seed=int(seed),
            resize=spec.resize,
            record_order="permuted",
            permutation_seed=int(seed),
            resize_filter=spec.filter,
            skipped_records=len(skipped),
            skipped_examples=[redact_uri(n) for n in skipped[:EXAMPLES]],
            ignored_files=len(src.ignored),
            ignored_examples=list(src.ignored[:EXAMPLES]),
        )
        write_manifest_at(fs, root, manifest)
        log.info("prepared %d images (%s) at %s", manifest.count, manifest.short_fingerprint, redact_uri(dest))
        return manifest


def mnist_uri(dest_root: str, resolution: int = 32, channels: int = 1, resize: str = "pad",
              resize_filter: str = DEFAULT_FILTER) -> str:
    name = f"mnist-{resolution}"
    name += "" if channels == 1 else f"-c{channels}"
    name += "" if resize == "pad" else f"-{resize}"
    name += "" if resize_filter == DEFAULT_FILTER else f"-{resize_filter}"
    return join_uri(dest_root, "datasets", name)


def ensure_mnist(
    dest_root: str,
    resolution: int = 32,
    *,
    channels: int = 1,
    resize: str = "pad",
    resize_filter: str = DEFAULT_FILTER,
    storage: StorageOptions | None = None,
) -> str:
    """Prepare the bundled MNIST digits once under ``dest_root/datasets/mnist-R`` and return the URI.

    A copy prepared by an older version in source (class-sorted) order is laid out again.
    Safe to call from several processes at once: for local roots a file lock next to
    the dataset serialises them and later callers find the finished manifest; on S3
    :func:`prepare` is idempotent and the manifest is written atomically last.
    """
    resize = resize_mode(resize)
    uri = mnist_uri(dest_root, resolution, channels, resize, resize_filter)
    # copies from before the filter was recorded hold the same pixels where nothing was resized
    unresized = resize == "pad" and resolution >= 28
    if is_local(dest_root):
        fs, root = resolve(uri)
        parent = os.path.dirname(root)
        os.makedirs(parent, exist_ok=True)
        lock = FileLock(os.path.join(parent, f".{os.path.basename(root)}.lock"))
    else:
        fs, root = resolve(uri, storage)
        lock = contextlib.nullcontext()
    with lock:
        existing = try_load_manifest_at(fs, root)
        if existing is not None and (existing.source, existing.resolution, existing.channels,
                                     existing.resize, existing.fraction, existing.layout_key) == (
                MNIST_DESCRIPTION, resolution, channels, resize, 1.0, ("permuted", 0)) and (
                existing.resize_filter == resize_filter or (existing.resize_filter is None and unresized)):
            return uri
        prepare("mnist", uri, resolution=resolution, channels=channels, resize=resize, resize_filter=resize_filter,
                storage=storage)
    return uri
