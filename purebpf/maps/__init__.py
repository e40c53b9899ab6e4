"""Live BPF maps and global-data views.

* :class:`Map` -- one kernel map (create from a spec, open by pin/id/fd),
  dict-like element operations, iteration, batch ops, per-CPU values,
  freeze, pin.
* :class:`GlobalData` -- the variables of a ``.data``/``.rodata``/``.bss``
  section by name, edited before load and shared through mmap after.
* :class:`RingBuffer` -- a reader of ``BPF_MAP_TYPE_RINGBUF`` records.
* :class:`PerfBuffer` -- per-CPU perf rings behind a ``PERF_EVENT_ARRAY``.
* :class:`RingBufferPoller` -- several ring buffers behind one epoll.
* :class:`RecordBatch` -- many records read in one copy, no object per record.
"""

from __future__ import annotations

from purebpf.maps.batch import RecordBatch
from purebpf.maps.globals import (GlobalData, data_section_is_mmapable, data_section_map_spec,
                                  internal_map_name, libbpf_object_name, open_views)
from purebpf.maps.info import MapInfo
from purebpf.maps.map import Map, adjust_ringbuf_size, kernel_map_name
from purebpf.maps.perfbuf import PerfBuffer, PerfBufferBuilder, PerfSample
from purebpf.maps.poller import RingBufferBuilder, RingBufferPoller
from purebpf.maps.ringbuf import RingBuffer

__all__ = [
    "Map",
    "MapInfo",
    "GlobalData",
    "RingBuffer",
    "PerfBuffer",
    "PerfSample",
    "RecordBatch",
    "PerfBufferBuilder",
    "RingBufferPoller",
    "RingBufferBuilder",
    "internal_map_name",
    "libbpf_object_name",
    "data_section_map_spec",
    "data_section_is_mmapable",
    "open_views",
    "kernel_map_name",
    "adjust_ringbuf_size",
]
