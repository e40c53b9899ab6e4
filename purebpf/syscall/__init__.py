"""The kernel side: ``bpf(2)`` and ``perf_event_open(2)`` through ctypes.

This package is the only place purebpf enters the kernel.  It knows nothing
about ELF or objects: it offers

* :class:`FD` -- one owned file descriptor;
* :func:`bpf` -- the raw call (every other function goes through it, so the
  transcript hooks of :mod:`purebpf.syscall.trace` see everything);
* one ctypes structure per ``union bpf_attr`` variant
  (:mod:`purebpf.syscall.attrs`) and per info struct
  (:mod:`purebpf.syscall.info`);
* typed wrappers per command (:mod:`purebpf.syscall.commands`);
* :func:`perf_event_open` (:mod:`purebpf.syscall.perf`);
* cached feature probes (:mod:`purebpf.syscall.features`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from purebpf.syscall._raw import bpf, command_name, errno_hint
from purebpf.syscall.commands import (
    BatchResult,
    BytesLike,
    ProgQueryResult,
    TaskFdQueryResult,
    TestRunResult,
    btf_data,
    btf_get_fd_by_id,
    btf_get_next_id,
    btf_info,
    btf_load,
    btf_name,
    enable_stats,
    iter_create,
    link_create,
    link_detach,
    link_get_fd_by_id,
    link_get_next_id,
    link_info,
    link_target_name,
    link_update,
    map_create,
    map_delete_batch,
    map_delete_elem,
    map_freeze,
    map_get_fd_by_id,
    map_get_next_id,
    map_get_next_key,
    map_info,
    map_lookup_and_delete_batch,
    map_lookup_and_delete_elem,
    map_lookup_batch,
    map_lookup_elem,
    map_update_batch,
    map_update_elem,
    obj_get,
    obj_get_info_by_fd,
    obj_pin,
    prog_attach,
    prog_bind_map,
    prog_detach,
    prog_get_fd_by_id,
    prog_get_next_id,
    prog_info,
    prog_jited_insns,
    prog_load,
    prog_map_ids,
    prog_query,
    prog_test_run,
    prog_xlated_insns,
    raw_tracepoint_open,
    task_fd_query,
)
from purebpf.syscall.fd import FD, fd_number
from purebpf.syscall.info import BpfBtfInfo, BpfLinkInfo, BpfMapInfo, BpfProgInfo
from purebpf.syscall.trace import (
    TraceRecord,
    add_trace_hook,
    remove_trace_hook,
    tracing,
)

if TYPE_CHECKING:
    from purebpf.syscall import features, perf
    from purebpf.syscall.perf import PerfEventAttr, perf_event_open

__all__ = [
    "FD",
    "fd_number",
    "bpf",
    "command_name",
    "errno_hint",
    "BpfProgInfo",
    "BpfMapInfo",
    "BpfBtfInfo",
    "BpfLinkInfo",
    "TraceRecord",
    "add_trace_hook",
    "remove_trace_hook",
    "tracing",
    "PerfEventAttr",
    "perf_event_open",
    "features",
    "perf",
    "BytesLike",
    "TestRunResult",
    "BatchResult",
    "ProgQueryResult",
    "TaskFdQueryResult",
    "map_create",
    "map_lookup_elem",
    "map_update_elem",
    "map_delete_elem",
    "map_get_next_key",
    "map_lookup_and_delete_elem",
    "map_freeze",
    "map_lookup_batch",
    "map_lookup_and_delete_batch",
    "map_update_batch",
    "map_delete_batch",
    "obj_pin",
    "obj_get",
    "prog_load",
    "btf_load",
    "obj_get_info_by_fd",
    "prog_info",
    "prog_xlated_insns",
    "prog_jited_insns",
    "prog_map_ids",
    "map_info",
    "btf_info",
    "btf_data",
    "btf_name",
    "link_info",
    "link_target_name",
    "prog_get_fd_by_id",
    "map_get_fd_by_id",
    "btf_get_fd_by_id",
    "link_get_fd_by_id",
    "prog_get_next_id",
    "map_get_next_id",
    "btf_get_next_id",
    "link_get_next_id",
    "prog_test_run",
    "link_create",
    "link_update",
    "link_detach",
    "raw_tracepoint_open",
    "prog_attach",
    "prog_detach",
    "prog_query",
    "enable_stats",
    "iter_create",
    "prog_bind_map",
    "task_fd_query",
]


def __getattr__(name: str) -> object:
    """``perf_event_open`` / ``PerfEventAttr`` and the ``features`` / ``perf``
    submodules are imported on first use (the load path rarely needs them)."""
    if name in ("PerfEventAttr", "perf_event_open"):
        from purebpf.syscall import perf

        return getattr(perf, name)
    if name in ("features", "perf"):
        import importlib

        return importlib.import_module(f"purebpf.syscall.{name}")
    raise AttributeError(f"module 'purebpf.syscall' has no attribute {name!r}")
