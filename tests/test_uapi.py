"""purebpf.uapi against three independent oracles.

1. The C compiler: a program that ``#include``s ``<linux/bpf.h>`` (and
   ``<bpf/bpf_helpers.h>`` for libbpf's :class:`PinType`) and prints every constant.  The
   installed uapi header may be older than Linux 6.18; names it lacks must be
   listed in :data:`NEWER_THAN_LIBC_HEADERS`, every other name must exist and
   have our value.
2. The running kernel's BTF (``bpftool btf dump file /sys/kernel/btf/vmlinux
   format raw``): the kernel enums, both directions (nothing missing, nothing
   extra), when the kernel is new enough to be compared with 6.18.
3. libbpf through ctypes: ``libbpf_bpf_{prog,map,attach,link}_type_str``
   for every value libbpf knows.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import enum
import functools
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List, Set, Tuple, Type

import pytest

from purebpf import uapi
from purebpf.uapi import (
    AttachFlags,
    AttachType,
    BpfCmd,
    LinkType,
    MapFlags,
    MapType,
    MapUpdateFlags,
    PinType,
    ProgFlags,
    ProgType,
    QueryFlags,
    StatsType,
)

_TestRunFlags = uapi.TestRunFlags  # not named Test*: pytest would try to collect it

#: Each enum and the C prefix its member names lost.
KERNEL_ENUMS: Tuple[Tuple[Type[enum.Enum], str], ...] = (
    (BpfCmd, "BPF_"),
    (MapType, "BPF_MAP_TYPE_"),
    (ProgType, "BPF_PROG_TYPE_"),
    (AttachType, "BPF_"),
    (LinkType, "BPF_LINK_TYPE_"),
    (MapFlags, "BPF_F_"),
    (ProgFlags, "BPF_F_"),
    (MapUpdateFlags, "BPF_"),
    (AttachFlags, "BPF_F_"),
    (QueryFlags, "BPF_F_QUERY_"),
    (_TestRunFlags, "BPF_F_TEST_"),
    (StatsType, "BPF_STATS_"),
    (uapi.PerfEventType, "BPF_PERF_EVENT_"),
    (uapi.KprobeMultiFlags, "BPF_F_KPROBE_MULTI_"),
    (uapi.UprobeMultiFlags, "BPF_F_UPROBE_MULTI_"),
    (uapi.NetfilterFlags, "BPF_F_NETFILTER_"),
)

#: uapi names added after Linux 6.1 (Debian 12's linux-libc-dev); an older
#: installed header may lack exactly these.
NEWER_THAN_LIBC_HEADERS: Set[str] = {
    # enum bpf_cmd
    "BPF_TOKEN_CREATE", "BPF_PROG_STREAM_READ_BY_FD",
    # enum bpf_map_type
    "BPF_MAP_TYPE_CGRP_STORAGE", "BPF_MAP_TYPE_ARENA",
    "BPF_MAP_TYPE_CGROUP_STORAGE_DEPRECATED", "BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE_DEPRECATED",
    # enum bpf_prog_type
    "BPF_PROG_TYPE_NETFILTER",
    # enum bpf_attach_type
    "BPF_STRUCT_OPS", "BPF_NETFILTER", "BPF_TCX_INGRESS", "BPF_TCX_EGRESS",
    "BPF_TRACE_UPROBE_MULTI", "BPF_CGROUP_UNIX_CONNECT", "BPF_CGROUP_UNIX_SENDMSG",
    "BPF_CGROUP_UNIX_RECVMSG", "BPF_CGROUP_UNIX_GETPEERNAME",
    "BPF_CGROUP_UNIX_GETSOCKNAME", "BPF_NETKIT_PRIMARY", "BPF_NETKIT_PEER",
    "BPF_TRACE_KPROBE_SESSION", "BPF_TRACE_UPROBE_SESSION",
    # enum bpf_link_type
    "BPF_LINK_TYPE_NETFILTER", "BPF_LINK_TYPE_TCX", "BPF_LINK_TYPE_UPROBE_MULTI",
    "BPF_LINK_TYPE_NETKIT", "BPF_LINK_TYPE_SOCKMAP",
    # map / program / attach flags
    "BPF_F_PATH_FD", "BPF_F_VTYPE_BTF_OBJ_FD", "BPF_F_TOKEN_FD", "BPF_F_SEGV_ON_FAULT",
    "BPF_F_NO_USER_CONV", "BPF_F_XDP_DEV_BOUND_ONLY", "BPF_F_TEST_REG_INVARIANTS",
    "BPF_F_BEFORE", "BPF_F_AFTER", "BPF_F_ID", "BPF_F_LINK",
    "BPF_F_UPROBE_MULTI_RETURN", "BPF_F_NETFILTER_IP_DEFRAG",
    # enum bpf_perf_event_type
    "BPF_PERF_EVENT_UNSPEC", "BPF_PERF_EVENT_UPROBE", "BPF_PERF_EVENT_URETPROBE",
    "BPF_PERF_EVENT_KPROBE", "BPF_PERF_EVENT_KRETPROBE", "BPF_PERF_EVENT_TRACEPOINT",
    "BPF_PERF_EVENT_EVENT",
}


def _c_names() -> List[Tuple[str, int]]:
    """Every (C name, our value) pair, aliases included."""
    pairs: List[Tuple[str, int]] = []
    for cls, prefix in KERNEL_ENUMS:
        for name, member in cls.__members__.items():
            pairs.append((prefix + name, int(member.value)))
    pairs += [("BPF_OBJ_NAME_LEN", uapi.OBJ_NAME_LEN), ("BPF_TAG_SIZE", uapi.TAG_SIZE)]
    return pairs


def _compile_and_print(tmp_path: Path, includes: List[str], names: List[str]) -> Tuple[Dict[str, int], Set[str]]:
    """Compile a C program printing ``NAME VALUE`` lines for ``names``.

    Names the headers lack are found from the compiler's "undeclared"
    diagnostics, dropped, and returned as the second element.
    """
    cc = shutil.which("gcc") or shutil.which("cc")
    assert cc, "a C compiler is the oracle for uapi constants"
    missing: Set[str] = set()
    for _attempt in range(3):
        present = [n for n in names if n not in missing]
        src = "".join(f"#include <{h}>\n" for h in includes)
        src += "#include <stdio.h>\nint main(void) {\n"
        for n in present:
            src += f'    printf("%s %llu\\n", "{n}", (unsigned long long)({n}));\n'
        src += "    return 0;\n}\n"
        c_file = tmp_path / "consts.c"
        exe = tmp_path / "consts"
        c_file.write_text(src)
        proc = subprocess.run([cc, "-w", "-o", str(exe), str(c_file)],
                              capture_output=True, text=True, check=False,
                              env={**os.environ, "LC_ALL": "C"})
        if proc.returncode == 0:
            out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
            values = {}
            for line in out.splitlines():
                name, value = line.split()
                values[name] = int(value)
            return values, missing
        undeclared = set(re.findall(r"'(\w+)' undeclared", proc.stderr))
        assert undeclared, proc.stderr[-2000:]
        missing |= undeclared
    raise AssertionError("could not compile the constants program")


def test_values_match_installed_uapi_header(tmp_path: Path) -> None:
    pairs = _c_names()
    values, missing = _compile_and_print(tmp_path, ["linux/bpf.h"], [n for n, _ in pairs])
    unexpected_missing = missing - NEWER_THAN_LIBC_HEADERS
    assert not unexpected_missing, f"names the header should have: {sorted(unexpected_missing)}"
    checked = 0
    for name, ours in pairs:
        if name in missing:
            continue
        assert values[name] == ours, f"{name}: header {values[name]}, purebpf {ours}"
        checked += 1
    # the Debian 12 header alone knows well over 150 of these names
    assert checked > 150


def test_pin_type_matches_libbpf_header(tmp_path: Path) -> None:
    names = [f"LIBBPF_PIN_{m}" for m in PinType.__members__]
    values, missing = _compile_and_print(tmp_path, ["linux/bpf.h", "bpf/bpf_helpers.h"], names)
    assert not missing
    for name, member in PinType.__members__.items():
        assert values[f"LIBBPF_PIN_{name}"] == member.value


# --------------------------------------------------------------------------
# the running kernel's BTF

KERNEL_BTF = Path("/sys/kernel/btf/vmlinux")
BTF_ENUMS: Tuple[Tuple[str, Type[enum.Enum], str], ...] = (
    ("bpf_cmd", BpfCmd, "BPF_"),
    ("bpf_map_type", MapType, "BPF_MAP_TYPE_"),
    ("bpf_prog_type", ProgType, "BPF_PROG_TYPE_"),
    ("bpf_attach_type", AttachType, "BPF_"),
    ("bpf_link_type", LinkType, "BPF_LINK_TYPE_"),
    ("bpf_perf_event_type", uapi.PerfEventType, "BPF_PERF_EVENT_"),
)


def _kernel_btf_enums() -> Dict[str, Dict[str, int]]:
    """Named and anonymous enums of vmlinux BTF, as bpftool prints them."""
    if not KERNEL_BTF.exists():
        pytest.skip("kernel feature missing: /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF)")
    return _dump_kernel_btf_enums()


@functools.lru_cache(maxsize=1)
def _dump_kernel_btf_enums() -> Dict[str, Dict[str, int]]:
    bpftool = shutil.which("bpftool")
    assert bpftool, "bpftool is the oracle for kernel BTF"
    out = subprocess.run([bpftool, "btf", "dump", "file", str(KERNEL_BTF), "format", "raw"],
                         capture_output=True, text=True, check=True).stdout
    enums: Dict[str, Dict[str, int]] = {}
    current = None
    anon = 0
    for line in out.splitlines():
        m = re.match(r"\[\d+\] ENUM '([^']*)'", line)
        if m:
            name = m.group(1)
            if name == "(anon)":
                anon += 1
                name = f"(anon){anon}"
            current = enums.setdefault(name, {})
            continue
        if line.startswith("["):
            current = None
            continue
        e = re.match(r"\s+'(\w+)' val=(-?\d+)", line)
        if e and current is not None:
            current[e.group(1)] = int(e.group(2))
    return enums


def _kernel_version() -> Tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", os.uname().release)
    assert m, os.uname().release
    return int(m.group(1)), int(m.group(2))


@pytest.mark.parametrize("c_enum,cls,prefix", BTF_ENUMS, ids=[e[0] for e in BTF_ENUMS])
def test_kernel_enums_match_running_kernel_btf(c_enum: str, cls: Type[enum.Enum], prefix: str) -> None:
    enums = _kernel_btf_enums()
    kernel = {k: v for k, v in enums[c_enum].items() if not k.startswith("__MAX")}
    ours = {prefix + name: int(m.value) for name, m in cls.__members__.items()}
    # every constant the kernel has and we have must agree
    for name in kernel.keys() & ours.keys():
        assert kernel[name] == ours[name], name
    version = _kernel_version()
    if version == (6, 18):
        # the running kernel is the version the module describes: same names
        assert kernel.keys() == ours.keys(), (sorted(kernel.keys() - ours.keys()),
                                              sorted(ours.keys() - kernel.keys()))
    elif version < (6, 18):
        # an older kernel knows fewer constants, never other ones
        assert kernel.keys() <= ours.keys(), sorted(kernel.keys() - ours.keys())
    else:
        # a newer kernel knows more
        assert ours.keys() <= kernel.keys(), sorted(ours.keys() - kernel.keys())


def test_map_flags_match_running_kernel_btf() -> None:
    enums = _kernel_btf_enums()
    flag_enum = next((e for e in enums.values() if "BPF_F_NO_PREALLOC" in e), None)
    assert flag_enum is not None, "vmlinux BTF has the anonymous BPF_F_* map-flag enum"
    ours = {"BPF_F_" + n: int(m.value) for n, m in MapFlags.__members__.items()}
    for name, value in flag_enum.items():
        if name in ours:
            assert ours[name] == value, name
    if _kernel_version() <= (6, 18):
        assert set(flag_enum) <= set(ours), sorted(set(flag_enum) - set(ours))


# --------------------------------------------------------------------------
# libbpf's *_str() tables


def _libbpf() -> ctypes.CDLL:
    path = ctypes.util.find_library("bpf") or "libbpf.so.1"
    lib = ctypes.CDLL(path)
    for fn in ("libbpf_bpf_prog_type_str", "libbpf_bpf_attach_type_str",
               "libbpf_bpf_map_type_str", "libbpf_bpf_link_type_str"):
        getattr(lib, fn).restype = ctypes.c_char_p
        getattr(lib, fn).argtypes = [ctypes.c_int]
    return lib


LIBBPF_STR = (
    ("libbpf_bpf_prog_type_str", ProgType, ProgType.SYSCALL),
    ("libbpf_bpf_map_type_str", MapType, MapType.USER_RINGBUF),
    ("libbpf_bpf_attach_type_str", AttachType, AttachType.LSM_CGROUP),
    ("libbpf_bpf_link_type_str", LinkType, LinkType.KPROBE_MULTI),
)


@pytest.mark.parametrize("fn,cls,at_least", LIBBPF_STR, ids=[x[0] for x in LIBBPF_STR])
def test_names_match_libbpf(fn: str, cls: Type[enum.IntEnum], at_least: enum.IntEnum) -> None:
    lib = _libbpf()
    func = getattr(lib, fn)
    known = 0
    for value in range(0, 256):
        raw = func(value)
        if raw is None:
            continue
        known = max(known, value)
        libbpf_name = raw.decode()
        ours = [n.lower() for n, m in cls.__members__.items() if m.value == value]
        assert ours, f"{fn}({value}) = {libbpf_name!r}: purebpf has no {cls.__name__} {value}"
        assert libbpf_name in ours, f"{fn}({value}) = {libbpf_name!r}, purebpf: {ours}"
    # libbpf 1.1 knows at least this far; the loop really compared something
    assert known >= int(at_least)


def test_enum_shapes() -> None:
    """Positional enums are dense 0..N-1 (an off-by-one would leave a hole)."""
    for cls in (BpfCmd, MapType, ProgType, AttachType, LinkType):
        values = sorted({int(m.value) for m in cls})
        assert values == list(range(len(values))), cls.__name__
    flag_classes: Tuple[Type[enum.IntFlag], ...] = (MapFlags, ProgFlags, AttachFlags, _TestRunFlags)
    for flag_cls in flag_classes:
        for member in flag_cls:
            assert bin(int(member.value)).count("1") == 1, member
    assert set(uapi.__all__) <= set(dir(uapi))
