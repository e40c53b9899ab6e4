"""Which attribute a refused BPF_MAP_CREATE / BPF_PROG_LOAD most likely got wrong.

The kernel answers a bad ``bpf_attr`` with a bare EINVAL (or E2BIG).  These
checks restate the most common rules of ``kernel/bpf/syscall.c`` and the
map implementations (``*_map_alloc_check``) so that the error can name the
attribute; they are hints, consulted only after the kernel has refused.
"""

from __future__ import annotations

import ctypes
import os
import re
from typing import Any, List, Optional, Tuple

from purebpf.syscall.attrs import MapCreateAttr, ProgLoadAttr
from purebpf.uapi import MapFlags, MapType, ProgType

__all__ = ["map_create_problem", "prog_load_problem", "last_set_field"]

#: map types that have no key (key_size must be 0)
_KEYLESS = {MapType.QUEUE, MapType.STACK, MapType.BLOOM_FILTER, MapType.RINGBUF, MapType.USER_RINGBUF,
            MapType.ARENA}
#: map types that have neither key nor value
_NO_VALUE = {MapType.RINGBUF, MapType.USER_RINGBUF, MapType.ARENA}
#: local-storage maps: max_entries 0, BTF key/value required, BPF_F_NO_PREALLOC
_STORAGE = {MapType.SK_STORAGE, MapType.INODE_STORAGE, MapType.TASK_STORAGE, MapType.CGRP_STORAGE}
#: maps whose key is a u32 index and whose value is an fd / id (4 bytes)
_FD_ARRAYS = {MapType.PROG_ARRAY, MapType.PERF_EVENT_ARRAY, MapType.CGROUP_ARRAY, MapType.ARRAY_OF_MAPS}
_U32_KEY = _FD_ARRAYS | {MapType.ARRAY, MapType.PERCPU_ARRAY, MapType.DEVMAP, MapType.CPUMAP,
                         MapType.XSKMAP, MapType.SOCKMAP, MapType.REUSEPORT_SOCKARRAY}

_NAME_RE = re.compile(r"^[A-Za-z0-9_.]*$")


def _name_problem(raw: bytes, field: str) -> Optional[str]:
    name = raw.split(b"\0", 1)[0].decode("latin-1")
    if not _NAME_RE.match(name):
        return f"{field} {name!r} may only contain letters, digits, '_' and '.'"
    return None


def map_create_problem(attr: MapCreateAttr) -> Optional[str]:
    """A sentence naming the likely bad attribute of a refused BPF_MAP_CREATE, or None."""
    try:
        mt: Optional[MapType] = MapType(attr.map_type)
    except ValueError:
        return f"map_type {attr.map_type} is unknown to purebpf (and maybe to this kernel)"
    assert mt is not None
    name = mt.name
    problems: List[str] = []
    if mt in _KEYLESS and attr.key_size != 0:
        problems.append(f"key_size must be 0 for {name} maps (got {attr.key_size})")
    elif mt not in _KEYLESS and mt != MapType.STRUCT_OPS and attr.key_size == 0:
        problems.append(f"key_size must be non-zero for {name} maps")
    if mt in _U32_KEY and attr.key_size not in (0, 4):
        problems.append(f"{name} maps are indexed by a 4-byte key (got key_size {attr.key_size})")
    if mt in _NO_VALUE and attr.value_size != 0:
        problems.append(f"value_size must be 0 for {name} maps (got {attr.value_size})")
    elif mt not in _NO_VALUE and attr.value_size == 0:
        problems.append(f"value_size must be non-zero for {name} maps")
    if mt in _FD_ARRAYS and attr.value_size not in (0, 4):
        problems.append(f"{name} values are 4-byte fds (got value_size {attr.value_size})")
    if mt in _STORAGE or mt in (MapType.CGROUP_STORAGE, MapType.PERCPU_CGROUP_STORAGE):
        if attr.max_entries != 0:
            problems.append(f"max_entries must be 0 for {name} maps (got {attr.max_entries})")
    elif attr.max_entries == 0:
        problems.append(f"max_entries must be non-zero for {name} maps")
    if mt in _STORAGE:
        if not attr.map_flags & MapFlags.NO_PREALLOC:
            problems.append(f"{name} maps need map_flags NO_PREALLOC")
        if not attr.btf_key_type_id or not attr.btf_value_type_id:
            problems.append(f"{name} maps need BTF (btf_fd, btf_key_type_id, btf_value_type_id)")
    if mt == MapType.LPM_TRIE:
        if not attr.map_flags & MapFlags.NO_PREALLOC:
            problems.append("LPM_TRIE maps need map_flags NO_PREALLOC")
        if attr.key_size <= 4:
            problems.append("LPM_TRIE keys are a 4-byte prefix length followed by the data")
    if mt in (MapType.RINGBUF, MapType.USER_RINGBUF):
        page = os.sysconf("SC_PAGE_SIZE")
        n = attr.max_entries
        if n < page or n & (n - 1):
            problems.append(f"{name} max_entries must be a power of 2 and a multiple of the page size "
                            f"({page}); got {n}")
    if mt in (MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS) and not attr.inner_map_fd:
        problems.append(f"{name} maps need inner_map_fd (a template of the inner map)")
    if attr.map_flags & MapFlags.MMAPABLE and mt not in (MapType.ARRAY, MapType.ARENA):
        problems.append(f"map_flags MMAPABLE is only valid for ARRAY (and ARENA) maps, not {name}")
    if mt == MapType.STRUCT_OPS and not attr.btf_vmlinux_value_type_id:
        problems.append("STRUCT_OPS maps need btf_vmlinux_value_type_id")
    bad_name = _name_problem(bytes(attr.map_name), "map name")
    if bad_name:
        problems.append(bad_name)
    return "; ".join(problems) if problems else None


#: program types the kernel refuses without an expected attach type
_NEEDS_EXPECTED = {ProgType.CGROUP_SOCK_ADDR, ProgType.CGROUP_SOCKOPT, ProgType.SK_LOOKUP,
                   ProgType.NETFILTER, ProgType.TRACING, ProgType.LSM}
#: program types that name their attach target by BTF id
_NEEDS_BTF_ID = {ProgType.TRACING, ProgType.LSM, ProgType.EXT, ProgType.STRUCT_OPS}


def prog_load_problem(attr: ProgLoadAttr, log: str) -> Optional[str]:
    """A sentence naming the likely bad attribute of a refused BPF_PROG_LOAD, or None.

    When the verifier wrote a log the log is the explanation: None then.
    """
    if log.strip():
        return None
    problems: List[str] = []
    if attr.insn_cnt == 0:
        problems.append("insn_cnt is 0: no instructions")
    if attr.log_level and (attr.log_size < 128 or not attr.log_buf):
        problems.append(f"log_level {attr.log_level} needs a log buffer of at least 128 bytes "
                        f"(log_size {attr.log_size})")
    try:
        pt: Optional[ProgType] = ProgType(attr.prog_type)
    except ValueError:
        pt = None
        problems.append(f"prog_type {attr.prog_type} is unknown")
    if pt is not None:
        if pt in _NEEDS_BTF_ID and not attr.attach_btf_id:
            problems.append(f"{pt.name} programs need attach_btf_id (the BTF id of their target)")
        if pt in _NEEDS_EXPECTED and attr.expected_attach_type == 0 and pt != ProgType.EXT:
            problems.append(f"{pt.name} programs need an expected_attach_type")
        if pt == ProgType.UNSPEC:
            problems.append("prog_type UNSPEC cannot be loaded")
    bad_name = _name_problem(bytes(attr.prog_name), "program name")
    if bad_name:
        problems.append(bad_name)
    return "; ".join(problems) if problems else None


def _set_fields(obj: Any, base: int = 0, prefix: str = "") -> List[Tuple[int, str]]:
    """(offset, name) of every non-zero scalar field, nested members included."""
    out: List[Tuple[int, str]] = []
    cls = type(obj)
    anonymous = getattr(cls, "_anonymous_", ())
    for spec in cls._fields_:
        name = spec[0]
        off = base + getattr(cls, name).offset
        value = getattr(obj, name)
        if isinstance(value, (ctypes.Structure, ctypes.Union)):
            out += _set_fields(value, off, prefix if name in anonymous else f"{prefix}{name}.")
        elif isinstance(value, bytes):
            if value.strip(b"\0"):
                out.append((off, prefix + name))
        elif value and not name.startswith("_"):
            out.append((off, prefix + name))
    return out


def last_set_field(attr: ctypes.Structure) -> Optional[str]:
    """The non-zero field at the highest offset: what an older kernel that
    answers E2BIG ("unknown non-zero bytes past the attr it knows") does not know."""
    fields = _set_fields(attr)
    if not fields:
        return None
    off, name = max(fields)
    return f"{name} (offset {off})"
