"""Reading ``BPF_MAP_TYPE_PERF_EVENT_ARRAY`` output (``bpf_perf_event_output``).

A perf event array holds, per CPU, the fd of a perf event; a program's
``bpf_perf_event_output(ctx, &map, BPF_F_CURRENT_CPU, data, size)`` appends a
sample to the ring of the event stored at the current CPU's slot.  So, like
libbpf's ``perf_buffer__new``, the reader:

1. opens one ``PERF_TYPE_SOFTWARE`` / ``PERF_COUNT_SW_BPF_OUTPUT`` event per
   possible CPU (``sample_type = PERF_SAMPLE_RAW``, ``sample_period = 1``,
   ``wakeup_events = 1``) with ``perf_event_open(attr, pid=-1, cpu)``;
2. mmaps 1 + 2^n pages of it: the first is ``struct perf_event_mmap_page``
   (``data_head`` at byte 1024, ``data_tail`` at 1032, ``data_offset`` and
   ``data_size`` at 1040/1048), the rest the data ring;
3. enables it (``PERF_EVENT_IOC_ENABLE``) and stores its fd at the CPU's
   slot of the map.

Records in the ring start with ``struct perf_event_header`` (u32 type, u16
misc, u16 size).  ``PERF_RECORD_SAMPLE`` (9) with ``PERF_SAMPLE_RAW`` carries
a u32 size and the bytes the program sent (padded to 8 bytes, so the size
may be rounded up: the program's exact length is not kept by perf);
``PERF_RECORD_LOST`` (2) counts samples dropped because the ring was full.
Unlike the BPF ring buffer, this ring is not mapped twice: a record may wrap
around the end and is copied in two parts.

Callbacks: ``sample_cb(cpu, data)`` per sample and ``lost_cb(cpu, count)`` per
``PERF_RECORD_LOST`` (libbpf-rs's ``PerfBufferBuilder``), or ``callback(sample)``
with a :class:`PerfSample`.  ``data_tail`` is moved past a record before its
callback runs: a callback that raises has its record consumed, the exception
reaches the caller and the next consume starts at the following record; a
callback returning a non-zero int stops the current consume after its record.
Data is handed out as ``bytes`` copies, valid after the callback returns.
"""

from __future__ import annotations

import fcntl
import mmap
import select
import struct
from functools import partial
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple, Union

from purebpf.errors import KernelError, MapKeyError, NotSupportedError, StateError
from purebpf.maps import _sys
from purebpf.maps.batch import RecordBatch, same_at_stride
from purebpf.maps.map import Map
from purebpf.maps.ringbuf import run_callbacks, timeout_seconds
from purebpf.uapi import MapType

__all__ = ["PerfBuffer", "PerfBufferBuilder", "PerfSample", "SampleCallback", "LostCallback", "PERF_RECORD_SAMPLE", "PERF_RECORD_LOST"]

PERF_RECORD_LOST = 2
PERF_RECORD_SAMPLE = 9

_DATA_HEAD, _DATA_TAIL, _DATA_OFFSET, _DATA_SIZE = 1024, 1032, 1040, 1048
_U64 = struct.Struct("=Q")
_U32 = struct.Struct("=I")
_HEADER = struct.Struct("=IHH")


class PerfSample(NamedTuple):
    """One record: ``data`` of a sample, or ``lost`` samples (data empty)."""

    cpu: int
    data: bytes
    lost: int = 0


#: What a ring hands out: the bytes of a sample, or an int count of lost samples.
Entry = Union[bytes, int]


class _CpuRing:
    """The perf event of one CPU and its mapping."""

    def __init__(self, cpu: int, pages: int) -> None:
        from purebpf.syscall.perf import (PERF_EVENT_IOC_ENABLE, PerfEventAttr, PerfSampleType,
                                          PerfSwConfig, PerfType, perf_event_open)

        attr = PerfEventAttr()
        attr.type = PerfType.SOFTWARE
        attr.config = PerfSwConfig.BPF_OUTPUT
        attr.sample_type = PerfSampleType.RAW
        attr.sample_period = 1
        attr.wakeup_events = 1
        self.cpu = cpu
        self.fd = perf_event_open(attr, -1, cpu)
        try:
            page = mmap.PAGESIZE
            self.area = mmap.mmap(self.fd.fileno(), page * (1 + pages), flags=mmap.MAP_SHARED,
                                  prot=mmap.PROT_READ | mmap.PROT_WRITE)
            offset = _U64.unpack_from(self.area, _DATA_OFFSET)[0] or page
            size = _U64.unpack_from(self.area, _DATA_SIZE)[0] or page * pages
            self.data_offset, self.data_size = int(offset), int(size)
            fcntl.ioctl(self.fd.fileno(), PERF_EVENT_IOC_ENABLE, 0)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        area = getattr(self, "area", None)
        if area is not None:
            area.close()
            self.area = None  # type: ignore[assignment]
        self.fd.close()

    def pending(self) -> int:
        """Bytes written by the kernel and not yet consumed."""
        if self.area is None:
            return 0
        return int(_U64.unpack_from(self.area, _DATA_HEAD)[0]
                   - _U64.unpack_from(self.area, _DATA_TAIL)[0])

    def _copy(self, pos: int, size: int) -> bytes:
        """``size`` ring bytes from position ``pos``, joined across the wrap."""
        start = pos % self.data_size
        first = min(size, self.data_size - start)
        base = self.data_offset
        out = self.area[base + start:base + start + first]
        if first < size:
            out += self.area[base:base + size - first]
        return out

    def collect(self, limit: Optional[int]
                ) -> Tuple[RecordBatch, Losses, Callable[[int], int], int, int]:
        """Copy out the records between ``data_tail`` and ``data_head``.

        Returns ``(batch, losses, pos_after, start, end)``: the samples as a
        :class:`RecordBatch`, ``losses`` the ``PERF_RECORD_LOST`` records
        among them as ``(i, count)`` (``count`` samples dropped before
        sample ``i`` of the batch), ``pos_after(k)`` the tail just past entry
        ``k`` of :func:`entries` (samples and losses in ring order, at most
        ``limit`` of them), the tail they start at, and ``end`` the tail past
        everything taken.  Nothing is stored here.

        The kernel publishes ``data_head`` only after writing the records
        below it, so one copy (two pieces when the range wraps) is complete.
        When every record is a sample of the same size, their headers are
        checked in one C-level pass and the batch is evenly spaced.
        """
        area = self.area
        if area is None:
            raise StateError(f"perf ring of CPU {self.cpu} is closed")
        head = _U64.unpack_from(area, _DATA_HEAD)[0]
        tail = _U64.unpack_from(area, _DATA_TAIL)[0]
        avail = min(head - tail, self.data_size)
        cpu = self.cpu
        if avail <= 0:
            return RecordBatch(cpu=cpu), [], lambda i: tail, tail, tail
        chunk = self._copy(tail, avail)
        want = avail if limit is None else limit
        rtype, _misc, step = _HEADER.unpack_from(chunk, 0)
        if (rtype == PERF_RECORD_SAMPLE and step >= 16 and not step % 8 and avail >= step
                and not avail % 8):
            count = min(avail // step, want)
            if (same_at_stride(chunk, 0, count, step, chunk[:8])
                    and same_at_stride(chunk, 8, count, step, chunk[8:12])):
                size = min(_U32.unpack_from(chunk, 8)[0], step - 12)
                batch = RecordBatch(chunk, count=count, offset=12, stride=step,
                                    record_size=size, cpu=cpu)
                return batch, [], lambda i: tail + (i + 1) * step, tail, tail + count * step
        offsets: List[int] = []
        sizes: List[int] = []
        losses: Losses = []
        ends: List[int] = []
        lost = 0
        pos = 0
        while pos + _HEADER.size <= avail and len(ends) < want:
            rtype, _misc, size = _HEADER.unpack_from(chunk, pos)
            if size < _HEADER.size or pos + size > avail:  # corrupt: drop what is there
                pos = avail
                break
            if rtype == PERF_RECORD_SAMPLE and size >= 12:
                offsets.append(pos + 12)
                sizes.append(min(_U32.unpack_from(chunk, pos + 8)[0], size - 12))
                ends.append(tail + pos + size)
            elif rtype == PERF_RECORD_LOST and size >= 24:
                count = int(_U64.unpack_from(chunk, pos + 16)[0])
                losses.append((len(offsets), count))
                lost += count
                ends.append(tail + pos + size)
            pos += size
        batch = RecordBatch(chunk, offsets=offsets, sizes=sizes, cpu=cpu, lost=lost)
        return batch, losses, ends.__getitem__, tail, tail + pos

    def store(self, pos: int) -> None:
        """Give the space below ``pos`` back to the kernel (``data_tail``)."""
        if self.area is not None:
            self.area[_DATA_TAIL:_DATA_TAIL + 8] = _U64.pack(pos)

    def read(self, out: Optional[List[PerfSample]], limit: Optional[int],
             on_entry: Optional[Callable[[int, Entry], object]]) -> Tuple[int, bool]:
        """Take records out of this CPU's ring: (records handed out, stopped).

        ``on_entry(cpu, entry)`` runs per record; ``data_tail`` is stored
        after the batch, or just past the record whose callback raised or
        returned a non-zero int (the libbpf rule).
        """
        total = 0
        cpu = self.cpu
        while limit is None or total < limit:
            batch, losses, pos_after, start, end = self.collect(
                None if limit is None else limit - total)
            if not batch and not losses:
                if end != start:
                    self.store(end)
                    continue
                break
            found = entries(batch, losses)
            done: Optional[int] = None
            if on_entry is not None:
                done = run_callbacks(partial(on_entry, cpu), found,
                                     lambda n: self.store(pos_after(n - 1) if n else start))
            self.store(end if done is None else pos_after(done - 1))
            taken = len(found) if done is None else done
            if out is not None:
                # tuple.__new__ directly: no Python-level constructor call per record
                make = tuple.__new__
                out.extend([make(PerfSample, (cpu, e, 0)) if e.__class__ is bytes
                            else make(PerfSample, (cpu, b"", e)) for e in found[:taken]])
            total += taken
            if done is not None:
                return total, True
        return total, False

    def read_batch(self, limit: Optional[int]) -> Tuple[RecordBatch, int]:
        """The samples now in this ring as one batch, consumed, and the records taken.

        At most ``limit`` records (samples and loss reports) are taken.
        """
        while True:
            batch, losses, _pos_after, start, end = self.collect(limit)
            if end != start:
                self.store(end)
            if batch or losses or end == start:
                return batch, len(batch) + len(losses)


Losses = List[Tuple[int, int]]


def entries(batch: RecordBatch, losses: Losses) -> List[Entry]:
    """Samples (``bytes``) and lost counts (``int``) in ring order."""
    records: List[Entry] = list(batch.records())
    for i, count in reversed(losses):
        records.insert(i, count)
    return records


def _as_sample(cpu: int, entry: Entry) -> PerfSample:
    # tuple.__new__ directly: no Python-level namedtuple constructor call per record
    if entry.__class__ is bytes:
        return tuple.__new__(PerfSample, (cpu, entry, 0))
    return tuple.__new__(PerfSample, (cpu, b"", entry))


#: ``sample_cb(cpu, data)``; a non-zero int return value stops consumption.
SampleCallback = Callable[[int, bytes], object]
#: ``lost_cb(cpu, count)``: ``count`` samples of ``cpu`` were dropped (ring full).
LostCallback = Callable[[int, int], object]


class PerfBuffer:
    """Per-CPU perf rings behind one perf event array map.

    >>> pb = PerfBuffer(obj.maps["events"], pages=64,
    ...                 sample_cb=lambda cpu, data: ..., lost_cb=lambda cpu, n: ...)
    >>> pb.poll(timeout=0.1)        # callbacks run; the samples are returned too
    >>> for s in pb.iter(timeout=1.0):   # or iterate PerfSample records
    ...     ...

    ``pages`` (a power of two) is the data size of each CPU's ring.  The map
    stays owned by its creator; :meth:`close` empties its slots and closes
    the perf events.  ``poll`` / ``iter`` take ``timeout`` in seconds or
    ``timeout_ms=`` like libbpf's ``perf_buffer__poll``.
    """

    def __init__(self, events: Map, pages: int = 8, *,
                 sample_cb: Optional[SampleCallback] = None,
                 lost_cb: Optional[LostCallback] = None) -> None:
        if events.type != MapType.PERF_EVENT_ARRAY:
            raise NotSupportedError(f"a perf buffer over a {events._tname} map",
                                    detail=f"map {events.name!r} is not a PERF_EVENT_ARRAY")
        if pages <= 0 or pages & (pages - 1):
            raise ValueError(f"pages must be a power of two, got {pages}")
        self.map = events
        self.sample_cb = sample_cb
        self.lost_cb = lost_cb
        self._rings: List[_CpuRing] = []
        self._by_fd: Dict[int, _CpuRing] = {}
        self._epoll: Optional["select.epoll"] = None
        try:
            ncpu = min(_sys.num_possible_cpus(), events.max_entries)
            self._epoll = select.epoll()
            for cpu in _online_cpus(ncpu):
                ring = _CpuRing(cpu, pages)
                self._rings.append(ring)
                events.update(cpu, ring.fd.fileno())
                self._epoll.register(ring.fd.fileno(), select.EPOLLIN)
                self._by_fd[ring.fd.fileno()] = ring
        except BaseException:
            self.close()
            raise

    @property
    def cpus(self) -> List[int]:
        return [ring.cpu for ring in self._rings]

    def close(self) -> None:
        """Empty the map's slots and close every CPU's event (idempotent).

        The map holds its own reference to each event, so the slots are
        deleted first, as libbpf's ``perf_buffer__free`` does.
        """
        for ring in self._rings:
            if not self.map.closed:
                try:
                    self.map.delete(ring.cpu)
                except (MapKeyError, KernelError):
                    pass
            ring.close()
        self._rings = []
        self._by_fd = {}
        if self._epoll is not None:
            self._epoll.close()
            self._epoll = None

    @property
    def closed(self) -> bool:
        return self._epoll is None

    def __enter__(self) -> "PerfBuffer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> "select.epoll":
        if self._epoll is None:
            raise StateError(f"perf buffer of map {self.map.name!r} is closed")
        return self._epoll

    def _dispatcher(self, callback: Optional[Callable[[PerfSample], object]]
                    ) -> Optional[Callable[[int, Entry], object]]:
        """One per-record function calling ``callback`` or sample_cb/lost_cb."""
        if callback is not None:
            cb = callback
            return lambda cpu, entry: cb(_as_sample(cpu, entry))
        sample_cb, lost_cb = self.sample_cb, self.lost_cb
        if sample_cb is None and lost_cb is None:
            return None
        if lost_cb is None:
            assert sample_cb is not None
            scb = sample_cb
            return lambda cpu, entry: scb(cpu, entry) if entry.__class__ is bytes else None

        def dispatch(cpu: int, entry: Entry) -> object:
            if isinstance(entry, bytes):
                return sample_cb(cpu, entry) if sample_cb is not None else None
            assert lost_cb is not None
            return lost_cb(cpu, entry)
        return dispatch

    def _consume(self, rings: List[_CpuRing], out: Optional[List[PerfSample]],
                 callback: Optional[Callable[[PerfSample], object]],
                 limit: Optional[int]) -> int:
        on_entry = self._dispatcher(callback)
        total = 0
        for ring in rings:
            left = None if limit is None else limit - total
            if left is not None and left <= 0:
                break
            count, stopped = ring.read(out, left, on_entry)
            total += count
            if stopped:
                break
        return total

    def consume(self, callback: Optional[Callable[[PerfSample], object]] = None,
                limit: Optional[int] = None) -> List[PerfSample]:
        """Every record now in the rings, CPU by CPU, oldest first within a CPU.

        Each record is passed to ``callback`` (a :class:`PerfSample`) or, if
        none is given, to the constructor's ``sample_cb`` / ``lost_cb``; the
        records are also returned.
        """
        self._check_open()
        out: List[PerfSample] = []
        self._consume(self._rings, out, callback, limit)
        return out

    def consume_count(self, callback: Optional[Callable[[PerfSample], object]] = None,
                      limit: Optional[int] = None) -> int:
        """Like :meth:`consume` but returns only how many records were handled."""
        self._check_open()
        return self._consume(self._rings, None, callback, limit)

    def consume_batch(self, limit: Optional[int] = None) -> List[PerfSample]:
        """Every ready record (at most ``limit``) as one list; no callback is called."""
        self._check_open()
        out: List[PerfSample] = []
        for ring in self._rings:
            left = None if limit is None else limit - len(out)
            if left is not None and left <= 0:
                break
            ring.read(out, left, None)
        return out

    def read_batches(self, limit: Optional[int] = None) -> List[RecordBatch]:
        """The samples now in the rings as one :class:`RecordBatch` per CPU that had any.

        The fast way to read many samples: one copy per ring, the headers
        checked in C, no object per record (see :mod:`purebpf.maps.batch`).
        Each batch carries its ``cpu`` and ``lost``, the samples the kernel
        dropped on that CPU (its ``PERF_RECORD_LOST`` counts; ``lost_cb`` is
        not called).  ``limit`` bounds the records (samples and loss
        reports) taken in all.  The rings are consumed.
        """
        self._check_open()
        return self._read_batches(self._rings, limit)

    def _read_batches(self, rings: List[_CpuRing], limit: Optional[int]) -> List[RecordBatch]:
        out: List[RecordBatch] = []
        taken = 0
        for ring in rings:
            left = None if limit is None else limit - taken
            if left is not None and left <= 0:
                break
            batch, records = ring.read_batch(left)
            if records:
                out.append(batch)
                taken += records
        return out

    def poll_batches(self, timeout: Optional[float] = None, *,
                     timeout_ms: Optional[int] = None) -> List[RecordBatch]:
        """Wait up to ``timeout`` seconds (None: forever), then :meth:`read_batches`.

        After a wait only the rings epoll reports ready are read.
        """
        wait = timeout_seconds(timeout, timeout_ms)
        batches = self.read_batches()
        if batches:
            return batches
        epoll = self._check_open()
        ready = [self._by_fd[fd] for fd, _ev in epoll.poll(wait) if fd in self._by_fd]
        return self._read_batches(ready, None)

    def consume_cpu(self, cpu: int, callback: Optional[Callable[[PerfSample], object]] = None
                    ) -> List[PerfSample]:
        """The records of one CPU's ring only (libbpf's ``perf_buffer__consume_buffer``)."""
        self._check_open()
        rings = [ring for ring in self._rings if ring.cpu == cpu]
        if not rings:
            raise ValueError(f"perf buffer of map {self.map.name!r} has no ring for CPU {cpu}")
        out: List[PerfSample] = []
        self._consume(rings, out, callback, None)
        return out

    def wait(self, timeout: Optional[float] = None, *, timeout_ms: Optional[int] = None) -> bool:
        """Block until a ring has data (or the timeout passes); True if one has."""
        return bool(self._check_open().poll(timeout_seconds(timeout, timeout_ms)))

    def poll(self, timeout: Optional[float] = None,
             callback: Optional[Callable[[PerfSample], object]] = None, *,
             timeout_ms: Optional[int] = None) -> List[PerfSample]:
        """Wait up to ``timeout`` seconds (None: forever) for data, then consume it.

        Only the rings epoll reports ready are read after a wait, as libbpf's
        ``perf_buffer__poll`` does.
        """
        wait = timeout_seconds(timeout, timeout_ms)
        records = self.consume(callback)
        if records:
            return records
        epoll = self._check_open()
        ready = [self._by_fd[fd] for fd, _ev in epoll.poll(wait) if fd in self._by_fd]
        out: List[PerfSample] = []
        self._consume(ready, out, callback, None)
        return out

    def iter(self, timeout: Optional[float] = None, *,
             timeout_ms: Optional[int] = None) -> Iterator[PerfSample]:
        """Yield :class:`PerfSample` records as they come (lost counts included).

        Stops once nothing arrives within ``timeout`` (None: wait forever).
        Callbacks are not called.  ``data_tail`` is stored after each batch
        and, if the loop is left early, when the generator is closed, so
        nothing is lost or repeated.
        """
        wait = timeout_seconds(timeout, timeout_ms)
        while True:
            got = False
            for ring in list(self._rings):
                while True:
                    self._check_open()
                    batch, losses, pos_after, start, end = ring.collect(None)
                    if not batch and not losses:
                        if end != start:
                            ring.store(end)
                            continue
                        break
                    got = True
                    done = -1
                    try:
                        for done, entry in enumerate(entries(batch, losses)):
                            yield _as_sample(ring.cpu, entry)
                        done = -2
                    finally:
                        ring.store(end if done == -2 else pos_after(done) if done >= 0 else start)
            if got:
                continue
            if not self._check_open().poll(wait):
                if not any(ring.pending() for ring in self._rings):
                    return

    def fileno(self) -> int:
        """The epoll fd over all rings, for an outer event loop (readable when data is there)."""
        return self._check_open().fileno()


class PerfBufferBuilder:
    """libbpf-rs style construction of a :class:`PerfBuffer`.

    >>> pb = (PerfBufferBuilder(obj.maps["events"]).pages(64)
    ...       .sample_cb(on_sample).lost_cb(on_lost).build())
    """

    def __init__(self, events: Map) -> None:
        self._map = events
        self._pages = 8
        self._sample_cb: Optional[SampleCallback] = None
        self._lost_cb: Optional[LostCallback] = None

    def pages(self, pages: int) -> "PerfBufferBuilder":
        self._pages = pages
        return self

    def sample_cb(self, callback: SampleCallback) -> "PerfBufferBuilder":
        self._sample_cb = callback
        return self

    def lost_cb(self, callback: LostCallback) -> "PerfBufferBuilder":
        self._lost_cb = callback
        return self

    def build(self) -> PerfBuffer:
        return PerfBuffer(self._map, self._pages, sample_cb=self._sample_cb,
                          lost_cb=self._lost_cb)


def _online_cpus(limit: int) -> List[int]:
    """Possible CPUs below ``limit`` that are online (an offline CPU has no events)."""
    try:
        with open("/sys/devices/system/cpu/online") as f:
            online = set(_sys.parse_cpu_list(f.read()))
    except OSError:
        online = set(range(limit))
    return [cpu for cpu in range(limit) if cpu in online]



