"""ReadAhead: a streamed shard's epochs read in a background thread, ahead of the loop.

No Ray: the epochs come from plain generators that record when they start and what they yield.
Every wait below is bounded (``_until``).
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from gensweep.platform.data import ShardLoader
from gensweep.platform.data.readahead import ReadAhead

BATCHES = 5  # per epoch


def _until(condition, timeout=5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


class Epochs:
    """``epoch -> iterator of (epoch, i)``; records each epoch's start and every batch yielded."""

    def __init__(self, batches=BATCHES, fail_at=None):
        self.batches, self.fail_at = batches, fail_at
        self.started: list[int] = []
        self.yielded = 0
        self.lock = threading.Lock()

    def __call__(self, epoch):
        with self.lock:
            self.started.append(epoch)
        for i in range(self.batches):
            if self.fail_at == (epoch, i):
                raise OSError(f"shard unreadable at epoch {epoch} batch {i}")
            with self.lock:
                self.yielded += 1
            yield (epoch, i)


def test_epochs_come_out_whole_and_in_order():
    source = Epochs()
    ra = ReadAhead(source, depth=3)
    try:
        got = [list(ra.epoch(e)) for e in range(3)]
    finally:
        ra.close()
    assert got == [[(e, i) for i in range(BATCHES)] for e in range(3)]
    assert source.started[:3] == [0, 1, 2]


def test_the_next_epoch_starts_while_the_loop_still_holds_the_last_batches():
    source = Epochs()
    ra = ReadAhead(source, depth=3)
    try:
        it = ra.epoch(0)
        for _ in range(BATCHES - 1):  # the loop is busy with epoch 0's second-to-last batch
            next(it)
        assert _until(lambda: 1 in source.started), source.started
        assert next(it) == (0, BATCHES - 1)
        assert list(it) == []
        assert list(ra.epoch(1)) == [(1, i) for i in range(BATCHES)]
    finally:
        ra.close()


def test_it_holds_at_most_depth_batches_ahead():
    source = Epochs(batches=100)
    ra = ReadAhead(source, depth=4)
    try:
        it = ra.epoch(0)
        assert next(it) == (0, 0)
        assert _until(lambda: source.yielded >= 5)
        time.sleep(0.3)  # give a runaway producer the time to show itself
        # 1 taken + 4 queued + at most 1 in the producer's hand, blocked on the full queue
        assert 5 <= source.yielded <= 6
    finally:
        ra.close()


def test_an_epoch_left_early_is_dropped_and_the_next_one_is_whole():
    source = Epochs()
    ra = ReadAhead(source, depth=2)
    try:
        it = ra.epoch(0)
        assert [next(it), next(it)] == [(0, 0), (0, 1)]
        assert list(ra.epoch(1)) == [(1, i) for i in range(BATCHES)]
        assert list(it) == []  # the abandoned epoch serves nothing more
        assert source.started[:2] == [0, 1]  # continued, not restarted
    finally:
        ra.close()


def test_an_epoch_out_of_sequence_restarts_the_reads_there():
    source = Epochs()
    ra = ReadAhead(source, depth=2)
    try:
        assert list(ra.epoch(0)) == [(0, i) for i in range(BATCHES)]
        assert list(ra.epoch(7)) == [(7, i) for i in range(BATCHES)]
        assert list(ra.epoch(0)) == [(0, i) for i in range(BATCHES)]  # a resumed loop going back
        assert 7 in source.started and source.started.count(0) == 2
    finally:
        ra.close()


def test_a_pipeline_error_is_raised_in_the_loop_at_its_batch():
    ra = ReadAhead(Epochs(fail_at=(1, 2)), depth=8)
    try:
        assert len(list(ra.epoch(0))) == BATCHES
        it = ra.epoch(1)
        assert [next(it), next(it)] == [(1, 0), (1, 1)]
        with pytest.raises(OSError, match="epoch 1 batch 2"):
            next(it)
    finally:
        ra.close()


def test_close_stops_the_thread_and_a_later_epoch_starts_it_again():
    source = Epochs(batches=1000)
    ra = ReadAhead(source, depth=2)
    it = ra.epoch(0)
    next(it)
    assert ra.running
    ra.close()
    assert _until(lambda: not ra.running)
    assert list(it) == []
    assert list(ra.epoch(3))[:2] == [(3, 0), (3, 1)]
    ra.close()
    with pytest.raises(ValueError, match="depth"):
        ReadAhead(source, depth=0)


class FakeStreamShard:
    """Rows 0..n-1 served like a Ray DataIterator: a seeded local shuffle per call."""

    def __init__(self, n=200):
        self.images = np.arange(n, dtype=np.float32)[:, None, None, None] * np.ones((1, 1, 2, 2), np.float32)
        self.labels = np.arange(n) % 10

    def iter_batches(self, *, batch_size, batch_format, drop_last, local_shuffle_seed=None, **_):
        assert batch_format == "numpy"
        order = np.random.default_rng(local_shuffle_seed).permutation(len(self.labels))
        stop = len(order) - len(order) % batch_size if drop_last else len(order)
        for s in range(0, stop, batch_size):
            rows = order[s:s + batch_size]
            yield {"image": self.images[rows], "label": self.labels[rows]}


def test_a_streamed_loader_gives_the_same_batches_with_and_without_read_ahead():
    def epochs(loader):
        try:
            return [[(b["image"][:, 0, 0, 0].tolist(), b["label"].tolist()) for b in loader.epoch_batches(e)]
                    for e in range(3)]
        finally:
            loader.close()

    kwargs = dict(batch_size=32, seed=5, rank=1, mode="stream", hflip=True)
    ahead = ShardLoader(FakeStreamShard(), readahead_batches=4, **kwargs)
    inline = ShardLoader(FakeStreamShard(), readahead_batches=0, **kwargs)
    got = epochs(ahead)
    assert got == epochs(inline)
    assert got[0] != got[1]  # each epoch its own shuffle
    assert all(len(e) == 200 // 32 for e in got)
    assert isinstance(ahead.epoch_batches(0).__next__()["image"], torch.Tensor)
    ahead.close()
    with pytest.raises(ValueError, match="readahead_batches"):
        ShardLoader(FakeStreamShard(), readahead_batches=-1, **kwargs)


def test_start_reads_an_epoch_before_the_loop_asks_and_the_loop_continues_it():
    source = Epochs()
    ra = ReadAhead(source, depth=2)
    try:
        ra.start(0)
        assert _until(lambda: source.yielded >= 1)  # reading before anyone asked
        ra.start(0)  # while reading: nothing new
        assert list(ra.epoch(0)) == [(0, i) for i in range(BATCHES)]
        assert source.started[:1] == [0] and source.started.count(0) == 1  # continued, not restarted
    finally:
        ra.close()


class CountingShard(FakeStreamShard):
    def __init__(self, n=200):
        super().__init__(n)
        self.seeds = []  # local_shuffle_seed of each pass (one per epoch)

    def iter_batches(self, **kwargs):
        self.seeds.append(kwargs["local_shuffle_seed"])
        yield from super().iter_batches(**kwargs)


def test_a_loader_primes_only_a_shard_it_will_stream():
    kwargs = dict(batch_size=32, seed=5, materialize_max_bytes=1000, readahead_batches=2)
    big = CountingShard()
    streaming = ShardLoader(big, expected_bytes=1001, **kwargs)
    try:
        assert streaming.prime(0) and streaming.mode == "stream"
        assert _until(lambda: len(big.seeds) == 1)  # the first epoch's pass began before the loop
        primed = [b["label"].tolist() for b in streaming.epoch_batches(0)]
        assert big.seeds[0] == streaming._ray_seed(0) and big.seeds.count(big.seeds[0]) == 1  # not restarted
    finally:
        streaming.close()
    plain = ShardLoader(CountingShard(), readahead_batches=0, mode="stream", batch_size=32, seed=5)
    assert primed == [b["label"].tolist() for b in plain.epoch_batches(0)]

    small = CountingShard()
    keeping = ShardLoader(small, expected_bytes=1000, **kwargs)
    assert not keeping.prime(0) and keeping.mode == "materialize" and small.seeds == []
    assert not ShardLoader(CountingShard(), **kwargs).prime(0)  # auto without a size: decided by the first pass
