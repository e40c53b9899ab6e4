"""``perf_event_open(2)``: the other system call BPF needs.

Perf events carry kprobe/uprobe/tracepoint programs (``PERF_EVENT_IOC_SET_BPF``
or a BPF_LINK_CREATE perf link) and are the per-CPU rings behind
``BPF_MAP_TYPE_PERF_EVENT_ARRAY``.  :class:`PerfEventAttr` mirrors
``struct perf_event_attr`` (include/uapi/linux/perf_event.h, Linux 6.18);
``size`` is filled with ``sizeof`` automatically.
"""

from __future__ import annotations

import ctypes
import enum
import time
from typing import Any, Dict, Optional

from purebpf.errors import KernelError
from purebpf.syscall import trace as _trace
from purebpf.syscall._raw import SYS_PERF_EVENT_OPEN, sys_call
from purebpf.syscall.fd import FD

__all__ = [
    "PerfEventAttr",
    "PerfType",
    "PerfSwConfig",
    "PerfSampleType",
    "perf_event_open",
    "pmu_type",
    "tracepoint_id",
    "TRACEFS_ROOTS",
    "PERF_FLAG_FD_NO_GROUP",
    "PERF_FLAG_FD_OUTPUT",
    "PERF_FLAG_PID_CGROUP",
    "PERF_FLAG_FD_CLOEXEC",
    "PERF_EVENT_IOC_ENABLE",
    "PERF_EVENT_IOC_DISABLE",
    "PERF_EVENT_IOC_SET_BPF",
]

PERF_FLAG_FD_NO_GROUP = 1 << 0
PERF_FLAG_FD_OUTPUT = 1 << 1
PERF_FLAG_PID_CGROUP = 1 << 2
PERF_FLAG_FD_CLOEXEC = 1 << 3

#: ioctl numbers: _IO('$', 0), _IO('$', 1), _IOW('$', 8, __u32)
PERF_EVENT_IOC_ENABLE = 0x2400
PERF_EVENT_IOC_DISABLE = 0x2401
PERF_EVENT_IOC_SET_BPF = 0x40042408


class PerfType(enum.IntEnum):
    """``enum perf_type_id``: ``perf_event_attr.type`` (dynamic PMUs such as
    ``kprobe``/``uprobe`` read theirs from /sys/bus/event_source/devices/*/type)."""

    HARDWARE = 0
    SOFTWARE = 1
    TRACEPOINT = 2
    HW_CACHE = 3
    RAW = 4
    BREAKPOINT = 5


class PerfSwConfig(enum.IntEnum):
    """``enum perf_sw_ids``: ``config`` of ``PERF_TYPE_SOFTWARE`` events."""

    CPU_CLOCK = 0
    TASK_CLOCK = 1
    PAGE_FAULTS = 2
    CONTEXT_SWITCHES = 3
    CPU_MIGRATIONS = 4
    PAGE_FAULTS_MIN = 5
    PAGE_FAULTS_MAJ = 6
    ALIGNMENT_FAULTS = 7
    EMULATION_FAULTS = 8
    DUMMY = 9
    BPF_OUTPUT = 10
    CGROUP_SWITCHES = 11


class PerfSampleType(enum.IntFlag):
    """``enum perf_event_sample_format`` (the bits used with BPF)."""

    IP = 1 << 0
    TID = 1 << 1
    TIME = 1 << 2
    ADDR = 1 << 3
    READ = 1 << 4
    CALLCHAIN = 1 << 5
    ID = 1 << 6
    CPU = 1 << 7
    PERIOD = 1 << 8
    STREAM_ID = 1 << 9
    RAW = 1 << 10


u16 = ctypes.c_uint16
u32 = ctypes.c_uint32
s32 = ctypes.c_int32
u64 = ctypes.c_uint64


class _Period(ctypes.Union):
    _fields_ = [("sample_period", u64), ("sample_freq", u64)]


class _Wakeup(ctypes.Union):
    _fields_ = [("wakeup_events", u32), ("wakeup_watermark", u32)]


class _Config1(ctypes.Union):
    _fields_ = [("bp_addr", u64), ("kprobe_func", u64), ("uprobe_path", u64), ("config1", u64)]


class _Config2(ctypes.Union):
    _fields_ = [("bp_len", u64), ("kprobe_addr", u64), ("probe_offset", u64), ("config2", u64)]


class _AuxBits(ctypes.Structure):
    _fields_ = [("aux_start_paused", u32, 1), ("aux_pause", u32, 1), ("aux_resume", u32, 1),
                ("_reserved_3", u32, 29)]


class _AuxAction(ctypes.Union):
    _anonymous_ = ("_bits",)
    _fields_ = [("aux_action", u32), ("_bits", _AuxBits)]


class PerfEventAttr(ctypes.Structure):
    """``struct perf_event_attr``::

        __u32 type; __u32 size; __u64 config;
        union { __u64 sample_period; __u64 sample_freq; };
        __u64 sample_type; __u64 read_format;
        __u64 disabled:1, inherit:1, pinned:1, exclusive:1, exclude_user:1,
              exclude_kernel:1, exclude_hv:1, exclude_idle:1, mmap:1, comm:1,
              freq:1, inherit_stat:1, enable_on_exec:1, task:1, watermark:1,
              precise_ip:2, mmap_data:1, sample_id_all:1, exclude_host:1,
              exclude_guest:1, exclude_callchain_kernel:1,
              exclude_callchain_user:1, mmap2:1, comm_exec:1, use_clockid:1,
              context_switch:1, write_backward:1, namespaces:1, ksymbol:1,
              bpf_event:1, aux_output:1, cgroup:1, text_poke:1, build_id:1,
              inherit_thread:1, remove_on_exec:1, sigtrap:1, __reserved_1:26;
        union { __u32 wakeup_events; __u32 wakeup_watermark; };
        __u32 bp_type;
        union { __u64 bp_addr; __u64 kprobe_func; __u64 uprobe_path; __u64 config1; };
        union { __u64 bp_len; __u64 kprobe_addr; __u64 probe_offset; __u64 config2; };
        __u64 branch_sample_type; __u64 sample_regs_user;
        __u32 sample_stack_user; __s32 clockid; __u64 sample_regs_intr;
        __u32 aux_watermark; __u16 sample_max_stack; __u16 __reserved_2;
        __u32 aux_sample_size;
        union { __u32 aux_action; struct { __u32 aux_start_paused:1, aux_pause:1,
                                           aux_resume:1, __reserved_3:29; }; };
        __u64 sig_data; __u64 config3;
    """

    _anonymous_ = ("_period", "_wakeup", "_c1", "_c2", "_aux")
    _fields_ = [
        ("type", u32),
        ("size", u32),
        ("config", u64),
        ("_period", _Period),
        ("sample_type", u64),
        ("read_format", u64),
        ("disabled", u64, 1),
        ("inherit", u64, 1),
        ("pinned", u64, 1),
        ("exclusive", u64, 1),
        ("exclude_user", u64, 1),
        ("exclude_kernel", u64, 1),
        ("exclude_hv", u64, 1),
        ("exclude_idle", u64, 1),
        ("mmap", u64, 1),
        ("comm", u64, 1),
        ("freq", u64, 1),
        ("inherit_stat", u64, 1),
        ("enable_on_exec", u64, 1),
        ("task", u64, 1),
        ("watermark", u64, 1),
        ("precise_ip", u64, 2),
        ("mmap_data", u64, 1),
        ("sample_id_all", u64, 1),
        ("exclude_host", u64, 1),
        ("exclude_guest", u64, 1),
        ("exclude_callchain_kernel", u64, 1),
        ("exclude_callchain_user", u64, 1),
        ("mmap2", u64, 1),
        ("comm_exec", u64, 1),
        ("use_clockid", u64, 1),
        ("context_switch", u64, 1),
        ("write_backward", u64, 1),
        ("namespaces", u64, 1),
        ("ksymbol", u64, 1),
        ("bpf_event", u64, 1),
        ("aux_output", u64, 1),
        ("cgroup", u64, 1),
        ("text_poke", u64, 1),
        ("build_id", u64, 1),
        ("inherit_thread", u64, 1),
        ("remove_on_exec", u64, 1),
        ("sigtrap", u64, 1),
        ("_reserved_1", u64, 26),
        ("_wakeup", _Wakeup),
        ("bp_type", u32),
        ("_c1", _Config1),
        ("_c2", _Config2),
        ("branch_sample_type", u64),
        ("sample_regs_user", u64),
        ("sample_stack_user", u32),
        ("clockid", s32),
        ("sample_regs_intr", u64),
        ("aux_watermark", u32),
        ("sample_max_stack", u16),
        ("_reserved_2", u16),
        ("aux_sample_size", u32),
        ("_aux", _AuxAction),
        ("sig_data", u64),
        ("config3", u64),
    ]


def _describe(attr: PerfEventAttr, pid: int, cpu: int, group_fd: int, flags: int) -> Dict[str, Any]:
    try:
        type_text: object = _trace.Name(PerfType(attr.type).name)
    except ValueError:
        type_text = attr.type
    out: Dict[str, Any] = {"type": type_text, "config": attr.config}
    if attr.type == PerfType.SOFTWARE:
        try:
            out["config"] = _trace.Name(PerfSwConfig(attr.config).name)
        except ValueError:
            pass
    if attr.sample_period:
        out["sample_period"] = attr.sample_period
    if attr.sample_type:
        out["sample_type"] = _trace._enum_text(PerfSampleType, attr.sample_type)
    if attr.wakeup_events:
        out["wakeup_events"] = attr.wakeup_events
    if attr.config1:
        out["config1"] = attr.config1
    if attr.config2:
        out["config2"] = attr.config2
    out.update(pid=pid, cpu=cpu)
    if group_fd != -1:
        out["group_fd"] = group_fd
    out["flags"] = flags
    return out


#: where tracefs is found (the first that has an ``events`` directory wins)
TRACEFS_ROOTS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


def pmu_type(name: str) -> int:
    """``perf_event_attr.type`` of a dynamic PMU such as ``"kprobe"`` or ``"uprobe"``
    (/sys/bus/event_source/devices/NAME/type).

    Raises :class:`~purebpf.errors.NotSupportedError` when the kernel has no such PMU.
    """
    from purebpf.errors import NotSupportedError

    try:
        with open(f"/sys/bus/event_source/devices/{name}/type") as f:
            return int(f.read().strip())
    except (OSError, ValueError) as exc:
        raise NotSupportedError(f"perf PMU {name!r}", detail=str(exc)) from exc


def tracepoint_id(category: str, name: str) -> int:
    """The id of tracepoint ``category:name`` (tracefs ``events/CATEGORY/NAME/id``),
    the ``config`` of a ``PERF_TYPE_TRACEPOINT`` event.

    Raises :class:`~purebpf.errors.NotFoundError` when no mounted tracefs has it.
    """
    from purebpf.errors import NotFoundError

    if "/" in category or "/" in name or category in ("", ".", "..") or name in ("", ".", ".."):
        raise NotFoundError("tracepoint", f"{category}:{name}")
    for root in TRACEFS_ROOTS:
        try:
            with open(f"{root}/events/{category}/{name}/id") as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            continue
    raise NotFoundError("tracepoint", f"{category}:{name}", detail="not in tracefs (is it mounted?)")


def perf_event_open(attr: PerfEventAttr, pid: int, cpu: int, group_fd: int = -1,
                    flags: int = PERF_FLAG_FD_CLOEXEC) -> FD:
    """``perf_event_open(attr, pid, cpu, group_fd, flags)`` -> FD.

    ``attr.size`` is set to ``sizeof(PerfEventAttr)`` when left 0.  Errors
    raise :class:`~purebpf.errors.KernelError` (command
    ``"PERF_EVENT_OPEN"``) with a hint for EACCES/EPERM (perf_event_paranoid,
    CAP_PERFMON), ENOENT/EINVAL (no such event / PMU) and EOPNOTSUPP.
    """
    if not attr.size:
        attr.size = ctypes.sizeof(PerfEventAttr)
    if SYS_PERF_EVENT_OPEN < 0:
        raise KernelError(38, "PERF_EVENT_OPEN", hint="unknown perf_event_open syscall number")
    args = (ctypes.c_int(pid), ctypes.c_int(cpu), ctypes.c_int(group_fd), ctypes.c_ulong(flags))
    if not _trace._hooks:
        ret, err = sys_call(SYS_PERF_EVENT_OPEN, ctypes.byref(attr), *args)
    else:
        start = time.perf_counter_ns()
        ret, err = sys_call(SYS_PERF_EVENT_OPEN, ctypes.byref(attr), *args)
        duration = time.perf_counter_ns() - start
        _trace.emit(_trace.TraceRecord("PERF_EVENT_OPEN", _describe(attr, pid, cpu, group_fd, flags),
                                       None if err else ret, err or None, duration))
    if err:
        raise KernelError(err, "PERF_EVENT_OPEN", hint=_hint(err))
    return FD(ret, f"perf_event type={attr.type} config={attr.config}")


def _hint(err: int) -> Optional[str]:
    import errno as E

    if err in (E.EACCES, E.EPERM):
        return "needs root or CAP_PERFMON (or a lower /proc/sys/kernel/perf_event_paranoid)"
    if err in (E.ENOENT, E.EINVAL):
        return "no such event or PMU, or attributes this PMU does not accept"
    if err == E.EOPNOTSUPP:
        return "this PMU does not support the requested sampling/attributes"
    if err == E.EMFILE:
        return "too many open files"
    return None
