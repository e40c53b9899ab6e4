"""Reading a BPF ring buffer (``BPF_MAP_TYPE_RINGBUF``) from user space.

The kernel side (kernel/bpf/ringbuf.c) lays the map out for ``mmap``:

* offset 0, one page, read/write for user space: the *consumer page*, whose
  first 8 bytes are ``consumer_pos``;
* offset ``page_size``, read-only: the *producer page* (``producer_pos`` in
  its first 8 bytes) followed by the data area of ``max_entries`` bytes,
  mapped **twice** in a row so that a record crossing the end of the area
  can be read as one contiguous slice.

Each record starts with an 8-byte header (``BPF_RINGBUF_HDR_SZ``): a u32
length carrying two flag bits -- ``BPF_RINGBUF_BUSY_BIT`` (1 << 31, still
being written) and ``BPF_RINGBUF_DISCARD_BIT`` (1 << 30, dropped by the
program) -- and a u32 page offset used by the kernel only.  Records are
8-byte aligned.  The consumer reads from ``consumer_pos`` up to
``producer_pos``, stops at a busy record, skips discarded ones, and then
stores the new ``consumer_pos`` so the kernel can reuse the space -- the same
loop as libbpf's ``ringbuf_process_ring``.

Callbacks and errors follow libbpf: the consumer position is moved past a
record *before* its callback runs, so

* a callback that returns a non-zero int stops the current consume/poll
  after that record (the record counts as consumed, the rest stays queued);
* a callback that raises has its record consumed too; the exception reaches
  the caller, and the next :meth:`RingBuffer.consume` starts at the record
  after it -- nothing is delivered twice, nothing after it is lost.

Records are handed out as ``bytes`` copied out of the mapping, so they stay
valid after the callback returns and after the kernel reuses the space.

Positions are read and written as aligned 8-byte words of the shared
mapping; on x86-64 (total store order) these plain accesses give the
acquire/release ordering the protocol needs.
"""

from __future__ import annotations

import mmap
import operator
import select
import struct
from typing import Any, Callable, Iterator, List, Optional, Tuple

from purebpf.errors import NotSupportedError, StateError
from purebpf.maps.batch import RecordBatch, same_at_stride
from purebpf.maps.map import Map
from purebpf.uapi import MapType

__all__ = ["RingBuffer", "RingCallback", "BUSY_BIT", "DISCARD_BIT", "HEADER_SIZE",
           "callback_stops", "timeout_seconds"]

BUSY_BIT = 1 << 31
DISCARD_BIT = 1 << 30
HEADER_SIZE = 8

_U64 = struct.Struct("=Q")
_U32 = struct.Struct("=I")
_LEN_MASK = ~(BUSY_BIT | DISCARD_BIT) & 0xFFFFFFFF
_EMPTY = RecordBatch()

#: ``callback(data)``; a non-zero int return value stops consumption.
RingCallback = Callable[[bytes], object]


def callback_stops(result: object) -> bool:
    """True when a callback's return value asks to stop (a non-zero int, as in libbpf)."""
    return isinstance(result, int) and result != 0


def run_callbacks(callback: Callable[[Any], object], records: List[Any],
                  on_raise: Callable[[int], None]) -> Optional[int]:
    """Call ``callback`` on each record: None, or how many ran when one asked to stop.

    The loop runs in C (``filter`` over ``map``): only a truthy return value
    comes back to Python, to check whether it is a non-zero int (libbpf's
    "stop" signal).  When a callback raises, ``on_raise(n)`` is called with
    the number of records handed out, the one that raised included, before
    the exception propagates -- the caller stores its position past them.
    """
    taken = iter(records)
    try:
        for result in filter(None, map(callback, taken)):
            if isinstance(result, int):
                return len(records) - operator.length_hint(taken)
    except BaseException:
        on_raise(len(records) - operator.length_hint(taken))
        raise
    return None


def timeout_seconds(timeout: Optional[float], timeout_ms: Optional[int]) -> float:
    """The epoll timeout in seconds from ``timeout`` (s) or ``timeout_ms``; -1 waits forever."""
    if timeout_ms is not None:
        if timeout is not None:
            raise ValueError("give timeout (seconds) or timeout_ms, not both")
        return -1.0 if timeout_ms < 0 else timeout_ms / 1000.0
    if timeout is None or timeout < 0:
        return -1.0
    return float(timeout)


class RingBuffer:
    """Consumer of one ring buffer map.

    >>> rb = RingBuffer(obj.maps["events"], callback=handle)
    >>> rb.poll(timeout=1.0)                  # handle(bytes) per record
    >>> for record in rb.iter(timeout=1.0):   # or: iterate, oldest first
    ...     ...

    :meth:`consume` reads what is there without waiting; :meth:`poll` waits
    (epoll on the map fd) until data arrives or ``timeout`` seconds pass
    (``timeout_ms=`` is accepted too, like libbpf's ``ring_buffer__poll``).
    :meth:`consume_batch` returns every ready record as a list in one call;
    :meth:`read_batch` / :meth:`poll_batch` return them as one
    :class:`~purebpf.maps.batch.RecordBatch` -- one copy, no object per
    record, the fastest way to read a busy ring.
    The map stays owned by its creator; :meth:`close` only unmaps.
    """

    def __init__(self, ring: Map, callback: Optional[RingCallback] = None) -> None:
        if ring.type != MapType.RINGBUF:
            raise NotSupportedError(f"a ring buffer reader over a {ring._tname} map",
                                    detail=f"map {ring.name!r} is not a RINGBUF")
        self.map = ring
        self.callback = callback
        self.size = ring.max_entries
        self._mask = self.size - 1
        page = mmap.PAGESIZE
        self._page = page
        self._epoll: Optional["select.epoll"] = None
        self._producer: Optional[mmap.mmap] = None
        fd = ring.fileno()
        self._consumer: Optional[mmap.mmap] = mmap.mmap(
            fd, page, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        try:
            self._producer = mmap.mmap(
                fd, page + 2 * self.size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ,
                offset=page)
            self._epoll = select.epoll()
            self._epoll.register(fd, select.EPOLLIN)
        except BaseException:
            self.close()
            raise

    @property
    def closed(self) -> bool:
        return self._consumer is None

    def close(self) -> None:
        """Unmap the buffer (idempotent); the map itself stays open."""
        for attr in ("_consumer", "_producer"):
            area = getattr(self, attr, None)
            if area is not None:
                area.close()
                setattr(self, attr, None)
        if getattr(self, "_epoll", None) is not None:
            self._epoll.close()  # type: ignore[union-attr]
            self._epoll = None

    def __enter__(self) -> "RingBuffer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _areas(self) -> Tuple[mmap.mmap, mmap.mmap]:
        if self._consumer is None or self._producer is None:
            raise StateError(f"ring buffer reader of map {self.map.name!r} is closed")
        return self._consumer, self._producer

    def pending(self) -> int:
        """Bytes (headers included) written by producers and not yet consumed."""
        consumer, producer = self._areas()
        return int(_U64.unpack_from(producer, 0)[0] - _U64.unpack_from(consumer, 0)[0])

    def _collect(self, limit: Optional[int]
                 ) -> Tuple[RecordBatch, Callable[[int], int], int, int]:
        """Copy out the committed records at the consumer position.

        Returns ``(batch, pos_after, start, end)``: the records (at most
        ``limit``), ``pos_after(i)`` the consumer position just past record
        ``i``, the position they start at and ``end``, the position past
        everything taken (trailing discarded records included).  Nothing is
        stored here.

        The headers are read in the shared mapping first and the records
        they describe are then copied out in one piece (the data area is
        mapped twice, so they are contiguous): data the kernel wrote before
        clearing a busy bit is complete by the time the copy reads it.  When
        every record has the same length (the usual fixed-size event struct)
        the headers are compared in one C-level pass
        (:func:`~purebpf.maps.batch.same_at_stride`).
        """
        consumer, producer = self._areas()
        cons = _U64.unpack_from(consumer, 0)[0]
        avail = min(_U64.unpack_from(producer, 0)[0] - cons, self.size)
        if avail <= 0:
            return _EMPTY, lambda i: cons, cons, cons
        at = self._page + (cons & self._mask)
        want = avail if limit is None else limit
        first = _U32.unpack_from(producer, at)[0]
        if first and not first & (BUSY_BIT | DISCARD_BIT):
            step = (first + HEADER_SIZE + 7) & ~7
            count = min(avail // step, want)
            if count and same_at_stride(producer, at, count, step, _U32.pack(first)):
                batch = RecordBatch(producer[at:at + count * step], count=count,
                                    offset=HEADER_SIZE, stride=step, record_size=first)
                return batch, lambda i: cons + (i + 1) * step, cons, cons + count * step
        # records of varying length, discarded or busy ones: header by header
        offsets: List[int] = []
        sizes: List[int] = []
        ends: List[int] = []
        pos = 0
        while pos < avail and len(offsets) < want:
            length = _U32.unpack_from(producer, at + pos)[0]
            if length & BUSY_BIT:
                break
            size = length & _LEN_MASK
            nxt = pos + ((size + HEADER_SIZE + 7) & ~7)
            if nxt > avail:  # a header past producer_pos: not ours to read yet
                break
            if not length & DISCARD_BIT:
                offsets.append(pos + HEADER_SIZE)
                sizes.append(size)
                ends.append(cons + nxt)
            pos = nxt
        if not offsets:
            return _EMPTY, ends.__getitem__, cons, cons + pos
        return RecordBatch(producer[at:at + pos], offsets=offsets, sizes=sizes), \
            ends.__getitem__, cons, cons + pos

    def _store(self, pos: int) -> None:
        consumer, _producer = self._areas()
        consumer[0:8] = _U64.pack(pos)

    def _drain(self, out: Optional[List[bytes]], callback: Optional[RingCallback],
               limit: Optional[int]) -> Tuple[int, bool]:
        """The consume loop: returns (records handed out, stopped by the callback).

        Like libbpf's ``ringbuf_process_ring`` it goes on while producers add
        records.  ``consumer_pos`` is stored after each batch, and -- before
        the exception propagates or the loop stops -- just past the record
        whose callback raised or returned non-zero.
        """
        total = 0
        while limit is None or total < limit:
            batch, pos_after, start, end = self._collect(
                None if limit is None else limit - total)
            if not batch:
                if end != start:
                    self._store(end)  # only discarded records
                    continue
                return total, False
            records = batch.records()
            if callback is not None:
                done = run_callbacks(callback, records,
                                     lambda n: self._store(pos_after(n - 1) if n else start))
                if done is not None:  # stopped by a non-zero int
                    self._store(pos_after(done - 1))
                    if out is not None:
                        out.extend(records[:done])
                    return total + done, True
            self._store(end)
            if out is not None:
                out.extend(records)
            total += len(records)
        return total, False

    def consume(self, callback: Optional[RingCallback] = None,
                limit: Optional[int] = None) -> List[bytes]:
        """Read every committed record now in the buffer (at most ``limit``).

        Returns them (oldest first) and calls ``callback`` (or the one given
        to the constructor) with each.  Discarded records are skipped;
        reading stops at a record still being written, after ``limit``
        records, or after a callback returned a non-zero int.
        """
        out: List[bytes] = []
        self._drain(out, callback if callback is not None else self.callback, limit)
        return out

    def consume_count(self, callback: Optional[RingCallback] = None,
                      limit: Optional[int] = None) -> int:
        """Like :meth:`consume` but only counts (libbpf's ``ring_buffer__consume`` result)."""
        return self._drain(None, callback if callback is not None else self.callback, limit)[0]

    def consume_batch(self, limit: Optional[int] = None) -> List[bytes]:
        """Every ready record (at most ``limit``) as one list; no callback is called."""
        out: List[bytes] = []
        self._drain(out, None, limit)
        return out

    def read_batch(self, limit: Optional[int] = None) -> RecordBatch:
        """The committed records now in the ring (at most ``limit``) as one :class:`RecordBatch`.

        The fast way to read many records: one copy, the headers checked in
        C, no object per record (see :mod:`purebpf.maps.batch`).  Reading
        stops at a record still being written; discarded records are
        skipped.  The batch is consumed (``consumer_pos`` moves past it) and
        owns its bytes.  An empty batch means nothing was ready.
        """
        while True:
            batch, _pos_after, start, end = self._collect(limit)
            if end != start:
                self._store(end)
            if batch or end == start:
                return batch

    def poll_batch(self, timeout: Optional[float] = None, *,
                   timeout_ms: Optional[int] = None) -> RecordBatch:
        """Wait up to ``timeout`` seconds (None: forever) for data, then :meth:`read_batch`."""
        wait = timeout_seconds(timeout, timeout_ms)
        batch = self.read_batch()
        if batch:
            return batch
        assert self._epoll is not None
        self._epoll.poll(wait)
        return self.read_batch()

    def wait(self, timeout: Optional[float] = None, *, timeout_ms: Optional[int] = None) -> bool:
        """Block until the kernel signals data (or the timeout passes); True if signalled."""
        self._areas()
        assert self._epoll is not None
        return bool(self._epoll.poll(timeout_seconds(timeout, timeout_ms)))

    def poll(self, timeout: Optional[float] = None,
             callback: Optional[RingCallback] = None, *,
             timeout_ms: Optional[int] = None) -> List[bytes]:
        """Wait up to ``timeout`` seconds (None: forever) for data, then :meth:`consume`."""
        wait = timeout_seconds(timeout, timeout_ms)
        records = self.consume(callback)
        if records:
            return records
        assert self._epoll is not None
        self._epoll.poll(wait)
        return self.consume(callback)

    def _records(self) -> Iterator[bytes]:
        """Ready records one by one; the position is stored as they are taken.

        The consumer position is written after each batch and, if the
        iteration stops early, when the generator is closed (at the latest
        when it is garbage-collected), so no record is lost or repeated.
        """
        while True:
            records, pos_after, start, end = self._collect(None)
            if not records:
                if end != start:
                    self._store(end)
                    continue
                return
            done = -1
            try:
                for done, record in enumerate(records):
                    yield record
                done = -2
            finally:
                if done == -2:
                    self._store(end)
                elif not self.closed:
                    self._store(pos_after(done) if done >= 0 else start)

    def iter(self, timeout: Optional[float] = None, *,
             timeout_ms: Optional[int] = None) -> Iterator[bytes]:
        """Yield records as they come; stop once none arrives within ``timeout``.

        ``timeout=None`` waits forever.  Each record is consumed as it is
        yielded, so leaving the loop early loses nothing.
        """
        wait = timeout_seconds(timeout, timeout_ms)
        while True:
            got = False
            for record in self._records():
                got = True
                yield record
            if got:
                continue
            assert self._epoll is not None
            if not self._epoll.poll(wait):
                got = False
                for record in self._records():
                    got = True
                    yield record
                if not got:
                    return

    def __iter__(self) -> Iterator[bytes]:
        """The records ready now, consumed one by one (no waiting)."""
        return self._records()

    def fileno(self) -> int:
        """The map fd, for use in an outer event loop (readable when data is there)."""
        return self.map.fileno()
