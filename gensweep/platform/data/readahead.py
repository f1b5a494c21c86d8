"""Read a streamed shard ahead of the training loop, across epoch boundaries: :class:`ReadAhead`.

A streamed epoch is a new Ray Data execution: its reads start, and the local shuffle buffer fills,
before the first batch comes out. Iterated in the training loop's own thread, that start-up is
loader wait at the beginning of every epoch. :class:`ReadAhead` iterates the epochs in a
background thread, one after the other, keeping up to ``depth`` batches in a bounded queue: while
the loop trains on the last batches of epoch ``e``, the thread has already started epoch ``e + 1``.
The batches and their order are exactly those of iterating the epochs one by one in the loop;
only the time they are read differs.

The thread holds no more than ``depth`` batches (memory: ``depth`` times a batch), and stops at
:meth:`close` (or when a consumer asks for an epoch other than the next one, which restarts it
there). An exception raised by the data pipeline is raised in the consumer, at the batch where it
happened.
"""
from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Iterator, Optional

__all__ = ["ReadAhead"]

_BATCH, _END, _ERROR = 0, 1, 2
_POLL_S = 0.1  # how often a blocked producer checks whether it was closed


class _Producer(threading.Thread):
    """Puts ``(kind, epoch, payload)`` items for epochs ``first, first + 1, ...`` into ``out``."""

    def __init__(self, epoch_iter: Callable[[int], Iterator[Any]], first: int, depth: int):
        super().__init__(name=f"gensweep-readahead-{first}", daemon=True)
        self.epoch_iter = epoch_iter
        self.first = first
        self.out: queue.Queue = queue.Queue(maxsize=depth)
        self.stopped = threading.Event()

    def _put(self, item: tuple) -> bool:
        while not self.stopped.is_set():
            try:
                self.out.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def run(self) -> None:
        epoch = self.first
        while not self.stopped.is_set():
            try:
                for batch in self.epoch_iter(epoch):
                    if not self._put((_BATCH, epoch, batch)):
                        return
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
                self._put((_ERROR, epoch, exc))
                return
            if not self._put((_END, epoch, None)):
                return
            epoch += 1

    def stop(self) -> None:
        self.stopped.set()
        while True:  # unblock a put in progress and free the queued batches
            try:
                self.out.get_nowait()
            except queue.Empty:
                break
        self.join(timeout=5 * _POLL_S)


class ReadAhead:
    """Epochs of ``epoch_iter(epoch)`` read ``depth`` batches ahead in a background thread.

    One consumer at a time (the training loop); the thread is the only other party.
    """

    def __init__(self, epoch_iter: Callable[[int], Iterator[Any]], depth: int):
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.epoch_iter = epoch_iter
        self.depth = int(depth)
        self._producer: Optional[_Producer] = None
        self._next_epoch: Optional[int] = None  # the epoch a continuing consumer asks for next
        self._current = 0  # the epoch of the queue's next item

    @property
    def running(self) -> bool:
        return self._producer is not None and self._producer.is_alive()

    def start(self, epoch: int) -> None:
        """Begin reading ``epoch`` now, before the loop asks for it (no-op while reading)."""
        if self._producer is None:
            self._restart(epoch)
            self._next_epoch = epoch

    def epoch(self, epoch: int) -> Iterator[Any]:
        """The batches of ``epoch``. Asking for the epoch after the last one asked for (whether or
        not that one was read to its end) continues the read-ahead; any other epoch restarts it."""
        if self._producer is None or epoch != self._next_epoch:
            self._restart(epoch)
        producer = self._producer
        while self._current < epoch:  # drop what is left of the epoch a loop stopped early
            self._take(producer)
        self._next_epoch = epoch + 1
        return self._serve(producer, epoch)

    def _restart(self, epoch: int) -> None:
        if self._producer is not None:
            self._producer.stop()
        self._producer = _Producer(self.epoch_iter, epoch, self.depth)
        self._producer.start()
        self._current = epoch

    def _take(self, producer: _Producer) -> tuple:
        """The queue's next item; an end marker moves ``_current`` on, an error is raised."""
        while True:
            try:
                kind, item_epoch, payload = producer.out.get(timeout=_POLL_S)
                break
            except queue.Empty:
                if not producer.is_alive() and producer.out.empty():
                    raise RuntimeError("the read-ahead thread ended without finishing the epoch") from None
        if kind == _ERROR:
            raise payload
        if kind == _END:
            self._current = item_epoch + 1
        return kind, payload

    def _serve(self, producer: _Producer, epoch: int) -> Iterator[Any]:
        while self._producer is producer and self._current == epoch:
            kind, payload = self._take(producer)
            if kind == _END:
                return
            yield payload

    def close(self) -> None:
        """Stop the thread and drop the batches it read ahead."""
        if self._producer is not None:
            self._producer.stop()
        self._producer, self._next_epoch = None, None
