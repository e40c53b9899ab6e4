"""The ``SEC("...")`` naming convention: ELF section name -> program type.

A BPF C program says what kind of program a function is by the ELF section
it is placed in, ``SEC("tp_btf/sched_switch")`` or ``SEC("xdp")``.  The kernel
never sees that name; it is a loader convention, defined by libbpf's
``section_defs[]`` table (``src/libbpf.c``), which every loader (libbpf,
cilium/ebpf, aya, purebpf) follows so that one object file means the same
thing everywhere.

Each table entry is a *pattern* with one of three shapes:

``"xdp"``
    exact: the section name must be exactly ``xdp``.
``"kprobe+"``
    the name is either exactly ``kprobe`` or ``kprobe/EXTRA``; ``EXTRA``
    (the *attach target*, e.g. a function name) follows the first ``/``.
    ``kprobex`` or ``kprobe_foo`` do not match.
``"type/"``
    the name must start with ``type/`` (an ``EXTRA`` is required).

The table is scanned in order and the first match wins (with today's
entries no name matches two of them, but the order is kept as libbpf's so
the rule stays true if entries are added).  libbpf 1.0
removed the old "sloppy" prefix matching (``SEC("kprobe_foo")``,
``SEC("socket123")`` and friends used to match by bare prefix); modern
libbpf, and purebpf, reject those names.

Each entry also carries libbpf's ``enum sec_def_flags`` (:class:`SecFlags`):
whether the attach type may be dropped on old kernels, whether the program
is attached through a BTF id (``fentry``, ``lsm``...), whether it is
sleepable (``BPF_F_SLEEPABLE``), whether it handles XDP fragments
(``BPF_F_XDP_HAS_FRAGS``) and whether it is a USDT probe.

:func:`classify_section` turns one section name into a :class:`ProgramKind`.

The table is libbpf 1.6's.  Entries that need constants newer than the Linux
6.18 uapi (libbpf's ``fsession``, for ``BPF_TRACE_FSESSION``) are left out.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from purebpf.uapi import AttachType, ProgFlags, ProgType

__all__ = [
    "SecFlags",
    "AttachHandler",
    "SectionDef",
    "ProgramKind",
    "SECTION_DEFS",
    "find_section_def",
    "classify_section",
]


class SecFlags(enum.IntFlag):
    """libbpf's ``enum sec_def_flags``, stored as each table entry's cookie."""

    NONE = 0
    #: the expected attach type may be left out on kernels that lack it
    EXP_ATTACH_OPT = 1
    #: legacy marker: attachable with BPF_PROG_ATTACH (used by
    #: ``libbpf_attach_type_by_name``)
    ATTACHABLE = 2
    ATTACHABLE_OPT = ATTACHABLE | EXP_ATTACH_OPT
    #: the attach target is a BTF id (kernel function, tracepoint, hook)
    ATTACH_BTF = 4
    #: the program may sleep: loaded with ``BPF_F_SLEEPABLE``
    SLEEPABLE = 8
    #: XDP program that understands multi-buffer packets: ``BPF_F_XDP_HAS_FRAGS``
    XDP_FRAGS = 16
    #: USDT probe: loaded as ``BPF_TRACE_UPROBE_MULTI`` when the kernel has
    #: uprobe-multi links
    USDT = 32


class AttachHandler(str, enum.Enum):
    """How libbpf auto-attaches programs of a table entry (its ``attach_*`` function)."""

    KPROBE = "kprobe"
    UPROBE = "uprobe"
    KSYSCALL = "ksyscall"
    USDT = "usdt"
    TRACEPOINT = "tracepoint"
    RAW_TRACEPOINT = "raw_tracepoint"
    TRACE = "trace"  # tp_btf, fentry, fexit, fmod_ret, freplace
    KPROBE_MULTI = "kprobe_multi"
    KPROBE_SESSION = "kprobe_session"
    UPROBE_MULTI = "uprobe_multi"
    LSM = "lsm"
    ITER = "iter"


@dataclass(frozen=True)
class SectionDef:
    """One entry of the SEC() table (libbpf's ``struct bpf_sec_def``).

    ``expected_attach_type`` is ``None`` where libbpf's table has 0 meaning
    "none" (note that ``AttachType.CGROUP_INET_INGRESS`` is also 0, and is a
    real attach type for ``cgroup_skb/ingress``).
    """

    pattern: str
    prog_type: ProgType
    expected_attach_type: Optional[AttachType]
    flags: SecFlags = SecFlags.NONE
    attach: Optional[AttachHandler] = None

    @property
    def prefix(self) -> str:
        """The pattern without its trailing ``+`` (``"kprobe+"`` -> ``"kprobe"``)."""
        return self.pattern[:-1] if self.pattern.endswith("+") else self.pattern

    @functools.cached_property
    def sleepable(self) -> bool:
        """Programs of this entry are loaded with ``BPF_F_SLEEPABLE``."""
        return bool(self.flags & SecFlags.SLEEPABLE)

    @functools.cached_property
    def needs_attach_btf_id(self) -> bool:
        """BPF_PROG_LOAD needs ``attach_btf_id`` (BTF-attached families and struct_ops)."""
        return bool(self.flags & SecFlags.ATTACH_BTF) or self.prog_type == ProgType.STRUCT_OPS

    @functools.cached_property
    def prog_flags(self) -> int:
        """The :class:`~purebpf.uapi.ProgFlags` bits libbpf adds at load time."""
        flags = 0
        if self.flags & SecFlags.SLEEPABLE:
            flags |= ProgFlags.SLEEPABLE
        if self.flags & SecFlags.XDP_FRAGS and self.prog_type == ProgType.XDP:
            flags |= ProgFlags.XDP_HAS_FRAGS
        return int(flags)

    def matches(self, name: str) -> bool:
        """Whether section ``name`` matches this entry (libbpf's ``sec_def_matches``)."""
        pattern = self.pattern
        if pattern.endswith("/"):
            return name.startswith(pattern)
        if pattern.endswith("+"):
            prefix = pattern[:-1]
            if not name.startswith(prefix):
                return False
            return len(name) == len(prefix) or name[len(prefix)] == "/"
        return name == pattern

    def attach_target(self, name: str) -> Optional[str]:
        """The text after ``prefix/`` in a matching ``name``, or None if there is none."""
        if self.pattern.endswith("/"):
            return name[len(self.pattern):]
        if self.pattern.endswith("+"):
            prefix = self.pattern[:-1]
            if len(name) == len(prefix):
                return None
            return name[len(prefix) + 1:]
        return None


_A = AttachType
_P = ProgType
_F = SecFlags
_H = AttachHandler


def _d(pattern: str, prog_type: ProgType, attach_type: Optional[AttachType],
       flags: SecFlags = SecFlags.NONE, attach: Optional[AttachHandler] = None) -> SectionDef:
    return SectionDef(pattern, prog_type, attach_type, flags, attach)


#: The ordered SEC() table, entry for entry as in libbpf 1.6's ``section_defs[]``.
SECTION_DEFS: Tuple[SectionDef, ...] = (
    _d("socket", _P.SOCKET_FILTER, None),
    _d("sk_reuseport/migrate", _P.SK_REUSEPORT, _A.SK_REUSEPORT_SELECT_OR_MIGRATE, _F.ATTACHABLE),
    _d("sk_reuseport", _P.SK_REUSEPORT, _A.SK_REUSEPORT_SELECT, _F.ATTACHABLE),
    _d("kprobe+", _P.KPROBE, None, _F.NONE, _H.KPROBE),
    _d("uprobe+", _P.KPROBE, None, _F.NONE, _H.UPROBE),
    _d("uprobe.s+", _P.KPROBE, None, _F.SLEEPABLE, _H.UPROBE),
    _d("kretprobe+", _P.KPROBE, None, _F.NONE, _H.KPROBE),
    _d("uretprobe+", _P.KPROBE, None, _F.NONE, _H.UPROBE),
    _d("uretprobe.s+", _P.KPROBE, None, _F.SLEEPABLE, _H.UPROBE),
    _d("kprobe.multi+", _P.KPROBE, _A.TRACE_KPROBE_MULTI, _F.NONE, _H.KPROBE_MULTI),
    _d("kretprobe.multi+", _P.KPROBE, _A.TRACE_KPROBE_MULTI, _F.NONE, _H.KPROBE_MULTI),
    _d("kprobe.session+", _P.KPROBE, _A.TRACE_KPROBE_SESSION, _F.NONE, _H.KPROBE_SESSION),
    _d("uprobe.multi+", _P.KPROBE, _A.TRACE_UPROBE_MULTI, _F.NONE, _H.UPROBE_MULTI),
    _d("uretprobe.multi+", _P.KPROBE, _A.TRACE_UPROBE_MULTI, _F.NONE, _H.UPROBE_MULTI),
    _d("uprobe.session+", _P.KPROBE, _A.TRACE_UPROBE_SESSION, _F.NONE, _H.UPROBE_MULTI),
    _d("uprobe.multi.s+", _P.KPROBE, _A.TRACE_UPROBE_MULTI, _F.SLEEPABLE, _H.UPROBE_MULTI),
    _d("uretprobe.multi.s+", _P.KPROBE, _A.TRACE_UPROBE_MULTI, _F.SLEEPABLE, _H.UPROBE_MULTI),
    _d("uprobe.session.s+", _P.KPROBE, _A.TRACE_UPROBE_SESSION, _F.SLEEPABLE, _H.UPROBE_MULTI),
    _d("ksyscall+", _P.KPROBE, None, _F.NONE, _H.KSYSCALL),
    _d("kretsyscall+", _P.KPROBE, None, _F.NONE, _H.KSYSCALL),
    _d("usdt+", _P.KPROBE, None, _F.USDT, _H.USDT),
    _d("usdt.s+", _P.KPROBE, None, _F.USDT | _F.SLEEPABLE, _H.USDT),
    _d("tc/ingress", _P.SCHED_CLS, _A.TCX_INGRESS),  # alias for tcx/ingress
    _d("tc/egress", _P.SCHED_CLS, _A.TCX_EGRESS),  # alias for tcx/egress
    _d("tcx/ingress", _P.SCHED_CLS, _A.TCX_INGRESS),
    _d("tcx/egress", _P.SCHED_CLS, _A.TCX_EGRESS),
    _d("tc", _P.SCHED_CLS, None),  # legacy (netlink tc), prefer tcx
    _d("classifier", _P.SCHED_CLS, None),  # legacy, prefer tcx
    _d("action", _P.SCHED_ACT, None),  # legacy, prefer tcx
    _d("netkit/primary", _P.SCHED_CLS, _A.NETKIT_PRIMARY),
    _d("netkit/peer", _P.SCHED_CLS, _A.NETKIT_PEER),
    _d("tracepoint+", _P.TRACEPOINT, None, _F.NONE, _H.TRACEPOINT),
    _d("tp+", _P.TRACEPOINT, None, _F.NONE, _H.TRACEPOINT),
    _d("raw_tracepoint+", _P.RAW_TRACEPOINT, None, _F.NONE, _H.RAW_TRACEPOINT),
    _d("raw_tp+", _P.RAW_TRACEPOINT, None, _F.NONE, _H.RAW_TRACEPOINT),
    _d("raw_tracepoint.w+", _P.RAW_TRACEPOINT_WRITABLE, None, _F.NONE, _H.RAW_TRACEPOINT),
    _d("raw_tp.w+", _P.RAW_TRACEPOINT_WRITABLE, None, _F.NONE, _H.RAW_TRACEPOINT),
    _d("tp_btf+", _P.TRACING, _A.TRACE_RAW_TP, _F.ATTACH_BTF, _H.TRACE),
    _d("fentry+", _P.TRACING, _A.TRACE_FENTRY, _F.ATTACH_BTF, _H.TRACE),
    _d("fmod_ret+", _P.TRACING, _A.MODIFY_RETURN, _F.ATTACH_BTF, _H.TRACE),
    _d("fexit+", _P.TRACING, _A.TRACE_FEXIT, _F.ATTACH_BTF, _H.TRACE),
    _d("fentry.s+", _P.TRACING, _A.TRACE_FENTRY, _F.ATTACH_BTF | _F.SLEEPABLE, _H.TRACE),
    _d("fmod_ret.s+", _P.TRACING, _A.MODIFY_RETURN, _F.ATTACH_BTF | _F.SLEEPABLE, _H.TRACE),
    _d("fexit.s+", _P.TRACING, _A.TRACE_FEXIT, _F.ATTACH_BTF | _F.SLEEPABLE, _H.TRACE),
    _d("freplace+", _P.EXT, None, _F.ATTACH_BTF, _H.TRACE),
    _d("lsm+", _P.LSM, _A.LSM_MAC, _F.ATTACH_BTF, _H.LSM),
    _d("lsm.s+", _P.LSM, _A.LSM_MAC, _F.ATTACH_BTF | _F.SLEEPABLE, _H.LSM),
    _d("lsm_cgroup+", _P.LSM, _A.LSM_CGROUP, _F.ATTACH_BTF),
    _d("iter+", _P.TRACING, _A.TRACE_ITER, _F.ATTACH_BTF, _H.ITER),
    _d("iter.s+", _P.TRACING, _A.TRACE_ITER, _F.ATTACH_BTF | _F.SLEEPABLE, _H.ITER),
    _d("syscall", _P.SYSCALL, None, _F.SLEEPABLE),
    _d("xdp.frags/devmap", _P.XDP, _A.XDP_DEVMAP, _F.XDP_FRAGS),
    _d("xdp/devmap", _P.XDP, _A.XDP_DEVMAP, _F.ATTACHABLE),
    _d("xdp.frags/cpumap", _P.XDP, _A.XDP_CPUMAP, _F.XDP_FRAGS),
    _d("xdp/cpumap", _P.XDP, _A.XDP_CPUMAP, _F.ATTACHABLE),
    _d("xdp.frags", _P.XDP, _A.XDP, _F.XDP_FRAGS),
    _d("xdp", _P.XDP, _A.XDP, _F.ATTACHABLE_OPT),
    _d("perf_event", _P.PERF_EVENT, None),
    _d("lwt_in", _P.LWT_IN, None),
    _d("lwt_out", _P.LWT_OUT, None),
    _d("lwt_xmit", _P.LWT_XMIT, None),
    _d("lwt_seg6local", _P.LWT_SEG6LOCAL, None),
    _d("sockops", _P.SOCK_OPS, _A.CGROUP_SOCK_OPS, _F.ATTACHABLE_OPT),
    _d("sk_skb/stream_parser", _P.SK_SKB, _A.SK_SKB_STREAM_PARSER, _F.ATTACHABLE_OPT),
    _d("sk_skb/stream_verdict", _P.SK_SKB, _A.SK_SKB_STREAM_VERDICT, _F.ATTACHABLE_OPT),
    _d("sk_skb/verdict", _P.SK_SKB, _A.SK_SKB_VERDICT, _F.ATTACHABLE_OPT),
    _d("sk_skb", _P.SK_SKB, None),
    _d("sk_msg", _P.SK_MSG, _A.SK_MSG_VERDICT, _F.ATTACHABLE_OPT),
    _d("lirc_mode2", _P.LIRC_MODE2, _A.LIRC_MODE2, _F.ATTACHABLE_OPT),
    _d("flow_dissector", _P.FLOW_DISSECTOR, _A.FLOW_DISSECTOR, _F.ATTACHABLE_OPT),
    _d("cgroup_skb/ingress", _P.CGROUP_SKB, _A.CGROUP_INET_INGRESS, _F.ATTACHABLE_OPT),
    _d("cgroup_skb/egress", _P.CGROUP_SKB, _A.CGROUP_INET_EGRESS, _F.ATTACHABLE_OPT),
    _d("cgroup/skb", _P.CGROUP_SKB, None),
    _d("cgroup/sock_create", _P.CGROUP_SOCK, _A.CGROUP_INET_SOCK_CREATE, _F.ATTACHABLE),
    _d("cgroup/sock_release", _P.CGROUP_SOCK, _A.CGROUP_INET_SOCK_RELEASE, _F.ATTACHABLE),
    _d("cgroup/sock", _P.CGROUP_SOCK, _A.CGROUP_INET_SOCK_CREATE, _F.ATTACHABLE_OPT),
    _d("cgroup/post_bind4", _P.CGROUP_SOCK, _A.CGROUP_INET4_POST_BIND, _F.ATTACHABLE),
    _d("cgroup/post_bind6", _P.CGROUP_SOCK, _A.CGROUP_INET6_POST_BIND, _F.ATTACHABLE),
    _d("cgroup/bind4", _P.CGROUP_SOCK_ADDR, _A.CGROUP_INET4_BIND, _F.ATTACHABLE),
    _d("cgroup/bind6", _P.CGROUP_SOCK_ADDR, _A.CGROUP_INET6_BIND, _F.ATTACHABLE),
    _d("cgroup/connect4", _P.CGROUP_SOCK_ADDR, _A.CGROUP_INET4_CONNECT, _F.ATTACHABLE),
    _d("cgroup/connect6", _P.CGROUP_SOCK_ADDR, _A.CGROUP_INET6_CONNECT, _F.ATTACHABLE),
    _d("cgroup/connect_unix", _P.CGROUP_SOCK_ADDR, _A.CGROUP_UNIX_CONNECT, _F.ATTACHABLE),
    _d("cgroup/sendmsg4", _P.CGROUP_SOCK_ADDR, _A.CGROUP_UDP4_SENDMSG, _F.ATTACHABLE),
    _d("cgroup/sendmsg6", _P.CGROUP_SOCK_ADDR, _A.CGROUP_UDP6_SENDMSG, _F.ATTACHABLE),
    _d("cgroup/sendmsg_unix", _P.CGROUP_SOCK_ADDR, _A.CGROUP_UNIX_SENDMSG, _F.ATTACHABLE),
    _d("cgroup/recvmsg4", _P.CGROUP_SOCK_ADDR, _A.CGROUP_UDP4_RECVMSG, _F.ATTACHABLE),
    _d("cgroup/recvmsg6", _P.CGROUP_SOCK_ADDR, _A.CGROUP_UDP6_RECVMSG, _F.ATTACHABLE),
    _d("cgroup/recvmsg_unix", _P.CGROUP_SOCK_ADDR, _A.CGROUP_UNIX_RECVMSG, _F.ATTACHABLE),
    _d("cgroup/getpeername4", _P.CGROUP_SOCK_ADDR, _A.CGROUP_INET4_GETPEERNAME, _F.ATTACHABLE),
    _d("cgroup/getpeername6", _P.CGROUP_SOCK_ADDR, _A.CGROUP_INET6_GETPEERNAME, _F.ATTACHABLE),
    _d("cgroup/getpeername_unix", _P.CGROUP_SOCK_ADDR, _A.CGROUP_UNIX_GETPEERNAME, _F.ATTACHABLE),
    _d("cgroup/getsockname4", _P.CGROUP_SOCK_ADDR, _A.CGROUP_INET4_GETSOCKNAME, _F.ATTACHABLE),
    _d("cgroup/getsockname6", _P.CGROUP_SOCK_ADDR, _A.CGROUP_INET6_GETSOCKNAME, _F.ATTACHABLE),
    _d("cgroup/getsockname_unix", _P.CGROUP_SOCK_ADDR, _A.CGROUP_UNIX_GETSOCKNAME, _F.ATTACHABLE),
    _d("cgroup/sysctl", _P.CGROUP_SYSCTL, _A.CGROUP_SYSCTL, _F.ATTACHABLE),
    _d("cgroup/getsockopt", _P.CGROUP_SOCKOPT, _A.CGROUP_GETSOCKOPT, _F.ATTACHABLE),
    _d("cgroup/setsockopt", _P.CGROUP_SOCKOPT, _A.CGROUP_SETSOCKOPT, _F.ATTACHABLE),
    _d("cgroup/dev", _P.CGROUP_DEVICE, _A.CGROUP_DEVICE, _F.ATTACHABLE_OPT),
    _d("struct_ops+", _P.STRUCT_OPS, None),
    _d("struct_ops.s+", _P.STRUCT_OPS, None, _F.SLEEPABLE),
    _d("sk_lookup", _P.SK_LOOKUP, _A.SK_LOOKUP, _F.ATTACHABLE),
    _d("netfilter", _P.NETFILTER, _A.NETFILTER),
)

# Lookup indexes: pattern text -> position of its first entry in SECTION_DEFS.
# A name can only match an exact entry equal to it, a "+" entry whose prefix
# is the name itself or the name up to one of its "/", or a "/" entry equal
# to the name up to and including one of its "/".  Looking those few
# candidates up and keeping the lowest table position gives the same answer
# as libbpf's in-order scan, without testing every entry.
_EXACT: Dict[str, int] = {}
_PLUS: Dict[str, int] = {}
_SLASH: Dict[str, int] = {}
for _index, _entry in enumerate(SECTION_DEFS):
    if _entry.pattern.endswith("+"):
        _PLUS.setdefault(_entry.pattern[:-1], _index)
    elif _entry.pattern.endswith("/"):
        _SLASH.setdefault(_entry.pattern, _index)
    else:
        _EXACT.setdefault(_entry.pattern, _index)


def find_section_def(name: str) -> Optional[SectionDef]:
    """The first :data:`SECTION_DEFS` entry that matches ``name`` (libbpf's ``find_sec_def``)."""
    candidates = [_EXACT.get(name), _PLUS.get(name)]
    slash = name.find("/")
    while slash != -1:
        candidates.append(_PLUS.get(name[:slash]))
        candidates.append(_SLASH.get(name[:slash + 1]))
        slash = name.find("/", slash + 1)
    found = [i for i in candidates if i is not None]
    return SECTION_DEFS[min(found)] if found else None


@dataclass(frozen=True)
class ProgramKind:
    """What a program's ELF section name says about it.

    ``section``
        the full section name, e.g. ``"tp/syscalls/sys_enter_write"``.
    ``pattern``
        the matching :data:`SECTION_DEFS` entry, e.g. ``"tp+"``.
    ``prog_type`` / ``expected_attach_type``
        what BPF_PROG_LOAD gets (``expected_attach_type`` is ``None`` where
        libbpf passes 0 meaning "none").
    ``attach_target``
        the text after ``prefix/``: ``"sched_switch"``,
        ``"syscalls/sys_enter_openat"``, ``"/bin/bash:readline"``; ``None``
        when the name has no ``/EXTRA`` part.
    ``sleepable``
        the program is loaded with ``BPF_F_SLEEPABLE``.
    ``needs_attach_btf_id``
        BPF_PROG_LOAD needs ``attach_btf_id`` (tp_btf, fentry, fexit,
        fmod_ret, lsm, lsm_cgroup, iter, freplace, struct_ops).
    ``auto_attach``
        libbpf's skeleton ``attach`` would attach this program on its own:
        the entry has an attach routine and the name carries a well-formed
        target (``SEC("kprobe")`` alone is valid but not auto-attachable).
    ``prog_flags``
        :class:`~purebpf.uapi.ProgFlags` bits implied by the name
        (``SLEEPABLE``, ``XDP_HAS_FRAGS``).
    ``sec_flags`` / ``attach_handler``
        the raw table flags and auto-attach routine, for loaders.

    Two load-time adjustments libbpf makes are *not* decided by the name and
    are left to the loader: a struct_ops program's expected attach type
    becomes the index of the struct member it implements (found through the
    ``.struct_ops`` relocations), and a USDT program (``sec_flags`` has
    :attr:`SecFlags.USDT`) is loaded as ``BPF_TRACE_UPROBE_MULTI`` when the
    kernel supports uprobe-multi links.
    """

    section: str
    pattern: str
    prog_type: ProgType
    expected_attach_type: Optional[AttachType]
    attach_target: Optional[str]
    sleepable: bool
    needs_attach_btf_id: bool
    auto_attach: bool
    prog_flags: int
    sec_flags: SecFlags = SecFlags.NONE
    attach_handler: Optional[AttachHandler] = None


_KPROBE_FUNC_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.")
_KPROBE_MULTI_CHARS = _KPROBE_FUNC_CHARS | frozenset("*?")


def _can_auto_attach(handler: Optional[AttachHandler], target: Optional[str]) -> bool:
    """Whether libbpf's attach routine for ``handler`` accepts ``target``.

    Mirrors the parsing each ``attach_*`` function of libbpf does on the
    section name (``SEC("kprobe")`` with no target is valid but is not
    auto-attached).
    """
    if handler is None or not target:
        return False
    if handler is AttachHandler.KPROBE:
        # sscanf("%m[a-zA-Z0-9_.]+%li"): a function name, optionally +offset
        return target[0] in _KPROBE_FUNC_CHARS
    if handler in (AttachHandler.KPROBE_MULTI, AttachHandler.KPROBE_SESSION):
        # sscanf("%m[a-zA-Z0-9_.*?]"): a glob of function names
        return target[0] in _KPROBE_MULTI_CHARS
    if handler in (AttachHandler.UPROBE, AttachHandler.UPROBE_MULTI):
        # "TYPE/BINARY:FUNCTION[+OFFSET]"
        binary, sep, func = target.partition(":")
        return bool(binary) and bool(sep) and bool(func)
    if handler is AttachHandler.USDT:
        # "usdt/PATH:PROVIDER:NAME"
        parts = target.split(":")
        return len(parts) >= 3 and all(parts[:3])
    if handler is AttachHandler.TRACEPOINT:
        # "tp/CATEGORY/NAME"
        return "/" in target
    return True


def classify_section(name: str) -> Optional[ProgramKind]:
    """Classify ELF section ``name`` by the SEC() convention.

    Returns ``None`` for names that are not program sections (``.text``,
    ``license``, ``.maps``, ``kprobe_foo``, ``xdpfoo``...).

    >>> kind = classify_section("tp/syscalls/sys_enter_write")
    >>> kind.prog_type.name, kind.attach_target
    ('TRACEPOINT', 'syscalls/sys_enter_write')
    """
    sec_def = find_section_def(name)
    if sec_def is None:
        return None
    target = sec_def.attach_target(name)
    return ProgramKind(
        section=name,
        pattern=sec_def.pattern,
        prog_type=sec_def.prog_type,
        expected_attach_type=sec_def.expected_attach_type,
        attach_target=target,
        sleepable=sec_def.sleepable,
        needs_attach_btf_id=sec_def.needs_attach_btf_id,
        auto_attach=_can_auto_attach(sec_def.attach, target),
        prog_flags=sec_def.prog_flags,
        sec_flags=sec_def.flags,
        attach_handler=sec_def.attach,
    )
