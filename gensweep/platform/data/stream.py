"""Stream a prepared dataset through Ray Data into training workers.

:func:`open_dataset` reads the shards listed in the manifest with
``ray.data.read_parquet`` and decodes each batch (numpy format) into

* ``image``: float32 ``(B, C, H, W)`` in [-1, 1] (``x / 127.5 - 1``),
* ``label``: int64 ``(B,)``,
* ``index``: int64 ``(B,)`` (position in the source; lets consumers order rows).

Shuffling while streaming has three layers. :func:`~gensweep.platform.data.prepare.prepare`
already wrote the records in a seeded global permutation across the shards, so any run of
consecutive rows is a fair sample of the classes. With ``shuffle_seed`` set, every pass over the
dataset (every epoch: each one re-executes the read) reads the shards in another order: Ray
Data's file shuffle, seeded by ``(shuffle_seed, n)`` for the n-th execution of this dataset in
the process that executes it (a trial restarted from a checkpoint counts from 0 again). Last,
:class:`~gensweep.platform.data.loader.ShardLoader` draws batches from a local shuffle buffer
seeded by ``(seed, epoch, rank)``.

Bad records (null image or label, image byte length != ``H*W*C``) are never passed
silently:

* ``bad_records="fail"``: the decoding task raises :class:`BadRecordError` naming
  the shard and the row within it (looked up through the ``index`` column), and
  the Ray Data pipeline fails with it.
* ``bad_records="skip"``: the rows are dropped, a warning with shard/row is logged by
  the Ray worker (forwarded to the driver's log), and -- if a
  :class:`BadRecordTally` is passed -- recorded there. The tally lives in a small Ray
  actor, so it sees the drops of every worker; it counts *distinct* records
  (``count()``) and every drop (``occurrences()``, which grows by one per record and
  pass over the data). Without a tally, :func:`count_bad_records` gives the exact
  number by scanning the shards with pyarrow.
"""
from __future__ import annotations

import hashlib
import logging
import posixpath
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import ray
from ray.data import FileShuffleConfig

from gensweep.platform.data.manifest import load_manifest
from gensweep.platform.data.records import (
    INDEX,
    BadRecord,
    BadRecordError,
    check_numpy_batch,
    count_bad_records,
    stack_image_bytes,
    to_unit_float_chw,
)
from gensweep.platform.storage.uris import StorageOptions, join_uri, redact_uri, resolve

log = logging.getLogger(__name__)

BAD_RECORD_POLICIES = ("fail", "skip")
DECODE_BATCH_ROWS = 1024
PATH_COLUMN = "path"

__all__ = ["open_dataset", "BadRecordTally", "block_order_seed", "count_bad_records", "decode_batch", "ingest_execution_options"]


@ray.remote(num_cpus=0)
class _TallyActor:
    def __init__(self):
        self._occurrences = 0
        self._distinct: dict[tuple, BadRecord] = {}

    def add(self, records: list[BadRecord]) -> int:
        for r in records:
            self._occurrences += 1
            self._distinct.setdefault((r.shard, r.row, r.index), r)
        return len(self._distinct)

    def snapshot(self) -> tuple[int, list[BadRecord]]:
        return self._occurrences, list(self._distinct.values())


class BadRecordTally:
    """Cluster-wide count of records dropped by ``open_dataset(..., bad_records="skip")``.

    Create it on the driver (Ray must be initialised) and pass it to
    :func:`open_dataset`; it pickles into the decode tasks as an actor handle.
    """

    def __init__(self):
        self._actor = _TallyActor.remote()

    def add(self, records: list[BadRecord]) -> None:
        # Blocking on purpose: once the batch without these rows is delivered,
        # the drop is already visible to count().
        ray.get(self._actor.add.remote(list(records)))

    def records(self) -> list[BadRecord]:
        return sorted(ray.get(self._actor.snapshot.remote())[1],
                      key=lambda r: (r.shard or "", r.row if r.row is not None else -1))

    def count(self) -> int:
        """Distinct bad records seen so far."""
        return len(ray.get(self._actor.snapshot.remote())[1])

    def occurrences(self) -> int:
        """Drops so far (a bad record counts once per pass over the data)."""
        return ray.get(self._actor.snapshot.remote())[0]


def _row_in_shard(filesystem, path: str | None, index: int | None, cache: dict) -> int | None:
    """Row of ``index`` within shard ``path`` (reads its index column once per batch)."""
    if path is None or index is None or filesystem is None:
        return None
    if path not in cache:
        try:
            cache[path] = pq.read_table(path, filesystem=filesystem, columns=[INDEX]).column(INDEX).to_numpy(
                zero_copy_only=False)
        except Exception:  # noqa: BLE001 - best effort: the error still names shard and index
            cache[path] = None
    indices = cache[path]
    if indices is None:
        return None
    rows = np.flatnonzero(indices == index)
    return int(rows[0]) if rows.size == 1 else None


def _bad_records(batch: dict[str, np.ndarray], bad_rows: np.ndarray, reasons: list[str | None],
                 filesystem, uri: str | None) -> list[BadRecord]:
    paths = batch.get(PATH_COLUMN)
    index = np.asarray(batch[INDEX])
    cache: dict = {}
    out = []
    for i in bad_rows:
        path = str(paths[i]) if paths is not None and paths[i] is not None else None
        idx = None if index.dtype.kind == "f" and np.isnan(index[i]) else int(index[i])
        shard = join_uri(uri, posixpath.basename(path)) if (uri and path) else path
        out.append(BadRecord(shard, _row_in_shard(filesystem, path, idx, cache), idx, reasons[i]))
    return out


def decode_batch(
    batch: dict[str, np.ndarray],
    *,
    shape: tuple[int, int, int],
    policy: str = "fail",
    tally: BadRecordTally | None = None,
    filesystem: Any = None,
    uri: str | None = None,
) -> dict[str, np.ndarray]:
    """Ray Data UDF: raw shard rows -> ``image`` float32 NCHW in [-1, 1], ``label``, ``index``."""
    nbytes = int(np.prod(shape))
    ok, reasons = check_numpy_batch(batch["image"], batch["label"], nbytes)
    if not ok.all():
        records = _bad_records(batch, np.flatnonzero(~ok), reasons, filesystem, uri)
        if policy == "fail":
            raise BadRecordError(records[0], len(records))
        log.warning("skipping %d bad record(s): %s", len(records), "; ".join(map(str, records)))
        if tally is not None:
            tally.add(records)
        batch = {k: np.asarray(v)[ok] for k, v in batch.items()}
    images = stack_image_bytes(batch["image"], tuple(shape))
    return {
        "image": to_unit_float_chw(images),
        "label": np.asarray(batch["label"]).astype(np.int64),
        "index": np.asarray(batch[INDEX]).astype(np.int64),
    }


def block_order_seed(data_seed: int, trial_seed: int) -> int:
    """The ``shuffle_seed`` of a trial's dataset: from ``data.seed`` and the trial's own seed."""
    digest = hashlib.sha256(f"gensweep-block-order|{int(data_seed)}|{int(trial_seed)}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def ingest_execution_options(deterministic: bool = True):
    """Ray Data ``ExecutionOptions`` to hand to ``ray.train.DataConfig(execution_options=...)``.

    Ray Train replaces a dataset's execution options with its own when it splits it
    for workers (by default copied from the driver's ``DataContext``, where
    ``preserve_order`` is False), so the ``deterministic`` flag of :func:`open_dataset`
    must be restated there to survive ingestion.
    """
    import copy

    from ray.data import DataContext

    options = copy.deepcopy(DataContext.get_current().execution_options)
    options.preserve_order = bool(deterministic)
    return options


def open_dataset(
    uri: str,
    storage: StorageOptions | None = None,
    *,
    bad_records: str = "fail",
    tally: BadRecordTally | None = None,
    deterministic: bool = True,
    override_num_blocks: int | None = None,
    shuffle_seed: int | None = None,
) -> "ray.data.Dataset":
    """A Ray Dataset of decoded records of the prepared dataset at ``uri`` (see module doc).

    ``deterministic=True`` sets ``preserve_order`` on this dataset's own DataContext, so
    a single consumer sees blocks in shard order and a seeded local shuffle repeats
    exactly. With ``streaming_split(n > 1)`` the rows each worker gets still depend on
    timing; :class:`ShardLoader`'s materialized mode sorts by ``index`` to stay stable.
    Ray Train overrides these options when it splits the dataset: pass
    :func:`ingest_execution_options` to its ``DataConfig`` to keep them.

    ``shuffle_seed``: read the shards in a seeded order that changes with every pass (see the
    module doc); None keeps the manifest's shard order on every pass.
    """
    if bad_records not in BAD_RECORD_POLICIES:
        raise ValueError(f"bad_records must be one of {BAD_RECORD_POLICIES}, got {bad_records!r}")
    if tally is not None and bad_records != "skip":
        raise ValueError("a BadRecordTally only applies to bad_records='skip'")
    manifest = load_manifest(uri, storage)
    fs, root = resolve(uri, storage)
    paths = [f"{root.rstrip('/')}/{name}" for name in manifest.shards]
    # Shards hold exactly COLUMNS (prepare writes them), so no column projection is needed.
    ds = ray.data.read_parquet(
        paths,
        filesystem=fs,
        include_paths=True,
        override_num_blocks=override_num_blocks,
        shuffle=None if shuffle_seed is None else FileShuffleConfig(seed=int(shuffle_seed) % 2**32,
                                                                    reseed_after_execution=True),
    )
    if deterministic:
        ds.context.execution_options.preserve_order = True
    return ds.map_batches(
        decode_batch,
        batch_format="numpy",
        batch_size=DECODE_BATCH_ROWS,
        fn_kwargs={
            "shape": manifest.image_shape,
            "policy": bad_records,
            "tally": tally,
            "filesystem": fs,
            "uri": redact_uri(uri),
        },
    )
