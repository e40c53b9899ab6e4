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

Positions are read and written as aligned 8-byte words of the shared
mapping; on x86-64 (total store order) these plain accesses give the
acquire/release ordering the protocol needs.
"""

from __future__ import annotations

import mmap
import select
import struct
from typing import Callable, List, Optional

from purebpf.errors import NotSupportedError, StateError
from purebpf.maps.map import Map
from purebpf.uapi import MapType

__all__ = ["RingBuffer", "BUSY_BIT", "DISCARD_BIT", "HEADER_SIZE"]

BUSY_BIT = 1 << 31
DISCARD_BIT = 1 << 30
HEADER_SIZE = 8

_U64 = struct.Struct("=Q")
_U32 = struct.Struct("=I")


class RingBuffer:
    """Consumer of one ring buffer map.

    >>> rb = RingBuffer(obj.maps["events"])
    >>> for record in rb.poll(timeout=1.0):   # bytes, oldest first
    ...     handle(record)

    :meth:`consume` reads what is there without waiting; :meth:`poll` waits
    (epoll on the map fd) until data arrives or ``timeout`` seconds pass.
    The map stays owned by its creator; :meth:`close` only unmaps.
    """

    def __init__(self, ring: Map) -> None:
        if ring.type != MapType.RINGBUF:
            raise NotSupportedError(f"a ring buffer reader over a {ring._tname} map",
                                    detail=f"map {ring.name!r} is not a RINGBUF")
        self.map = ring
        self.size = ring.max_entries
        self._mask = self.size - 1
        page = mmap.PAGESIZE
        fd = ring.fileno()
        self._consumer: Optional[mmap.mmap] = mmap.mmap(
            fd, page, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        try:
            self._producer: Optional[mmap.mmap] = mmap.mmap(
                fd, page + 2 * self.size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ,
                offset=page)
            self._epoll: Optional["select.epoll"] = select.epoll()
            self._epoll.register(fd, select.EPOLLIN)
        except BaseException:
            self._consumer.close()
            raise
        self._page = page

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

    def _areas(self) -> "tuple[mmap.mmap, mmap.mmap]":
        if self._consumer is None or self._producer is None:
            raise StateError(f"ring buffer reader of map {self.map.name!r} is closed")
        return self._consumer, self._producer

    def pending(self) -> int:
        """Bytes (headers included) written by producers and not yet consumed."""
        consumer, producer = self._areas()
        return int(_U64.unpack_from(producer, 0)[0] - _U64.unpack_from(consumer, 0)[0])

    def consume(self, callback: Optional[Callable[[bytes], object]] = None,
                limit: Optional[int] = None) -> List[bytes]:
        """Read every committed record now in the buffer (at most ``limit``).

        Returns them (oldest first) and, if given, calls ``callback`` with each.
        Discarded records are skipped; reading stops at a record still being
        written.
        """
        consumer, producer = self._areas()
        data_start = self._page
        cons = _U64.unpack_from(consumer, 0)[0]
        prod = _U64.unpack_from(producer, 0)[0]
        out: List[bytes] = []
        while cons < prod and (limit is None or len(out) < limit):
            at = data_start + (cons & self._mask)
            length = _U32.unpack_from(producer, at)[0]
            if length & BUSY_BIT:
                break
            size = length & ~(BUSY_BIT | DISCARD_BIT)
            if not length & DISCARD_BIT:
                record = producer[at + HEADER_SIZE:at + HEADER_SIZE + size]
                out.append(record)
                if callback is not None:
                    callback(record)
            cons += (size + HEADER_SIZE + 7) & ~7
            consumer[0:8] = _U64.pack(cons)
        return out

    def poll(self, timeout: Optional[float] = None,
             callback: Optional[Callable[[bytes], object]] = None) -> List[bytes]:
        """Wait up to ``timeout`` seconds (None: forever) for data, then :meth:`consume`."""
        self._areas()
        records = self.consume(callback)
        if records:
            return records
        assert self._epoll is not None
        self._epoll.poll(-1 if timeout is None else timeout)
        return self.consume(callback)

    def fileno(self) -> int:
        """The map fd, for use in an outer event loop (readable when data is there)."""
        return self.map.fileno()
