"""Attaching programs: :class:`Link` and one module per mechanism.

========================  ==============================================
module                    attaches
========================  ==============================================
:mod:`.tracing`           tp_btf, fentry, fexit, fmod_ret, lsm
:mod:`.raw_tp`            raw_tp
:mod:`.tracepoint`        tp / tracepoint (through a perf event)
:mod:`.uprobe`            uprobe, uretprobe
:mod:`.multi`             uprobe.multi, uretprobe.multi, uprobe.session,
                          kprobe.multi, kretprobe.multi, kprobe.session
:mod:`.kprobe`            kprobe, kretprobe
:mod:`.perf_event`        perf_event (sampling on a CPU)
:mod:`.iter`              iter/*
:mod:`.netdev`            xdp, tcx, netkit, cgroup, netfilter
========================  ==============================================

:func:`attach_program` picks the mechanism from the program's section name
the way libbpf's auto-attach does (``tp/CAT/NAME``, ``raw_tp/NAME``,
``tp_btf/NAME``, ``uprobe/PATH:FUNC``, ``kprobe/FUNC``, ``iter/TARGET``...);
keyword arguments are handed to the mechanism (``attach_program(p,
cpu=0)`` for a perf_event program, ``interface="lo"`` for XDP).
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

from purebpf.errors import AttachError
from purebpf.link._common import type_name
from purebpf.link._link import Link
from purebpf.link.iter import attach_iter
from purebpf.link.kprobe import attach_kprobe
from purebpf.link.multi import attach_kprobe_multi, attach_uprobe_multi
from purebpf.link.netdev import (attach_cgroup, attach_netfilter, attach_netkit, attach_tcx,
                                 attach_xdp)
from purebpf.link.perf_event import attach_perf_event, attach_perf_event_all_cpus
from purebpf.link.raw_tp import attach_raw_tracepoint
from purebpf.link.tracepoint import attach_tracepoint
from purebpf.link.tracing import attach_lsm, attach_tracing
from purebpf.link.uprobe import attach_uprobe
from purebpf.uapi import AttachType, ProgType

if TYPE_CHECKING:  # pragma: no cover
    from purebpf.program import Program

__all__ = [
    "Link",
    "attach_program",
    "can_auto_attach",
    "attach_tracing",
    "attach_lsm",
    "attach_raw_tracepoint",
    "attach_tracepoint",
    "attach_uprobe",
    "attach_kprobe",
    "attach_uprobe_multi",
    "attach_kprobe_multi",
    "attach_perf_event",
    "attach_perf_event_all_cpus",
    "attach_iter",
    "attach_xdp",
    "attach_tcx",
    "attach_netkit",
    "attach_netfilter",
    "attach_cgroup",
]

_CGROUP_TYPES = {
    int(ProgType.CGROUP_SKB), int(ProgType.CGROUP_SOCK), int(ProgType.CGROUP_SOCK_ADDR),
    int(ProgType.CGROUP_SOCKOPT), int(ProgType.CGROUP_SYSCTL), int(ProgType.CGROUP_DEVICE),
    int(ProgType.SOCK_OPS),
}


def _handler(program: "Program") -> str:
    spec = program.spec
    kind = spec.kind if spec is not None else None
    if kind is not None and kind.attach_handler is not None:
        return str(kind.attach_handler.value)
    return ""


def can_auto_attach(program: "Program") -> bool:
    """Whether the section name alone says where to attach (libbpf skeleton
    rules: an attach routine and a well-formed target)."""
    spec = program.spec
    kind = spec.kind if spec is not None else None
    return bool(kind is not None and kind.auto_attach)


def attach_program(program: "Program", **kwargs: Any) -> Link:
    """Attach ``program`` where its section says, or as ``kwargs`` say.

    Raises :class:`~purebpf.errors.AttachError` naming the target when the
    kernel refuses, or naming the program type when purebpf does not know how
    to attach it.
    """
    handler = _handler(program)
    ptype = int(program.prog_type)
    if handler in ("trace",):
        return attach_tracing(program, **kwargs)
    if handler == "lsm":
        return attach_lsm(program, **kwargs)
    if handler == "raw_tracepoint" or ptype in (int(ProgType.RAW_TRACEPOINT),
                                                  int(ProgType.RAW_TRACEPOINT_WRITABLE)):
        return attach_raw_tracepoint(program, **kwargs)
    if handler == "tracepoint" or ptype == int(ProgType.TRACEPOINT):
        return attach_tracepoint(program, **kwargs)
    if handler == "uprobe_multi":
        return attach_uprobe_multi(program, **kwargs)
    if handler in ("kprobe_multi", "kprobe_session"):
        return attach_kprobe_multi(program, **kwargs)
    if handler == "uprobe" or (ptype == int(ProgType.KPROBE) and "binary" in kwargs):
        return attach_uprobe(program, **kwargs)
    if handler in ("kprobe", "ksyscall") or (ptype == int(ProgType.KPROBE) and "function" in kwargs):
        if handler == "ksyscall" and "function" not in kwargs:
            from purebpf.link.kprobe import KPROBES_MISSING_HINT

            target = program.attach_target or program.name
            import os

            if not os.path.isdir("/sys/bus/event_source/devices/kprobe"):
                raise AttachError(errno.EOPNOTSUPP, "perf_event_open", target, hint=KPROBES_MISSING_HINT,
                                  detail=f"ksyscall program {program.name!r}")
            import platform

            arch = {"x86_64": "x64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
            kwargs["function"] = f"__{arch}_sys_{target}"
        return attach_kprobe(program, **kwargs)
    if handler == "iter":
        return attach_iter(program, **kwargs)
    if ptype == int(ProgType.PERF_EVENT):
        if "cpu" not in kwargs:
            raise AttachError(errno.EINVAL, "attach", program.name,
                              detail="a perf_event program needs explicit arguments: cpu=, sample_period=...")
        return attach_perf_event(program, **kwargs)
    if ptype == int(ProgType.XDP) and "interface" in kwargs:
        return attach_xdp(program, **kwargs)
    if ptype == int(ProgType.SCHED_CLS) and "interface" in kwargs:
        eat = program.expected_attach_type
        if eat is not None and int(eat) in (int(AttachType.NETKIT_PRIMARY), int(AttachType.NETKIT_PEER)):
            return attach_netkit(program, **kwargs)
        return attach_tcx(program, **kwargs)
    if ptype == int(ProgType.NETFILTER) and "hook" in kwargs:
        return attach_netfilter(program, **kwargs)
    if ptype in _CGROUP_TYPES and "cgroup" in kwargs:
        return attach_cgroup(program, **kwargs)
    section = program.spec.section if program.spec is not None else "?"
    raise AttachError(errno.EOPNOTSUPP, "attach", program.name,
                      detail=f"no attach routine for program type {type_name(program.prog_type)} "
                             f"(section {section!r}) with arguments {sorted(kwargs)}")
