"""A small prepared dataset decoded once in the driver and put into the object store.

:func:`open_dataset` (Ray Data read + decode tasks) followed by ``materialize()`` gives the same
rows, but starts a Ray Data executor and waits for its read and decode tasks to get CPUs, which
costs far more than reading the shards with pyarrow here and handing the decoded blocks to
``ray.data.from_arrow`` (the numbers: ``benchmarks/bench_sweep_start.py``, BENCHMARKS.md). A sweep
pays it before its first trial starts, so it weighs on sweep utilisation.

The rows and columns are those of :func:`open_dataset` (``image`` float32 NCHW in [-1, 1],
``label``, ``index``; index order). Bad records under ``bad_records="fail"`` raise the same
:class:`BadRecordError`; under ``"skip"`` a dataset with bad records goes through
:func:`open_dataset`, whose decoder logs and drops each one.
"""
from __future__ import annotations

from typing import Any

from gensweep.platform.data.records import (
    BadRecordError,
    read_arrays,
    to_unit_float_chw,
)
from gensweep.platform.data.stream import DECODE_BATCH_ROWS, open_dataset
from gensweep.platform.storage.uris import StorageOptions


def materialized_dataset(uri: str, storage: StorageOptions | None = None, *,
                         bad_records: str = "fail") -> Any:
    """A ``ray.data.MaterializedDataset`` of every decoded record of the prepared dataset at ``uri``."""
    import ray.data
    from ray.data.block import BlockAccessor

    try:
        images, labels, index = read_arrays(uri, storage, return_index=True)
    except BadRecordError:
        if bad_records != "skip":
            raise
        return open_dataset(uri, storage, bad_records=bad_records).materialize()
    blocks = [
        BlockAccessor.batch_to_block({
            "image": to_unit_float_chw(images[s:s + DECODE_BATCH_ROWS]),
            "label": labels[s:s + DECODE_BATCH_ROWS],
            "index": index[s:s + DECODE_BATCH_ROWS],
        })
        for s in range(0, len(images), DECODE_BATCH_ROWS)
    ]
    return ray.data.from_arrow(blocks)
