"""A Train worker's share of a dataset the driver already materialized, read from the object store.

When the sweep driver has materialized the prepared dataset (see
``gensweep.platform.sweep.setup.shared_dataset``), its decoded blocks already sit in the Ray object
store. Handing that dataset to ``TorchTrainer(datasets=...)`` would still make every trial start
a ``DatasetManager`` actor and a streaming-split coordinator actor (two more worker processes,
each importing Ray Data) and run a Ray Data executor, only to pass those same blocks on. Instead,
:class:`SharedBlocks` holds the references to the blocks (a few bytes each, picklable into the
training function's config) and :meth:`SharedBlocks.shard` gives each rank a :class:`BlockShard`
that reads them with ``ray.get`` (zero-copy on the node that holds them).

Rows go to ranks by their ``index`` column, never by block order (which Ray does not fix): with
all rows sorted by index, rank ``r`` of ``w`` takes sorted positions ``r, r + w, r + 2w, ...``,
and every rank the same number of rows, ``n // w`` (like Ray Train's equal split). Every rank
reads the small index column of every block to make the same assignment on its own.

``BlockShard.iter_batches`` is the subset of Ray's ``DataIterator.iter_batches`` that
:class:`~gensweep.platform.data.loader.ShardLoader` calls, so the loader treats a shared shard
like a Ray Train shard. Batches are gathered from the blocks, so no copy of the shard is made
beyond the batch itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Optional

import numpy as np

COLUMNS = ("image", "label", "index")


@dataclass(frozen=True)
class SharedBlocks:
    """References to the blocks of a materialized Ray Dataset (each with an optional row slice)."""

    refs: tuple[Any, ...]
    slices: tuple[Optional[tuple[int, int]], ...]

    @classmethod
    def of(cls, dataset: Any) -> "SharedBlocks":
        """The blocks of ``dataset``, which must be a ``ray.data.MaterializedDataset``."""
        from ray.data.dataset import MaterializedDataset

        if not isinstance(dataset, MaterializedDataset):
            raise TypeError(f"SharedBlocks needs a materialized dataset, got {type(dataset).__name__}")
        refs, slices = [], []
        for bundle in dataset.iter_internal_ref_bundles():
            for entry, part in zip(bundle.blocks, bundle.slices):
                refs.append(entry.ref)
                slices.append(None if part is None else (int(part.start_offset), int(part.end_offset)))
        return cls(tuple(refs), tuple(slices))

    def fields(self) -> dict[str, tuple]:
        """Plain keyword arguments that rebuild this object (for configs read where gensweep is not imported)."""
        return {"refs": self.refs, "slices": self.slices}

    def shard(self, rank: int, world_size: int) -> "BlockShard":
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        return BlockShard(self, rank, world_size)


def read_block(block: Any, part: Optional[tuple[int, int]]) -> dict[str, np.ndarray]:
    """The ``image``, ``label`` and ``index`` columns of one block (an Arrow table or pandas
    frame, as Ray Data stores it) as numpy arrays, cut to ``part`` when given."""
    from ray.data.block import BlockAccessor

    cols = BlockAccessor.for_block(block).to_numpy(list(COLUMNS))
    if part is not None:
        cols = {k: v[part[0]:part[1]] for k, v in cols.items()}
    return cols


class BlockShard:
    """Rank ``rank`` of ``world_size``'s rows of a :class:`SharedBlocks` (see module doc)."""

    def __init__(self, blocks: SharedBlocks, rank: int, world_size: int):
        self.blocks = blocks
        self.rank = int(rank)
        self.world_size = int(world_size)
        self._columns: Optional[list[dict[str, np.ndarray]]] = None
        self._block_of: Optional[np.ndarray] = None  # per shard row (in index order): its block
        self._offset: Optional[np.ndarray] = None  # ... and its row within that block

    def _load(self) -> None:
        import ray

        self._columns = [read_block(b, part) for b, part in zip(ray.get(list(self.blocks.refs)), self.blocks.slices)]
        sizes = np.array([len(c["index"]) for c in self._columns], dtype=np.int64)
        index = np.concatenate([c["index"] for c in self._columns]) if self._columns else np.zeros(0, np.int64)
        per_rank = len(index) // self.world_size
        mine = np.argsort(index, kind="stable")[self.rank::self.world_size][:per_rank]
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self._block_of = np.searchsorted(starts, mine, side="right") - 1
        self._offset = mine - starts[self._block_of]

    @property
    def num_rows(self) -> int:
        if self._block_of is None:
            self._load()
        return int(len(self._block_of))

    def _gather(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        block_of, offset = self._block_of[rows], self._offset[rows]
        first = self._columns[int(block_of[0])]
        out = {k: np.empty((len(rows),) + first[k].shape[1:], dtype=first[k].dtype) for k in COLUMNS}
        for b in np.unique(block_of):
            at = block_of == b
            for k in COLUMNS:
                out[k][at] = self._columns[int(b)][k][offset[at]]
        return out

    def iter_batches(self, *, batch_size: int, batch_format: str = "numpy", drop_last: bool = False,
                     local_shuffle_seed: Optional[int] = None, **_ray_only: Any) -> Iterator[dict[str, np.ndarray]]:
        """Numpy batches of the shard's rows: in index order, or in a permutation seeded by
        ``local_shuffle_seed`` (a full shuffle: every row is addressable, so Ray's shuffle buffer
        size, like its prefetch settings, has nothing to bound here)."""
        if batch_format != "numpy":
            raise ValueError(f"BlockShard yields numpy batches, not {batch_format!r}")
        n = self.num_rows
        rows = np.arange(n)
        if local_shuffle_seed is not None:
            rows = np.random.default_rng(local_shuffle_seed).permutation(n)
        stop = (n // batch_size) * batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            yield self._gather(rows[start:start + batch_size])
