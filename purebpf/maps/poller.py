"""Several ring buffers behind one epoll (libbpf's ``struct ring_buffer``).

libbpf's ``ring_buffer__new`` / ``ring_buffer__add`` put the fds of many
``BPF_MAP_TYPE_RINGBUF`` maps into one epoll instance; ``ring_buffer__poll``
waits once and then drains every ring that is ready, each with its own
callback.  :class:`RingBufferPoller` is that, over :class:`RingBuffer`
readers:

>>> poller = RingBufferPoller()
>>> poller.add(obj.maps["events"], on_event)
>>> poller.add(obj.maps["errors"], on_error)
>>> while running:
...     poller.poll(timeout=0.1)

Callback rules are those of :class:`~purebpf.maps.ringbuf.RingBuffer`: a
non-zero int return stops the current poll, an exception propagates with
the ring consistent.
"""

from __future__ import annotations

import select
from typing import Any, Callable, Dict, List, Optional, Union

from purebpf.errors import StateError
from purebpf.maps.batch import RecordBatch
from purebpf.maps.map import Map
from purebpf.maps.ringbuf import RingBuffer, RingCallback, callback_stops, timeout_seconds

__all__ = ["RingBufferPoller", "RingBufferBuilder", "BatchCallback"]

#: ``callback(batch)`` of a ring added with ``batch=True``; a non-zero int stops the poll.
BatchCallback = Callable[[RecordBatch], object]


class RingBufferPoller:
    """Many ring buffers, one epoll; the readers it creates are closed by :meth:`close`."""

    def __init__(self) -> None:
        self._epoll: Optional["select.epoll"] = select.epoll()
        self._readers: List[RingBuffer] = []
        self._callbacks: List[Callable[[Any], object]] = []
        self._owned: List[bool] = []
        self._batched: List[bool] = []
        self._index: Dict[int, int] = {}

    def add(self, ring: Union[Map, RingBuffer], callback: Union[RingCallback, BatchCallback], *,
            batch: bool = False) -> RingBuffer:
        """Watch ``ring`` (a RINGBUF map, or an existing reader) with ``callback(data)``.

        With ``batch=True`` the callback is called once per ring and drain
        with a :class:`~purebpf.maps.batch.RecordBatch` of every ready record
        (:meth:`RingBuffer.read_batch`) instead of once per record -- the
        fast form for busy rings.  The batch is consumed before the
        callback runs; a non-zero int return value still stops the poll.
        """
        epoll = self._check_open()
        owned = not isinstance(ring, RingBuffer)
        reader = RingBuffer(ring) if isinstance(ring, Map) else ring
        try:
            epoll.register(reader.fileno(), select.EPOLLIN)
        except BaseException:
            if owned:
                reader.close()
            raise
        self._index[reader.fileno()] = len(self._readers)
        self._readers.append(reader)
        self._callbacks.append(callback)
        self._owned.append(owned)
        self._batched.append(batch)
        return reader

    @property
    def readers(self) -> List[RingBuffer]:
        return list(self._readers)

    def _check_open(self) -> "select.epoll":
        if self._epoll is None:
            raise StateError("ring buffer poller is closed")
        return self._epoll

    def _drain(self, indexes: List[int], limit: Optional[int]) -> int:
        total = 0
        for i in indexes:
            left = None if limit is None else limit - total
            if left is not None and left <= 0:
                break
            if self._batched[i]:
                count, stopped = self._drain_batches(i, left)
            else:
                count, stopped = self._readers[i]._drain(None, self._callbacks[i], left)
            total += count
            if stopped:
                break
        return total

    def _drain_batches(self, i: int, limit: Optional[int]) -> "tuple[int, bool]":
        """Batches of ring ``i`` to its callback until it is empty: (records, stopped)."""
        total = 0
        while limit is None or total < limit:
            batch = self._readers[i].read_batch(None if limit is None else limit - total)
            if not batch:
                break
            total += len(batch)
            if callback_stops(self._callbacks[i](batch)):
                return total, True
        return total, False

    def consume(self, limit: Optional[int] = None) -> int:
        """Drain every ring now (ring order of :meth:`add`); the number of records handled."""
        self._check_open()
        return self._drain(list(range(len(self._readers))), limit)

    def poll(self, timeout: Optional[float] = None, *, timeout_ms: Optional[int] = None) -> int:
        """Wait up to ``timeout`` seconds (None: forever), then drain the ready rings.

        Returns the number of records handled (0 after a timeout).
        """
        wait = timeout_seconds(timeout, timeout_ms)
        events = self._check_open().poll(wait)
        ready = sorted(self._index[fd] for fd, _ev in events if fd in self._index)
        return self._drain(ready, None)

    def fileno(self) -> int:
        """The epoll fd, for an outer event loop."""
        return self._check_open().fileno()

    def close(self) -> None:
        """Close the epoll and the readers :meth:`add` created (idempotent)."""
        for reader, owned in zip(self._readers, self._owned):
            if owned:
                reader.close()
        self._readers, self._callbacks, self._owned, self._index = [], [], [], {}
        self._batched = []
        if self._epoll is not None:
            self._epoll.close()
            self._epoll = None

    @property
    def closed(self) -> bool:
        return self._epoll is None

    def __enter__(self) -> "RingBufferPoller":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RingBufferBuilder:
    """libbpf-rs style: ``RingBufferBuilder().add(map, cb).add(map2, cb2).build()``."""

    def __init__(self) -> None:
        self._entries: List["tuple[Union[Map, RingBuffer], Callable[[Any], object], bool]"] = []

    def add(self, ring: Union[Map, RingBuffer], callback: Union[RingCallback, BatchCallback], *,
            batch: bool = False) -> "RingBufferBuilder":
        """See :meth:`RingBufferPoller.add`."""
        self._entries.append((ring, callback, batch))
        return self

    def build(self) -> RingBufferPoller:
        poller = RingBufferPoller()
        try:
            for ring, callback, batch in self._entries:
                poller.add(ring, callback, batch=batch)
        except BaseException:
            poller.close()
            raise
        return poller
