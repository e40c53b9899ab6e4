"""purebpf.elf.section_defs against libbpf itself (libbpf.so.1 through ctypes).

Oracles:

* ``libbpf_prog_type_by_name(name, &prog_type, &attach_type)``: 0 and the
  table entry's values, or ``-ESRCH`` for names that are not program sections.
* ``libbpf_attach_type_by_name(name, &attach_type)``: 0 only for entries
  flagged ``SEC_ATTACHABLE``, ``-EINVAL`` otherwise.
* libbpf's own list of its table, which it logs (at debug level) when a name
  is not found: our table must contain it, in the same order.

The installed libbpf (Debian 12: 1.1) predates some entries.  Those are
listed in :data:`NEWER_THAN_LIBBPF_1_1`; names that fall on them are not
compared with libbpf (which must indeed not know them) but with the values
libbpf 1.6's table gives, spelled out in :data:`NEWER_EXPECTED` with the
uapi constants.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import gzip
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from purebpf.elf.section_defs import (
    SECTION_DEFS,
    ProgramKind,
    SecFlags,
    SectionDef,
    classify_section,
    find_section_def,
)
from purebpf.uapi import AttachType, BpfCmd, ProgFlags, ProgType

A = AttachType
P = ProgType

#: Table entries (patterns) that libbpf 1.1 does not have, with what libbpf
#: 1.6's ``section_defs[]`` says of them: (prog type, expected attach type,
#: sleepable).
NEWER_EXPECTED: Dict[str, Tuple[ProgType, Optional[AttachType], bool]] = {
    "kprobe.session+": (P.KPROBE, A.TRACE_KPROBE_SESSION, False),
    "uprobe.multi+": (P.KPROBE, A.TRACE_UPROBE_MULTI, False),
    "uretprobe.multi+": (P.KPROBE, A.TRACE_UPROBE_MULTI, False),
    "uprobe.session+": (P.KPROBE, A.TRACE_UPROBE_SESSION, False),
    "uprobe.multi.s+": (P.KPROBE, A.TRACE_UPROBE_MULTI, True),
    "uretprobe.multi.s+": (P.KPROBE, A.TRACE_UPROBE_MULTI, True),
    "uprobe.session.s+": (P.KPROBE, A.TRACE_UPROBE_SESSION, True),
    "usdt.s+": (P.KPROBE, None, True),
    "tc/ingress": (P.SCHED_CLS, A.TCX_INGRESS, False),
    "tc/egress": (P.SCHED_CLS, A.TCX_EGRESS, False),
    "tcx/ingress": (P.SCHED_CLS, A.TCX_INGRESS, False),
    "tcx/egress": (P.SCHED_CLS, A.TCX_EGRESS, False),
    "netkit/primary": (P.SCHED_CLS, A.NETKIT_PRIMARY, False),
    "netkit/peer": (P.SCHED_CLS, A.NETKIT_PEER, False),
    "sk_skb/verdict": (P.SK_SKB, A.SK_SKB_VERDICT, False),
    "cgroup/connect_unix": (P.CGROUP_SOCK_ADDR, A.CGROUP_UNIX_CONNECT, False),
    "cgroup/sendmsg_unix": (P.CGROUP_SOCK_ADDR, A.CGROUP_UNIX_SENDMSG, False),
    "cgroup/recvmsg_unix": (P.CGROUP_SOCK_ADDR, A.CGROUP_UNIX_RECVMSG, False),
    "cgroup/getpeername_unix": (P.CGROUP_SOCK_ADDR, A.CGROUP_UNIX_GETPEERNAME, False),
    "cgroup/getsockname_unix": (P.CGROUP_SOCK_ADDR, A.CGROUP_UNIX_GETSOCKNAME, False),
    "struct_ops.s+": (P.STRUCT_OPS, None, True),
    "netfilter": (P.NETFILTER, A.NETFILTER, False),
}
NEWER_THAN_LIBBPF_1_1: Set[str] = set(NEWER_EXPECTED)

#: Names that are not program sections for libbpf >= 1.0 (no sloppy prefixes).
NEGATIVE_NAMES = [
    "", "/", "+", ".text", "license", "version", "maps", ".maps", ".BTF", ".BTF.ext",
    ".rodata", ".data", ".bss", ".kconfig", ".ksyms", ".rodata.str1.1", ".data.custom",
    ".relkprobe/x", "xdpfoo", "xdp_prog", "xdp/", "xdp/foo", "xdp.frags/", "socketx",
    "socket/", "socket/1", "kprobe_foo", "kprobex", "kprobe.", "kprobe.multix", "tp_foo",
    "tracepoint_x", "cgroup/unknown", "cgroup/", "cgroup", "cgroup_skb", "cgroup_skb/",
    "cgroup/skbx", "sk_skb/unknown", "sk_skb/", "sk_msgx", "tc/", "tc/ingressx",
    "classifier/foo", "action/foo", "perf_event/x", "syscall/x", "sk_lookup/x",
    "lsm_cgroupx", "fentryx", "struct_opsx", "iterx", "usdtx", "TP/x", "Kprobe/x",
    " kprobe/x", "kprobe /x", "SEC(\"kprobe\")", "uprobe_s", "uprobe.ss",
]

#: Hand-picked names that libbpf knows, covering every kind of pattern.
POSITIVE_NAMES = [
    "tp_btf", "kprobe", "uprobe", "kretprobe", "tp", "tracepoint", "raw_tp", "ksyscall",
    "kprobe/do_sys_openat2", "kprobe/do_sys_open+0x10", "kretprobe/do_exit",
    "uprobe//bin/bash:readline", "uretprobe//lib/x86_64-linux-gnu/libc.so.6:malloc",
    "uprobe.s//bin/bash:readline+8", "usdt/./app:provider:name", "ksyscall/openat",
    "kretsyscall/execve", "tp/syscalls/sys_enter_write", "tracepoint/sched/sched_switch",
    "raw_tp/sched_switch", "raw_tracepoint/sys_enter", "raw_tp.w/bpf_test_finish",
    "tp_btf/sched_switch", "fentry/do_unlinkat", "fexit/do_unlinkat",
    "fmod_ret/bpf_modify_return_test", "fentry.s/__x64_sys_write", "freplace/xdp_prog",
    "lsm/file_open", "lsm.s/bprm_committed_creds", "lsm_cgroup/socket_bind",
    "iter/task", "iter.s/task_file", "struct_ops/dctcp_init", "struct_ops",
    "kprobe.multi/tcp_*", "kretprobe.multi/vfs_*", "xdp", "xdp.frags", "xdp/devmap",
    "xdp.frags/cpumap", "socket", "sk_reuseport", "sk_reuseport/migrate", "sockops",
    "sk_skb", "sk_skb/stream_parser", "sk_msg", "cgroup_skb/ingress", "cgroup_skb/egress",
    "cgroup/skb", "cgroup/sock", "cgroup/dev", "cgroup/sysctl", "cgroup/getsockopt",
    "syscall", "perf_event", "lirc_mode2", "flow_dissector", "sk_lookup", "lwt_in",
    "lwt_xmit", "tc", "classifier", "action", "kprobe/", "tp/", "tp/sched",
]


# --------------------------------------------------------------------------
# the libbpf oracle

class Libbpf:
    """The few libbpf.so.1 entry points the tests use."""

    def __init__(self) -> None:
        self.lib = ctypes.CDLL(ctypes.util.find_library("bpf") or "libbpf.so.1")
        self.lib.libbpf_prog_type_by_name.argtypes = [
            ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int)]
        self.lib.libbpf_prog_type_by_name.restype = ctypes.c_int
        self.lib.libbpf_attach_type_by_name.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]
        self.lib.libbpf_attach_type_by_name.restype = ctypes.c_int
        self.lib.libbpf_set_print.argtypes = [ctypes.c_void_p]
        self.lib.libbpf_set_print.restype = ctypes.c_void_p
        self.lib.libbpf_major_version.restype = ctypes.c_uint32
        self.lib.libbpf_minor_version.restype = ctypes.c_uint32

    @property
    def version(self) -> Tuple[int, int]:
        return int(self.lib.libbpf_major_version()), int(self.lib.libbpf_minor_version())

    def prog_type_by_name(self, name: str) -> Tuple[int, int, int]:
        """(return code, prog_type, expected_attach_type)."""
        prog_type = ctypes.c_int(-1)
        attach_type = ctypes.c_int(-1)
        rc = self.lib.libbpf_prog_type_by_name(name.encode(), ctypes.byref(prog_type),
                                               ctypes.byref(attach_type))
        return rc, prog_type.value, attach_type.value

    def attach_type_by_name(self, name: str) -> Tuple[int, int]:
        attach_type = ctypes.c_int(-1)
        rc = self.lib.libbpf_attach_type_by_name(name.encode(), ctypes.byref(attach_type))
        return rc, attach_type.value

    def table_patterns(self) -> List[str]:
        """libbpf's section_defs[] patterns, from the list it logs for an unknown name."""
        printer = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
        libc = ctypes.CDLL(None)
        messages: List[str] = []

        def collect(level: int, fmt: bytes, args: int) -> int:
            buf = ctypes.create_string_buffer(1 << 16)
            # the va_list is passed on untouched, by address, to vsnprintf
            libc.vsnprintf(buf, ctypes.c_size_t(len(buf)), fmt, ctypes.c_void_p(args))
            messages.append(buf.value.decode())
            return 0

        callback = printer(collect)
        old = self.lib.libbpf_set_print(ctypes.cast(callback, ctypes.c_void_p))
        try:
            rc, _, _ = self.prog_type_by_name("purebpf-test-no-such-section")
        finally:
            self.lib.libbpf_set_print(old)
        assert rc == -errno.ESRCH
        marker = "supported section(type) names are:"
        listing = [m for m in messages if marker in m]
        assert listing, messages
        return listing[0].split(marker, 1)[1].split()


_LIBBPF: List[Libbpf] = []


def _shared_libbpf() -> Libbpf:
    if not _LIBBPF:
        _LIBBPF.append(Libbpf())
    return _LIBBPF[0]


@pytest.fixture(scope="module")
def libbpf() -> Libbpf:
    return _shared_libbpf()


def _sample_names() -> Iterator[str]:
    """Section names derived from every table entry, plus hand-picked ones."""
    for sec_def in SECTION_DEFS:
        pattern = sec_def.pattern
        if pattern.endswith("+"):
            prefix = pattern[:-1]
            yield from (prefix, prefix + "/", prefix + "/foo", prefix + "/foo/bar:baz",
                        prefix + "x", prefix + "_foo", prefix + ".s", prefix + "+")
        elif pattern.endswith("/"):
            yield from (pattern, pattern + "foo", pattern[:-1])
        else:
            yield from (pattern, pattern + "x", pattern + "/", pattern + "/foo", pattern[:-1])
    yield from POSITIVE_NAMES
    yield from NEGATIVE_NAMES


SAMPLE_NAMES = sorted(set(_sample_names()))


def _is_newer(name: str) -> bool:
    sec_def = find_section_def(name)
    return sec_def is not None and sec_def.pattern in NEWER_THAN_LIBBPF_1_1


def _attach_value(kind: ProgramKind) -> int:
    return 0 if kind.expected_attach_type is None else int(kind.expected_attach_type)


# --------------------------------------------------------------------------
# tests


def test_libbpf_table_is_ours_in_order(libbpf: Libbpf) -> None:
    """Every libbpf entry is in SECTION_DEFS, in the same relative order."""
    theirs = libbpf.table_patterns()
    ours = [d.pattern for d in SECTION_DEFS]
    assert len(theirs) > 80
    missing = [p for p in theirs if p not in ours]
    assert not missing
    positions = [ours.index(p) for p in theirs]
    assert positions == sorted(positions), "libbpf's first-match order is not preserved"
    # what we have beyond the installed libbpf is exactly the documented newer set
    extra = set(ours) - set(theirs)
    assert extra <= NEWER_THAN_LIBBPF_1_1, sorted(extra - NEWER_THAN_LIBBPF_1_1)
    if libbpf.version == (1, 1):
        assert extra == NEWER_THAN_LIBBPF_1_1


def test_table_has_no_duplicate_patterns() -> None:
    patterns = [d.pattern for d in SECTION_DEFS]
    assert len(patterns) == len(set(patterns))


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_prog_type_matches_libbpf(libbpf: Libbpf, name: str) -> None:
    ours = classify_section(name)
    rc, prog_type, attach_type = libbpf.prog_type_by_name(name)
    if _is_newer(name):
        # libbpf 1.1 must really not know it (else it should not be on the list)
        assert ours is not None
        expected = NEWER_EXPECTED[ours.pattern]
        assert (ours.prog_type, ours.expected_attach_type, ours.sleepable) == expected
        if libbpf.version == (1, 1):
            assert rc == -errno.ESRCH or (prog_type, attach_type) != (ours.prog_type, _attach_value(ours))
        return
    if rc == -errno.ESRCH:
        assert ours is None, f"libbpf does not know {name!r}, purebpf says {ours}"
        return
    assert rc == 0, (name, rc)
    assert ours is not None, f"libbpf knows {name!r} as prog type {prog_type}"
    assert int(ours.prog_type) == prog_type
    assert _attach_value(ours) == attach_type


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_attach_type_by_name_matches_libbpf(libbpf: Libbpf, name: str) -> None:
    if _is_newer(name):
        return
    ours = classify_section(name)
    rc, attach_type = libbpf.attach_type_by_name(name)
    attachable = ours is not None and bool(ours.sec_flags & SecFlags.ATTACHABLE)
    if rc == 0:
        assert attachable, name
        assert ours is not None and _attach_value(ours) == attach_type
    else:
        assert rc == -errno.EINVAL
        assert not attachable, name


_FRAGMENTS = sorted({d.pattern.rstrip("+/") for d in SECTION_DEFS} | {"cgroup", "sk_skb", "xdp"})


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_FRAGMENTS), st.text(alphabet="/._:+s0aX*", max_size=8))
def test_fuzzed_names_match_libbpf(prefix: str, suffix: str) -> None:
    name = prefix + suffix
    ours = classify_section(name)
    if _is_newer(name):
        return
    rc, prog_type, attach_type = _shared_libbpf().prog_type_by_name(name)
    if rc == -errno.ESRCH:
        assert ours is None, name
    else:
        assert ours is not None and (int(ours.prog_type), _attach_value(ours)) == (prog_type, attach_type), name



@settings(max_examples=500, deadline=None)
@given(st.text(max_size=40))
def test_arbitrary_text_never_raises(name: str) -> None:
    kind = classify_section(name)
    if kind is not None:
        sec_def = find_section_def(name)
        assert sec_def is not None and sec_def.matches(name)
        assert kind.section == name and kind.pattern == sec_def.pattern
        assert (kind.sleepable, kind.needs_attach_btf_id, kind.prog_flags) == (
            sec_def.sleepable, sec_def.needs_attach_btf_id, sec_def.prog_flags)


# --- attach target, sleepable, flags: derived from the pattern text --------


@pytest.mark.parametrize("sec_def", [d for d in SECTION_DEFS if d.pattern.endswith("+")],
                         ids=lambda d: d.pattern)
def test_attach_target_after_prefix(sec_def: SectionDef) -> None:
    prefix = sec_def.pattern[:-1]
    for target in ("x", "syscalls/sys_enter_openat", "/bin/bash:readline", "a+0x10"):
        kind = classify_section(prefix + "/" + target)
        assert kind is not None and kind.pattern == sec_def.pattern
        assert kind.attach_target == target
        assert kind.section == prefix + "/" + target
    bare = classify_section(prefix)
    assert bare is not None and bare.attach_target is None and not bare.auto_attach


@pytest.mark.parametrize("sec_def", SECTION_DEFS, ids=lambda d: d.pattern)
def test_flags_follow_the_pattern_name(sec_def: SectionDef) -> None:
    """``.s`` means sleepable, ``.frags`` means XDP frags, BTF-attached families need a BTF id."""
    name = sec_def.pattern[:-1] + "/t" if sec_def.pattern.endswith("+") else sec_def.pattern
    kind = classify_section(name)
    assert kind is not None
    family = sec_def.pattern.rstrip("+").split("/")[0]
    sleepable = family.endswith(".s") or family == "syscall"
    assert kind.sleepable == sleepable
    assert bool(kind.prog_flags & ProgFlags.SLEEPABLE) == sleepable
    assert bool(kind.prog_flags & ProgFlags.XDP_HAS_FRAGS) == family.startswith("xdp.frags")
    base = family[:-2] if family.endswith(".s") else family
    needs_btf = base in {"tp_btf", "fentry", "fexit", "fmod_ret", "freplace", "lsm",
                         "lsm_cgroup", "iter", "struct_ops"}
    assert kind.needs_attach_btf_id == needs_btf


@pytest.mark.parametrize("name,target,auto", [
    ("kprobe", None, False),
    ("kprobe/do_sys_open", "do_sys_open", True),
    ("kretprobe/do_exit", "do_exit", True),
    ("uprobe", None, False),
    ("uprobe//bin/bash:readline", "/bin/bash:readline", True),
    ("uprobe/bin", "bin", False),  # no ":function", libbpf refuses to auto-attach
    ("uretprobe.s//usr/lib/libc.so.6:free", "/usr/lib/libc.so.6:free", True),
    ("uprobe.multi//bin/bash:read*", "/bin/bash:read*", True),
    ("usdt/./app:provider:probe", "./app:provider:probe", True),
    ("usdt/./app:provider", "./app:provider", False),
    ("tp/syscalls/sys_enter_write", "syscalls/sys_enter_write", True),
    ("tracepoint/sched", "sched", False),  # needs CATEGORY/NAME
    ("raw_tp/sched_switch", "sched_switch", True),
    ("raw_tp", None, False),
    ("tp_btf/sched_switch", "sched_switch", True),
    ("tp_btf", None, False),
    ("fentry/do_unlinkat", "do_unlinkat", True),
    ("lsm/file_open", "file_open", True),
    ("lsm_cgroup/socket_bind", "socket_bind", False),  # attached through a cgroup link
    ("iter/task", "task", True),
    ("ksyscall/openat", "openat", True),
    ("kprobe.multi/tcp_*", "tcp_*", True),
    ("kprobe.session", None, False),
    ("struct_ops/dctcp_init", "dctcp_init", False),  # attached through its struct_ops map
    ("xdp", None, False),
    ("tcx/ingress", None, False),
    ("cgroup_skb/ingress", None, False),
])
def test_attach_target_and_auto_attach_examples(name: str, target: Optional[str], auto: bool) -> None:
    kind = classify_section(name)
    assert kind is not None
    assert kind.attach_target == target
    assert kind.auto_attach == auto


def test_expected_attach_type_zero_vs_none() -> None:
    """``cgroup_skb/ingress`` really has attach type 0; ``kprobe`` has none."""
    ingress = classify_section("cgroup_skb/ingress")
    assert ingress is not None and ingress.expected_attach_type is AttachType.CGROUP_INET_INGRESS
    kprobe = classify_section("kprobe/x")
    assert kprobe is not None and kprobe.expected_attach_type is None


def test_first_match_wins() -> None:
    # "xdp.frags/devmap" precedes "xdp.frags"; "sk_reuseport/migrate" precedes "sk_reuseport"
    kind = classify_section("xdp.frags/devmap")
    assert kind is not None and kind.pattern == "xdp.frags/devmap"
    assert kind.expected_attach_type is AttachType.XDP_DEVMAP
    assert kind.prog_flags == ProgFlags.XDP_HAS_FRAGS
    kind = classify_section("sk_reuseport/migrate")
    assert kind is not None and kind.expected_attach_type is AttachType.SK_REUSEPORT_SELECT_OR_MIGRATE


# --- real clang objects: libbpf's view of each program --------------------

_ROOT = Path(__file__).resolve().parent.parent


def _native_fixture_objects() -> List[Path]:
    """Fixture objects libbpf 1.1 can open: those in this host's byte order.

    (libbpf 1.1 refuses foreign-endian objects; the big-endian fixtures are
    built from the same sources, so their section names are covered here.)
    """
    native = 1 if sys.byteorder == "little" else 2  # ELF EI_DATA: ELFDATA2LSB / ELFDATA2MSB
    objects = sorted((_ROOT / "fixtures").glob("**/obj/*.o"))
    return [p for p in objects if p.read_bytes()[5:6] == bytes([native])]


def _libbpf_programs(path: Path) -> List[Tuple[str, int, int]]:
    """(section name, prog type, expected attach type) of every program libbpf opens."""
    lib = _shared_libbpf().lib
    lib.bpf_object__open_file.restype = ctypes.c_void_p
    lib.bpf_object__open_file.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    lib.libbpf_get_error.argtypes = [ctypes.c_void_p]
    lib.libbpf_get_error.restype = ctypes.c_long
    lib.bpf_object__next_program.restype = ctypes.c_void_p
    lib.bpf_object__next_program.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.bpf_program__section_name.restype = ctypes.c_char_p
    lib.bpf_program__section_name.argtypes = [ctypes.c_void_p]
    lib.bpf_program__type.argtypes = [ctypes.c_void_p]
    lib.bpf_program__type.restype = ctypes.c_int
    lib.bpf_program__expected_attach_type.argtypes = [ctypes.c_void_p]
    lib.bpf_program__expected_attach_type.restype = ctypes.c_int
    lib.bpf_object__close.argtypes = [ctypes.c_void_p]
    obj = lib.bpf_object__open_file(str(path).encode(), None)
    assert obj and lib.libbpf_get_error(obj) == 0, f"libbpf cannot open {path}"
    programs = []
    try:
        prog = None
        while True:
            prog = lib.bpf_object__next_program(obj, prog)
            if not prog:
                break
            programs.append((lib.bpf_program__section_name(prog).decode(),
                             lib.bpf_program__type(prog),
                             lib.bpf_program__expected_attach_type(prog)))
    finally:
        lib.bpf_object__close(obj)
    return programs


@pytest.mark.parametrize("path", _native_fixture_objects(), ids=lambda p: p.name)
def test_fixture_programs_classified_like_libbpf(path: Path) -> None:
    programs = _libbpf_programs(path)
    for section, prog_type, attach_type in programs:
        kind = classify_section(section)
        assert kind is not None, f"{path.name}: libbpf has a program in {section!r}"
        if kind.pattern in NEWER_THAN_LIBBPF_1_1:
            expected = NEWER_EXPECTED[kind.pattern]
            assert (kind.prog_type, kind.expected_attach_type, kind.sleepable) == expected
            continue
        assert int(kind.prog_type) == prog_type, section
        if kind.prog_type == ProgType.STRUCT_OPS:
            # libbpf sets a struct_ops program's expected_attach_type to the
            # index of the struct member it implements, found through the
            # .struct_ops relocations, not through the section name
            assert kind.expected_attach_type is None
            continue
        assert _attach_value(kind) == attach_type, section


def test_fixtures_cover_many_sections() -> None:
    sections = {s for p in _native_fixture_objects() for s, _, _ in _libbpf_programs(p)}
    assert len(sections) >= 60


# --- the kernel accepts every (prog type, expected attach type, flags) ------

#: A BTF-attached family -> (BTF kind, name) of a vmlinux target to load against.
_BTF_TARGETS: Dict[str, Tuple[str, str]] = {
    "tp_btf": ("TYPEDEF", "btf_trace_sched_switch"),
    "fentry": ("FUNC", "do_unlinkat"),
    "fexit": ("FUNC", "do_unlinkat"),
    "fmod_ret": ("FUNC", "bpf_modify_return_test"),
    "fentry.s": ("FUNC", "__x64_sys_getpgid"),
    "fexit.s": ("FUNC", "__x64_sys_getpgid"),
    "fmod_ret.s": ("FUNC", "__x64_sys_getpgid"),
    "lsm": ("FUNC", "bpf_lsm_file_open"),
    "lsm.s": ("FUNC", "bpf_lsm_bprm_committed_creds"),
    "lsm_cgroup": ("FUNC", "bpf_lsm_socket_bind"),
    "iter": ("FUNC", "bpf_iter_task"),
    "iter.s": ("FUNC", "bpf_iter_task_file"),
}


#: Program types that exist only with a kernel config option.
_CONFIG_FOR_PROG_TYPE: Dict[ProgType, str] = {
    ProgType.LIRC_MODE2: "CONFIG_BPF_LIRC_MODE2",
    ProgType.LWT_IN: "CONFIG_LWTUNNEL_BPF",
    ProgType.LWT_OUT: "CONFIG_LWTUNNEL_BPF",
    ProgType.LWT_XMIT: "CONFIG_LWTUNNEL_BPF",
    ProgType.LWT_SEG6LOCAL: "CONFIG_IPV6_SEG6_BPF",
    ProgType.NETFILTER: "CONFIG_NETFILTER_BPF_LINK",
    ProgType.LSM: "CONFIG_BPF_LSM",
}


def _kernel_config_enabled(option: str) -> bool:
    """Whether /proc/config.gz sets ``option`` (True when the config is unreadable)."""
    try:
        with gzip.open("/proc/config.gz", "rt") as f:
            config = f.read()
    except OSError:
        return True
    return re.search(rf"^{option}=[ym]$", config, re.M) is not None


@functools.lru_cache(maxsize=1)
def _vmlinux_btf_ids() -> Dict[Tuple[str, str], int]:
    """(kind, name) -> type id in the running kernel's BTF, as bpftool lists it."""
    bpftool = shutil.which("bpftool")
    assert bpftool, "bpftool is the oracle for kernel BTF ids"
    out = subprocess.run([bpftool, "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "raw"],
                         capture_output=True, text=True, check=True).stdout
    ids: Dict[Tuple[str, str], int] = {}
    for m in re.finditer(r"^\[(\d+)\] (FUNC|TYPEDEF) '([^']+)'", out, re.M):
        ids.setdefault((m.group(2), m.group(3)), int(m.group(1)))
    return ids


def _prog_load(prog_type: int, attach_type: int, prog_flags: int, attach_btf_id: int, r0: int) -> int:
    """BPF_PROG_LOAD of ``r0 = IMM; exit``: 0 on success (fd closed), else -errno.

    ``union bpf_attr`` for BPF_PROG_LOAD (uapi): prog_type @0, insn_cnt @4,
    insns @8, license @16, log_level @24, log_size @28, log_buf @32,
    kern_version @40, prog_flags @44, prog_name @48, prog_ifindex @64,
    expected_attach_type @68, ... attach_btf_id @108.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    sys_bpf = {"x86_64": 321, "aarch64": 280}[os.uname().machine]
    insns = struct.pack("<BBhi", 0xB7, 0, 0, r0) + struct.pack("<BBhi", 0x95, 0, 0, 0)
    insn_buf = ctypes.create_string_buffer(insns, len(insns))
    license_buf = ctypes.create_string_buffer(b"GPL")
    attr = bytearray(128)
    struct.pack_into("<IIQQ", attr, 0, prog_type, 2, ctypes.addressof(insn_buf),
                     ctypes.addressof(license_buf))
    struct.pack_into("<I", attr, 44, prog_flags)
    struct.pack_into("<I", attr, 68, attach_type)
    struct.pack_into("<I", attr, 108, attach_btf_id)
    attr_buf = ctypes.create_string_buffer(bytes(attr), len(attr))
    fd = libc.syscall(sys_bpf, int(BpfCmd.PROG_LOAD), attr_buf, len(attr))
    if fd < 0:
        return -ctypes.get_errno()
    os.close(fd)
    return 0


@pytest.mark.kernel
@pytest.mark.parametrize("sec_def", [d for d in SECTION_DEFS
                                     if d.prog_type not in (ProgType.STRUCT_OPS, ProgType.EXT)],
                         ids=lambda d: d.pattern)
def test_kernel_loads_each_kind(sec_def: SectionDef) -> None:
    """The running kernel accepts the prog type / attach type / flags we derive.

    struct_ops (needs a struct_ops map) and freplace (needs a target
    program) are left to the loader tests.
    """
    if os.geteuid() != 0:
        pytest.skip("needs root to load programs")
    family = sec_def.pattern.rstrip("+")
    name = family + "/x" if sec_def.pattern.endswith("+") else sec_def.pattern
    kind = classify_section(name)
    assert kind is not None
    btf_id = 0
    if kind.needs_attach_btf_id:
        btf_id = _vmlinux_btf_ids()[_BTF_TARGETS[family]]
    # tracing programs must return 0; some cgroup hooks must return 1
    r0 = 0 if kind.prog_type in (ProgType.TRACING, ProgType.LSM) and family != "lsm_cgroup" else 1
    rc = _prog_load(int(kind.prog_type), _attach_value(kind), kind.prog_flags, btf_id, r0)
    option = _CONFIG_FOR_PROG_TYPE.get(kind.prog_type)
    if rc != 0 and option is not None and not _kernel_config_enabled(option):
        pytest.skip(f"kernel feature missing: {option} (program type {kind.prog_type.name})")
    if rc == -errno.EPERM and kind.needs_attach_btf_id:
        pytest.skip("kernel feature missing: BTF-attached (trampoline) program loads "
                    "are refused with EPERM on this kernel")
    assert rc == 0, f"{name}: BPF_PROG_LOAD failed: {os.strerror(-rc)}"


def test_no_name_matches_two_entries() -> None:
    """First-match-wins never has to break a tie with today's table."""
    for sec_def in SECTION_DEFS:
        for name in (sec_def.prefix, sec_def.prefix + "/x", sec_def.prefix + "/a/b:c"):
            matching = [d.pattern for d in SECTION_DEFS if d.matches(name)]
            assert len(matching) <= 1, (name, matching)


@pytest.mark.parametrize("pattern,name,matches,target", [
    # "type/": an EXTRA is required after the slash
    ("type/", "type/x", True, "x"),
    ("type/", "type/", True, ""),
    ("type/", "type", False, None),
    ("type/", "typex", False, None),
    # "type+": exactly "type", or "type/EXTRA"
    ("type+", "type", True, None),
    ("type+", "type/a/b", True, "a/b"),
    ("type+", "type/", True, ""),
    ("type+", "typex", False, None),
    ("type+", "typ", False, None),
    # exact
    ("type", "type", True, None),
    ("type", "type/x", False, None),
    ("type", "typ", False, None),
])
def test_pattern_shapes(pattern: str, name: str, matches: bool, target: Optional[str]) -> None:
    """libbpf's sec_def_matches() rules for the three pattern shapes."""
    sec_def = SectionDef(pattern, ProgType.KPROBE, None)
    assert sec_def.matches(name) == matches
    if matches:
        assert sec_def.attach_target(name) == target


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_FRAGMENTS), st.text(alphabet="/._:+sa", max_size=10))
def test_indexed_lookup_equals_in_order_scan(prefix: str, suffix: str) -> None:
    """find_section_def's dict lookup agrees with a plain first-match scan."""
    name = prefix + suffix
    scanned = next((d for d in SECTION_DEFS if d.matches(name)), None)
    assert find_section_def(name) is scanned
