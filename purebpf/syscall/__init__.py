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
from purebpf.syscall.commands import *  # noqa: F401,F403
from purebpf.syscall.commands import __all__ as _commands_all
from purebpf.syscall.fd import FD, fd_number
from purebpf.syscall.info import BpfBtfInfo, BpfLinkInfo, BpfMapInfo, BpfProgInfo
from purebpf.syscall.trace import TraceRecord, add_trace_hook, remove_trace_hook, tracing

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
    "PerfEventAttr",
    "perf_event_open",
    "TraceRecord",
    "add_trace_hook",
    "remove_trace_hook",
    "tracing",
    *_commands_all,
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
