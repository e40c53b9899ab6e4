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
"""

from __future__ import annotations

import fcntl
import mmap
import select
import struct
from dataclasses import dataclass
from typing import Callable, List, Optional

from purebpf.errors import KernelError, MapKeyError, NotSupportedError, StateError
from purebpf.maps import _sys
from purebpf.maps.map import Map
from purebpf.uapi import MapType

__all__ = ["PerfBuffer", "PerfSample", "PERF_RECORD_SAMPLE", "PERF_RECORD_LOST"]

PERF_RECORD_LOST = 2
PERF_RECORD_SAMPLE = 9

_DATA_HEAD, _DATA_TAIL, _DATA_OFFSET, _DATA_SIZE = 1024, 1032, 1040, 1048
_U64 = struct.Struct("=Q")
_HEADER = struct.Struct("=IHH")


@dataclass(frozen=True)
class PerfSample:
    """One record: ``data`` of a sample, or ``lost`` samples (data empty)."""

    cpu: int
    data: bytes
    lost: int = 0


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

    def _copy(self, pos: int, size: int) -> bytes:
        """``size`` ring bytes from position ``pos``, joined across the wrap."""
        start = pos % self.data_size
        first = min(size, self.data_size - start)
        base = self.data_offset
        out = self.area[base + start:base + start + first]
        if first < size:
            out += self.area[base:base + size - first]
        return out

    def read(self, limit: Optional[int]) -> List[PerfSample]:
        head = _U64.unpack_from(self.area, _DATA_HEAD)[0]
        tail = _U64.unpack_from(self.area, _DATA_TAIL)[0]
        out: List[PerfSample] = []
        while tail < head and (limit is None or len(out) < limit):
            rtype, _misc, size = _HEADER.unpack(self._copy(tail, _HEADER.size))
            if size < _HEADER.size:  # a corrupt header: drop what is there
                tail = head
                break
            body = self._copy(tail + _HEADER.size, size - _HEADER.size)
            if rtype == PERF_RECORD_SAMPLE and len(body) >= 4:
                raw_size = struct.unpack_from("=I", body)[0]
                out.append(PerfSample(self.cpu, body[4:4 + raw_size]))
            elif rtype == PERF_RECORD_LOST and len(body) >= 16:
                out.append(PerfSample(self.cpu, b"", lost=_U64.unpack_from(body, 8)[0]))
            tail += size
        self.area[_DATA_TAIL:_DATA_TAIL + 8] = _U64.pack(tail)
        return out


class PerfBuffer:
    """Per-CPU perf rings behind one perf event array map.

    ``pages`` (a power of two) is the data size of each CPU's ring.  The map
    stays owned by its creator; :meth:`close` empties its slots and closes
    the perf events.
    """

    def __init__(self, events: Map, pages: int = 8) -> None:
        if events.type != MapType.PERF_EVENT_ARRAY:
            raise NotSupportedError(f"a perf buffer over a {events._tname} map",
                                    detail=f"map {events.name!r} is not a PERF_EVENT_ARRAY")
        if pages <= 0 or pages & (pages - 1):
            raise ValueError(f"pages must be a power of two, got {pages}")
        self.map = events
        self._rings: List[_CpuRing] = []
        self._epoll: Optional["select.epoll"] = None
        try:
            ncpu = min(_sys.num_possible_cpus(), events.max_entries)
            self._epoll = select.epoll()
            for cpu in _online_cpus(ncpu):
                ring = _CpuRing(cpu, pages)
                self._rings.append(ring)
                events.update(cpu, ring.fd.fileno())
                self._epoll.register(ring.fd.fileno(), select.EPOLLIN)
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

    def consume(self, callback: Optional[Callable[[PerfSample], object]] = None,
                limit: Optional[int] = None) -> List[PerfSample]:
        """Every record now in the rings, CPU by CPU, oldest first within a CPU."""
        if self._epoll is None:
            raise StateError(f"perf buffer of map {self.map.name!r} is closed")
        out: List[PerfSample] = []
        for ring in self._rings:
            left = None if limit is None else limit - len(out)
            if left is not None and left <= 0:
                break
            out.extend(ring.read(left))
        if callback is not None:
            for sample in out:
                callback(sample)
        return out

    def poll(self, timeout: Optional[float] = None,
             callback: Optional[Callable[[PerfSample], object]] = None) -> List[PerfSample]:
        """Wait up to ``timeout`` seconds (None: forever) for data, then :meth:`consume`."""
        records = self.consume(callback)
        if records:
            return records
        assert self._epoll is not None
        self._epoll.poll(-1 if timeout is None else timeout)
        return self.consume(callback)


def _online_cpus(limit: int) -> List[int]:
    """Possible CPUs below ``limit`` that are online (an offline CPU has no events)."""
    try:
        with open("/sys/devices/system/cpu/online") as f:
            online = set(_sys.parse_cpu_list(f.read()))
    except OSError:
        online = set(range(limit))
    return [cpu for cpu in range(limit) if cpu in online]



