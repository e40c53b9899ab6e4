"""Feature probes: what the running kernel accepts, asked once per process.

Each probe makes the smallest kernel call that exercises one feature -- a
tiny BTF blob with one kind, a two-instruction program of one type, a map of
one type -- and caches the answer (``functools.lru_cache``), as libbpf's
``kernel_supports()`` does.  Probes never raise for an absent feature; they
return False.  They do raise :class:`~purebpf.errors.KernelError` with EPERM
when the process may not use bpf() at all, because then no answer is
meaningful.

Also here: :func:`kernel_version` (``LINUX_VERSION_CODE`` of the running
kernel, computed like libbpf's ``get_kernel_version``) and the possible-CPU
list behind per-CPU map values and perf-event arrays.
"""

from __future__ import annotations

import errno as E
import functools
import os
import re
import struct
from typing import Dict, List, Optional, Sequence, Tuple, Union

from purebpf.errors import KernelError
from purebpf.insn import builders as b
from purebpf.insn.codec import encode
from purebpf.insn.instruction import Instruction
from purebpf.syscall import commands as C
from purebpf.syscall.fd import FD
from purebpf.uapi import AttachType, MapFlags, MapType, ProgFlags, ProgType

__all__ = [
    "probe_btf_kind",
    "has_btf_func",
    "has_btf_func_global",
    "has_btf_datasec",
    "has_btf_float",
    "has_btf_decl_tag",
    "has_btf_type_tag",
    "has_btf_enum64",
    "has_global_data",
    "has_bpf_to_bpf_with_tail_calls",
    "has_prog_name",
    "has_map_type",
    "has_prog_type",
    "has_helper",
    "has_mmapable_maps",
    "has_btf",
    "has_prog_bind_map",
    "has_exp_attach_type",
    "has_probe_read_kernel",
    "has_bpf_cookie",
    "has_perf_link",
    "has_memcg_account",
    "has_syscall_wrapper",
    "syscall_prefix",
    "kernel_version",
    "kernel_version_code",
    "kernel_version_from",
    "possible_cpus",
    "num_possible_cpus",
    "parse_cpu_list",
    "raw_btf",
    "clear_cache",
    "summary",
    "bump_memlock_rlimit",
]

# -- raw BTF blobs ----------------------------------------------------------------
#
# struct btf_header { __u16 magic; __u8 version; __u8 flags; __u32 hdr_len;
#                     __u32 type_off; __u32 type_len; __u32 str_off; __u32 str_len; };
# struct btf_type   { __u32 name_off; __u32 info; union { __u32 size; __u32 type; }; };
# info: bits 0-15 vlen, bits 24-28 kind, bit 31 kind_flag.  Blobs are packed in
# host byte order, as BPF_BTF_LOAD expects.

_BTF_MAGIC = 0xEB9F


class BtfKind:
    """``BTF_KIND_*`` numbers (include/uapi/linux/btf.h), kept here so that the
    probes do not import the whole BTF type model (equal to
    :class:`purebpf.btf.types.BtfKind`, which the tests check)."""

    UNKN = 0
    INT = 1
    PTR = 2
    ARRAY = 3
    STRUCT = 4
    UNION = 5
    ENUM = 6
    FWD = 7
    TYPEDEF = 8
    VOLATILE = 9
    CONST = 10
    RESTRICT = 11
    FUNC = 12
    FUNC_PROTO = 13
    VAR = 14
    DATASEC = 15
    FLOAT = 16
    DECL_TAG = 17
    TYPE_TAG = 18
    ENUM64 = 19


def _info(kind: int, vlen: int = 0, kflag: bool = False) -> int:
    return (int(kflag) << 31) | (kind << 24) | vlen


def _t(name_off: int, kind: int, vlen: int, size_or_type: int, kflag: bool = False) -> bytes:
    return struct.pack("=III", name_off, _info(kind, vlen, kflag), size_or_type)


def _int(name_off: int = 0, bits: int = 32, size: int = 4, signed: bool = True) -> bytes:
    # BTF_INT_ENC(encoding, offset, bits) = encoding << 24 | offset << 16 | bits
    return _t(name_off, BtfKind.INT, 0, size) + struct.pack("=I", (int(signed) << 24) | bits)


def raw_btf(types: bytes, strings: bytes) -> bytes:
    """A complete raw BTF blob (host byte order) from type and string sections."""
    hdr = struct.pack("=HBBIIIII", _BTF_MAGIC, 1, 0, 24, 0, len(types), len(types), len(strings))
    return hdr + types + strings


def _native(data: bytes) -> bytes:
    """The probe blobs are packed in host byte order (``=``), as the kernel
    wants BTF handed to BPF_BTF_LOAD; kept as the single place that says so."""
    return data


def _probe_blob(kind: int) -> Optional[Tuple[bytes, bytes]]:
    """(types, strings) using ``kind`` in the way libbpf's probes do, or None."""
    if kind == BtfKind.INT:
        return _int(), b"\0"
    if kind == BtfKind.FUNC:
        # [1] int; [2] FUNC_PROTO int(void); [3] FUNC "x" -> [2]
        return _int() + _t(0, BtfKind.FUNC_PROTO, 0, 1) + _t(1, BtfKind.FUNC, 0, 2), b"\0x\0"
    if kind == BtfKind.FUNC_PROTO:
        return _int() + _t(0, BtfKind.FUNC_PROTO, 0, 1), b"\0"
    if kind == BtfKind.VAR or kind == BtfKind.DATASEC:
        # [1] int; [2] VAR "a" int, global; [3] DATASEC ".data" { [2] @0, 4 }
        return (_int() + _t(1, BtfKind.VAR, 0, 1) + struct.pack("=I", 1)
                + _t(3, BtfKind.DATASEC, 1, 4) + struct.pack("=III", 2, 0, 4)), b"\0a\0.data\0"
    if kind == BtfKind.FLOAT:
        return _t(1, BtfKind.FLOAT, 0, 4), b"\0float\0"
    if kind == BtfKind.DECL_TAG:
        # [1] int; [2] VAR "a"; [3] DECL_TAG "tag" -> [2], component_idx -1
        return (_int() + _t(1, BtfKind.VAR, 0, 1) + struct.pack("=I", 1)
                + _t(3, BtfKind.DECL_TAG, 0, 2) + struct.pack("=i", -1)), b"\0a\0tag\0"
    if kind == BtfKind.TYPE_TAG:
        # [1] int; [2] TYPE_TAG "tag" -> [1]; [3] PTR -> [2]
        return (_int() + _t(1, BtfKind.TYPE_TAG, 0, 1) + _t(0, BtfKind.PTR, 0, 2)), b"\0tag\0"
    if kind == BtfKind.ENUM64:
        # [1] ENUM64 "e" size 8 { "v" = 1 << 32 }
        return (_t(1, BtfKind.ENUM64, 1, 8) + struct.pack("=III", 3, 0, 1)), b"\0e\0v\0"
    if kind == BtfKind.ENUM:
        return (_t(1, BtfKind.ENUM, 1, 4) + struct.pack("=Ii", 3, 1)), b"\0e\0v\0"
    if kind in (BtfKind.STRUCT, BtfKind.UNION):
        return (_int() + _t(1, kind, 1, 4) + struct.pack("=III", 3, 1, 0)), b"\0s\0m\0"
    if kind in (BtfKind.PTR, BtfKind.CONST, BtfKind.VOLATILE, BtfKind.RESTRICT):
        return _int() + _t(0, kind, 0, 1), b"\0"
    if kind == BtfKind.TYPEDEF:
        return _int() + _t(1, kind, 0, 1), b"\0t\0"
    if kind == BtfKind.ARRAY:
        return _int() + _t(0, kind, 0, 0) + struct.pack("=III", 1, 1, 4), b"\0"
    if kind == BtfKind.FWD:
        return _t(1, kind, 0, 0), b"\0f\0"
    return None


def _try_btf(types: bytes, strings: bytes) -> bool:
    try:
        fd, _ = C.btf_load(_native(raw_btf(types, strings)))
    except KernelError as err:
        if err.errno == E.EPERM:
            raise
        return False
    fd.close()
    return True


def probe_btf_kind(kind: int) -> bool:
    """Does BPF_BTF_LOAD accept a blob using ``kind`` (a ``BTF_KIND_*`` number)?"""
    return _probe_btf_kind(int(kind))


@functools.lru_cache(maxsize=None)
def _probe_btf_kind(kind: int) -> bool:
    blob = _probe_blob(kind)
    if blob is None:
        return False
    return _try_btf(*blob)


def has_btf_func() -> bool:
    """BTF_KIND_FUNC / FUNC_PROTO (Linux 5.0)."""
    return probe_btf_kind(BtfKind.FUNC)


@functools.lru_cache(maxsize=None)
def has_btf_func_global() -> bool:
    """FUNC with ``BTF_FUNC_GLOBAL`` linkage (vlen = 1; Linux 5.6)."""
    return _try_btf(_int() + _t(0, BtfKind.FUNC_PROTO, 0, 1) + _t(1, BtfKind.FUNC, 1, 2), b"\0x\0")


def has_btf_datasec() -> bool:
    """BTF_KIND_VAR / DATASEC (Linux 5.2)."""
    return probe_btf_kind(BtfKind.DATASEC)


def has_btf_float() -> bool:
    """BTF_KIND_FLOAT (Linux 5.13)."""
    return probe_btf_kind(BtfKind.FLOAT)


def has_btf_decl_tag() -> bool:
    """BTF_KIND_DECL_TAG (Linux 5.16)."""
    return probe_btf_kind(BtfKind.DECL_TAG)


def has_btf_type_tag() -> bool:
    """BTF_KIND_TYPE_TAG (Linux 5.17)."""
    return probe_btf_kind(BtfKind.TYPE_TAG)


def has_btf_enum64() -> bool:
    """BTF_KIND_ENUM64 (Linux 6.0)."""
    return probe_btf_kind(BtfKind.ENUM64)


# -- programs ---------------------------------------------------------------------

_TRIVIAL = (b.mov64_imm(0, 0), b.exit_insn())


def _load(prog_type: ProgType, insns: Sequence[Instruction], *, log: bool = False,
          **kw: object) -> Tuple[Optional[int], str]:
    """Load, close; (None, log) on success, (errno, log) on refusal (EPERM re-raised
    only for plain socket filters, where it can only mean "no privileges")."""
    try:
        fd, text = C.prog_load(prog_type, encode(list(insns)), "GPL", log_level=1 if log else 0,
                               log_size=65536 if log else 0, **kw)  # type: ignore[arg-type]
    except KernelError as err:
        if err.errno == E.EPERM and prog_type == ProgType.SOCKET_FILTER:
            raise
        return int(err.errno or 0), str(getattr(err, "log", ""))
    fd.close()
    return None, text


@functools.lru_cache(maxsize=None)
def has_prog_name() -> bool:
    """``prog_name`` accepted by BPF_PROG_LOAD (Linux 4.15)."""
    err, _ = _load(ProgType.SOCKET_FILTER, _TRIVIAL, name="probe")
    return err is None


def _with_map(map_type: MapType, key_size: int, value_size: int, max_entries: int, flags: int = 0) -> FD:
    return C.map_create(map_type, key_size, value_size, max_entries, flags=flags)


@functools.lru_cache(maxsize=None)
def has_global_data() -> bool:
    """Direct map value access (BPF_PSEUDO_MAP_VALUE; ``.data``/``.bss`` globals, Linux 5.2).

    Like libbpf's ``probe_kern_global_data``: an array map and a program
    storing 42 into its value through ``ld_imm64 src=BPF_PSEUDO_MAP_VALUE``.
    """
    try:
        m = _with_map(MapType.ARRAY, 4, 32, 1)
    except KernelError as err:
        if err.errno == E.EPERM:
            raise
        return False
    with m:
        prog = [b.ld_map_value(1, m.fileno(), 0), b.st_mem(0x18, 1, 0, 42),  # BPF_DW
                b.mov64_imm(0, 0), b.exit_insn()]
        refused, _ = _load(ProgType.SOCKET_FILTER, prog)
    return refused is None


@functools.lru_cache(maxsize=None)
def has_mmapable_maps() -> bool:
    """``BPF_F_MMAPABLE`` array maps (Linux 5.5): what makes global data mmap-able."""
    try:
        m = _with_map(MapType.ARRAY, 4, 4, 1, MapFlags.MMAPABLE)
    except KernelError as err:
        if err.errno == E.EPERM:
            raise
        return False
    m.close()
    return True


@functools.lru_cache(maxsize=None)
def has_bpf_to_bpf_with_tail_calls() -> bool:
    """A subprogram (bpf-to-bpf call) that makes a tail call (Linux 5.10 on x86-64).

    The main program calls a subprogram which calls ``bpf_tail_call`` on an
    empty prog array; the kernel refuses this mix where the JIT lacks it.
    """
    try:
        pa = _with_map(MapType.PROG_ARRAY, 4, 4, 1)
    except KernelError as err:
        if err.errno == E.EPERM:
            raise
        return False
    # BTF for the two functions: the kernel allows tail calls in subprograms
    # only when func_info describes them.
    # [1] int; [2] FUNC_PROTO int(void); [3] FUNC "m" -> [2]; [4] FUNC "s" -> [2]
    types = (_int() + _t(0, BtfKind.FUNC_PROTO, 0, 1) + _t(1, BtfKind.FUNC, 0, 2)
             + _t(3, BtfKind.FUNC, 0, 2))
    try:
        btf_fd, _ = C.btf_load(_native(raw_btf(types, b"\0m\0s\0")))
    except KernelError:
        pa.close()
        return False
    with pa, btf_fd:
        prog = [
            b.call_pseudo(2),            # 0: call subprog at 3
            b.mov64_imm(0, 0),           # 1
            b.exit_insn(),               # 2
            b.ld_map_fd(2, pa.fileno()),  # 3-4: subprog: r2 = prog array (r1 = ctx)
            b.mov64_imm(3, 0),           # 5
            b.call_helper(12),           # 6: bpf_tail_call
            b.mov64_imm(0, 0),           # 7
            b.exit_insn(),               # 8
        ]
        # struct bpf_func_info { __u32 insn_off; __u32 type_id; }
        func_info = struct.pack("=IIII", 0, 3, 3, 4)
        refused, _ = _load(ProgType.SOCKET_FILTER, prog, prog_btf_fd=btf_fd, func_info=func_info,
                           func_info_rec_size=8)
    return refused is None


@functools.lru_cache(maxsize=None)
def has_btf() -> bool:
    """BPF_BTF_LOAD at all (Linux 4.18): a one-INT blob."""
    return _try_btf(_int(1), b"\0int\0")


@functools.lru_cache(maxsize=None)
def has_prog_bind_map() -> bool:
    """BPF_PROG_BIND_MAP (Linux 5.10), which libbpf uses to keep .rodata alive."""
    try:
        m = _with_map(MapType.ARRAY, 4, 4, 1)
    except KernelError as err:
        if err.errno == E.EPERM:
            raise
        return False
    with m:
        try:
            p, _ = C.prog_load(ProgType.SOCKET_FILTER, encode(list(_TRIVIAL)), "GPL")
        except KernelError:
            return False
        with p:
            try:
                C.prog_bind_map(p, m)
            except KernelError:
                return False
    return True


@functools.lru_cache(maxsize=None)
def has_exp_attach_type() -> bool:
    """``expected_attach_type`` accepted at load time (Linux 4.17; libbpf's
    ``probe_kern_exp_attach_type``: a CGROUP_SOCK program for INET_SOCK_CREATE)."""
    err, _ = _load(ProgType.CGROUP_SOCK, _TRIVIAL, expected_attach_type=AttachType.CGROUP_INET_SOCK_CREATE)
    return err is None


_PROBE_READ_KERNEL = 113
_GET_ATTACH_COOKIE = 174
_KTIME_GET_COARSE_NS = 160


@functools.lru_cache(maxsize=None)
def has_probe_read_kernel() -> bool:
    """``bpf_probe_read_kernel`` (Linux 5.5) from a tracepoint program."""
    prog = [b.mov64_reg(1, 10), b.alu64_imm(0x00, 1, -8), b.mov64_imm(2, 8), b.mov64_imm(3, 0),
            b.call_helper(_PROBE_READ_KERNEL), b.exit_insn()]
    err, _ = _load(ProgType.TRACEPOINT, prog)
    return err is None


@functools.lru_cache(maxsize=None)
def has_bpf_cookie() -> bool:
    """``bpf_get_attach_cookie`` (Linux 5.15): libbpf's ``LINUX_HAS_BPF_COOKIE``."""
    err, _ = _load(ProgType.TRACEPOINT, [b.call_helper(_GET_ATTACH_COOKIE), b.exit_insn()])
    return err is None


@functools.lru_cache(maxsize=None)
def has_memcg_account() -> bool:
    """BPF memory charged to memory cgroups instead of RLIMIT_MEMLOCK (Linux 5.11).

    As libbpf: the helper ``bpf_ktime_get_coarse_ns`` arrived in the same
    release, so a socket filter calling it loads exactly on those kernels.
    Without it, callers should raise RLIMIT_MEMLOCK before creating maps.
    """
    err, _ = _load(ProgType.SOCKET_FILTER, [b.call_helper(_KTIME_GET_COARSE_NS), b.exit_insn()])
    return err is None


@functools.lru_cache(maxsize=None)
def has_perf_link() -> bool:
    """BPF_LINK_CREATE for perf events (Linux 5.15).

    As libbpf's ``probe_perf_link``: link a tracepoint program to fd -1; a
    kernel that knows perf links answers EBADF, an older one EINVAL.
    """
    try:
        p, _ = C.prog_load(ProgType.TRACEPOINT, encode(list(_TRIVIAL)), "GPL")
    except KernelError as err:
        if err.errno == E.EPERM:
            raise
        return False
    with p:
        try:
            link = C.link_create(p, 0xFFFFFFFF, AttachType.PERF_EVENT)
        except KernelError as err:
            return err.errno == E.EBADF
        link.close()
        return True


#: the arch prefix of syscall entry points when the kernel wraps syscalls
#: (libbpf's ``arch_specific_syscall_pfx``)
_SYSCALL_PREFIX = {
    "x86_64": "x64", "i386": "ia32", "i686": "ia32", "s390x": "s390x", "s390": "s390",
    "armv7l": "arm", "aarch64": "arm64", "arm64": "arm64", "mips64": "mips", "riscv64": "riscv",
    "ppc64": "powerpc", "ppc64le": "powerpc", "loongarch64": "loongarch",
}


def syscall_prefix() -> Optional[str]:
    """``"x64"`` on x86-64 (``__x64_sys_bpf``), ``"arm64"``...; None where unknown."""
    return _SYSCALL_PREFIX.get(os.uname().machine)


@functools.lru_cache(maxsize=None)
def has_syscall_wrapper() -> bool:
    """Syscalls entered through ``__<arch>_sys_*`` wrappers (libbpf's
    ``LINUX_HAS_SYSCALL_WRAPPER``), decided as libbpf does: can a kprobe be
    created on ``__<arch>_sys_bpf``?  With the ``kprobe`` PMU a perf event is
    opened; without it a legacy tracefs kprobe is added and removed again.
    A kernel without kprobes therefore says False, like libbpf.
    """
    from purebpf.syscall import perf as P

    pfx = syscall_prefix()
    if pfx is None:
        return False
    symbol = f"__{pfx}_sys_bpf"
    from purebpf.errors import NotSupportedError

    try:
        ptype = P.pmu_type("kprobe")
    except NotSupportedError:
        return _legacy_kprobe_works(symbol)
    import ctypes

    name = ctypes.create_string_buffer(symbol.encode())
    attr = P.PerfEventAttr()
    attr.type = ptype
    attr.config1 = ctypes.addressof(name)
    attr.config2 = 0
    try:
        fd = P.perf_event_open(attr, os.getpid(), -1)
    except KernelError:
        return False
    fd.close()
    return True


def _legacy_kprobe_works(symbol: str) -> bool:
    """Add and remove ``p:purebpf_<pid>_probe <symbol>`` in tracefs kprobe_events."""
    from purebpf.syscall.perf import TRACEFS_ROOTS

    event = f"purebpf_{os.getpid()}_{symbol}"
    for root in TRACEFS_ROOTS:
        path = f"{root}/kprobe_events"
        if not os.path.exists(path):
            continue
        try:
            with open(path, "a") as f:
                f.write(f"p:kprobes/{event} {symbol}\n")
        except OSError:
            return False
        try:
            with open(path, "a") as f:
                f.write(f"-:kprobes/{event}\n")
        except OSError:
            pass
        return True
    return False


# program-type specific attributes a minimal load needs (libbpf's probe_prog_load)
_PROG_TYPE_ATTRS: Dict[ProgType, Dict[str, object]] = {
    ProgType.CGROUP_SOCK_ADDR: {"expected_attach_type": AttachType.CGROUP_INET4_CONNECT},
    ProgType.CGROUP_SOCKOPT: {"expected_attach_type": AttachType.CGROUP_GETSOCKOPT},
    ProgType.SK_LOOKUP: {"expected_attach_type": AttachType.SK_LOOKUP},
    ProgType.LIRC_MODE2: {"expected_attach_type": AttachType.LIRC_MODE2},
    ProgType.NETFILTER: {"expected_attach_type": AttachType.NETFILTER},
    ProgType.SYSCALL: {"prog_flags": ProgFlags.SLEEPABLE},
    ProgType.TRACING: {"expected_attach_type": AttachType.TRACE_FENTRY, "attach_btf_id": 1},
    ProgType.LSM: {"expected_attach_type": AttachType.LSM_MAC, "attach_btf_id": 1},
    ProgType.EXT: {"attach_btf_id": 1},
    ProgType.STRUCT_OPS: {"attach_btf_id": 1},
}


def _prog_type_attrs(prog_type: ProgType) -> Dict[str, object]:
    kw = dict(_PROG_TYPE_ATTRS.get(prog_type, {}))
    if prog_type == ProgType.KPROBE:
        kw["kern_version"] = kernel_version_code()
    return kw


@functools.lru_cache(maxsize=None)
def has_prog_type(prog_type: Union[ProgType, int]) -> bool:
    """Can programs of type ``prog_type`` be loaded here?

    A trivial program (``r0 = 0; exit``) is loaded with the attributes the
    type needs.  An unknown (or compiled-out) type is refused with EINVAL
    before the verifier says anything; a verifier complaint about the dummy
    attach target (struct_ops) still means the type exists.  EPERM -- for
    tracing/LSM/freplace types under kernel lockdown -- counts as absent,
    as in libbpf's ``libbpf_probe_bpf_prog_type``.
    """
    pt = ProgType(prog_type) if int(prog_type) in ProgType._value2member_map_ else prog_type
    kw = _prog_type_attrs(pt) if isinstance(pt, ProgType) else {}
    err, log = _load(pt, _TRIVIAL, log=True, **kw)  # type: ignore[arg-type]
    if err is None:
        return True
    if err == E.EPERM:
        return False  # known but refused here (lockdown), as libbpf answers
    return not (err in (E.EINVAL, E.EOPNOTSUPP) and not log.strip())


@functools.lru_cache(maxsize=None)
def has_helper(prog_type: Union[ProgType, int], helper_id: int) -> bool:
    """May programs of ``prog_type`` call helper ``helper_id``?

    As libbpf's ``libbpf_probe_bpf_helper``: load ``call helper; exit`` with a
    verifier log and look for "invalid func" / "unknown func" (the argument
    checks that follow do not matter).
    """
    pt = ProgType(prog_type)
    err, log = _load(pt, [b.call_helper(helper_id), b.exit_insn()], log=True, **_prog_type_attrs(pt))
    if err is None:
        return True
    if "invalid func " in log or "unknown func " in log:
        return False
    # no verifier output at all: the program type itself was refused
    return bool(log.strip())


@functools.lru_cache(maxsize=None)
def has_map_type(map_type: Union[MapType, int]) -> bool:
    """Can a map of ``map_type`` be created (with the sizes that type requires)?"""
    mt = MapType(map_type)
    key, value, entries, flags = 4, 4, 1, 0
    btf_fd: Optional[FD] = None
    kw: Dict[str, object] = {}
    inner: Optional[FD] = None
    expected_err: Optional[int] = None
    if mt == MapType.STACK_TRACE:
        value = 8
    elif mt == MapType.LPM_TRIE:
        key, value, flags = 8, 8, MapFlags.NO_PREALLOC
    elif mt in (MapType.CGROUP_STORAGE, MapType.PERCPU_CGROUP_STORAGE):
        key, value, entries = 16, 8, 0  # sizeof(struct bpf_cgroup_storage_key): u64 + u32, padded
    elif mt in (MapType.QUEUE, MapType.STACK, MapType.BLOOM_FILTER):
        key = 0
    elif mt in (MapType.RINGBUF, MapType.USER_RINGBUF):
        key, value, entries = 0, 0, os.sysconf("SC_PAGE_SIZE")
    elif mt == MapType.ARENA:
        key, value, entries, flags = 0, 0, 1, MapFlags.MMAPABLE
    elif mt in (MapType.SK_STORAGE, MapType.INODE_STORAGE, MapType.TASK_STORAGE, MapType.CGRP_STORAGE):
        # [1] int; [2] struct val { int a; int b; } -- key int, value struct
        types = (_int() + _t(1, BtfKind.STRUCT, 2, 8) + struct.pack("=III", 5, 1, 0)
                 + struct.pack("=III", 7, 1, 32))
        try:
            btf_fd, _ = C.btf_load(_native(raw_btf(types, b"\0val\0a\0b\0")))
        except KernelError:
            return False
        value, entries, flags = 8, 0, MapFlags.NO_PREALLOC
        kw = {"btf_fd": btf_fd, "btf_key_type_id": 1, "btf_value_type_id": 2}
    elif mt == MapType.STRUCT_OPS:
        # an invalid vmlinux value type id is refused with ENOTSUPP only by
        # kernels that know struct_ops maps
        kw = {"btf_vmlinux_value_type_id": 1}
        expected_err = 524
    elif mt in (MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS):
        try:
            inner = _with_map(MapType.HASH, 4, 4, 1)
        except KernelError:
            return False
        kw = {"inner_map_fd": inner}
    try:
        if mt == MapType.STRUCT_OPS:
            vmlinux_fd = _vmlinux_btf_fd()
            if vmlinux_fd is None:
                return False
            with vmlinux_fd:
                fd = C.map_create(mt, key, value, entries, flags=flags, btf_fd=vmlinux_fd,
                                  btf_vmlinux_value_type_id=1)
        else:
            fd = C.map_create(mt, key, value, entries, flags=flags, **kw)  # type: ignore[arg-type]
    except KernelError as err:
        if err.errno == E.EPERM:
            raise
        return expected_err is not None and err.errno == expected_err
    finally:
        if btf_fd is not None:
            btf_fd.close()
        if inner is not None:
            inner.close()
    fd.close()
    return True


def _vmlinux_btf_fd() -> Optional[FD]:
    """An FD for the kernel's own BTF object (found by walking BTF ids)."""
    start = 0
    while True:
        nxt = C.btf_get_next_id(start)
        if nxt is None:
            return None
        start = nxt
        try:
            fd = C.btf_get_fd_by_id(nxt)
        except KernelError:
            continue
        info = C.btf_info(fd)
        if info.kernel_btf and C.btf_name(fd) == "vmlinux":
            return fd
        fd.close()


# -- versions and CPUs ---------------------------------------------------------------

def kernel_version_from(release: str, version: str, signature: Optional[str] = None) -> int:
    """``LINUX_VERSION_CODE`` from ``uname -r`` (``release``), ``uname -v``
    (``version``) and /proc/version_signature (``signature``), as libbpf's
    ``get_kernel_version`` computes it:

    1. Ubuntu: the third word of /proc/version_signature
       ("Ubuntu 5.4.0-12.15-generic 5.4.8" -> 5.4.8), because ``uname -r``
       says 5.4.0;
    2. Debian: "Debian A.B.C" inside ``uname -v``
       ("#1 SMP Debian 4.19.260-1 (2022-09-29)" -> 4.19.260), because
       ``uname -r`` says 4.19.0-22-amd64;
    3. otherwise the first three numbers of ``uname -r``; 0 when there are not three.

    ``KERNEL_VERSION(a, b, c)`` = ``(a << 16) + (b << 8) + min(c, 255)``.
    """
    def code(m: "Optional[re.Match[str]]") -> Optional[int]:
        if m is None:
            return None
        a, b_, c = (int(x) for x in m.groups())
        return (a << 16) + (b_ << 8) + min(c, 255)

    if signature is not None:
        parts = signature.split()
        if len(parts) >= 3:
            found = code(re.match(r"(\d+)\.(\d+)\.(\d+)", parts[2]))
            if found is not None:
                return found
    at = version.find("Debian ")
    if at >= 0:
        found = code(re.match(r"Debian (\d+)\.(\d+)\.(\d+)", version[at:]))
        if found is not None:
            return found
    return code(re.match(r"(\d+)\.(\d+)\.(\d+)", release)) or 0


@functools.lru_cache(maxsize=None)
def kernel_version() -> int:
    """``LINUX_VERSION_CODE`` of the running kernel (see :func:`kernel_version_from`)."""
    try:
        with open("/proc/version_signature") as f:
            signature: Optional[str] = f.read()
    except OSError:
        signature = None
    uts = os.uname()
    return kernel_version_from(uts.release, uts.version, signature)


def kernel_version_code() -> int:
    """Alias of :func:`kernel_version` (the value ``kern_version`` of kprobe loads takes)."""
    return kernel_version()


def parse_cpu_list(text: str) -> List[int]:
    """Parse the kernel's CPU list format (``"0-3,5,7-8"``) into sorted CPU numbers."""
    cpus: List[int] = []
    for raw in text.strip().split(","):
        part = raw.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            if not lo.isdigit() or not hi.isdigit() or int(hi) < int(lo):
                raise ValueError(f"bad CPU range {part!r}")
            cpus.extend(range(int(lo), int(hi) + 1))
        else:
            if not part.isdigit():
                raise ValueError(f"bad CPU number {part!r}")
            cpus.append(int(part))
    return sorted(set(cpus))


@functools.lru_cache(maxsize=None)
def _possible() -> Tuple[int, ...]:
    with open("/sys/devices/system/cpu/possible") as f:
        return tuple(parse_cpu_list(f.read()))


def possible_cpus() -> List[int]:
    """The possible CPUs (/sys/devices/system/cpu/possible): the index set of
    per-CPU map values."""
    return list(_possible())


def num_possible_cpus() -> int:
    """How many values a per-CPU map holds per key (libbpf's ``libbpf_num_possible_cpus``,
    i.e. the highest possible CPU + 1)."""
    cpus = _possible()
    return (max(cpus) + 1) if cpus else 1


def bump_memlock_rlimit() -> bool:
    """Raise RLIMIT_MEMLOCK to unlimited where the kernel still charges BPF
    memory to it (before Linux 5.11), as libbpf does before its first map.

    Returns True when the limit was changed; False on kernels that account
    BPF memory to memory cgroups (nothing to do) or when already unlimited.
    """
    import resource

    if has_memcg_account():
        return False
    soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    if soft == resource.RLIM_INFINITY and hard == resource.RLIM_INFINITY:
        return False
    resource.setrlimit(resource.RLIMIT_MEMLOCK, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    return True


_NO_ARG_PROBES = (
    "has_btf", "has_btf_func", "has_btf_func_global", "has_btf_datasec", "has_btf_float",
    "has_btf_decl_tag", "has_btf_type_tag", "has_btf_enum64", "has_prog_name", "has_global_data",
    "has_mmapable_maps", "has_bpf_to_bpf_with_tail_calls", "has_prog_bind_map", "has_exp_attach_type",
    "has_probe_read_kernel", "has_bpf_cookie", "has_memcg_account", "has_perf_link", "has_syscall_wrapper",
)


def summary() -> Dict[str, object]:
    """Every argument-less probe by name, plus ``kernel_version`` and
    ``num_possible_cpus``: what this kernel offers, at a glance."""
    out: Dict[str, object] = {name: globals()[name]() for name in _NO_ARG_PROBES}
    out["kernel_version"] = kernel_version()
    out["num_possible_cpus"] = num_possible_cpus()
    return out


def clear_cache() -> None:
    """Forget every cached probe answer (tests; a changed environment)."""
    for fn in (_probe_btf_kind, has_btf_func_global, has_prog_name, has_global_data, has_mmapable_maps,
               has_btf, has_prog_bind_map, has_exp_attach_type, has_probe_read_kernel, has_bpf_cookie,
               has_memcg_account, has_perf_link, has_syscall_wrapper,
               has_bpf_to_bpf_with_tail_calls, has_prog_type, has_helper, has_map_type, kernel_version,
               _possible):
        fn.cache_clear()
