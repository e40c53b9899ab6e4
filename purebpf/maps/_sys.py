"""The kernel calls live maps need, over :mod:`purebpf.syscall`.

This module is the only place in :mod:`purebpf.maps` that talks to
:mod:`purebpf.syscall`: it fills the ``union bpf_attr`` variants of
:mod:`purebpf.syscall.attrs` and passes them through the one choke point
(``purebpf.syscall._raw.bpf``), so every call shows in the load transcript.
The rest of the package speaks in bytes, ints and
:class:`~purebpf.maps.info.MapInfo`.  ENOENT, which for element commands
means "no such element" rather than failure, is turned into None/False here.
"""

from __future__ import annotations

import ctypes
import errno
import os
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple

from purebpf.errors import KernelError
from purebpf.maps.info import MapInfo
from purebpf.syscall import attrs
from purebpf.uapi import BpfCmd, MapType

if TYPE_CHECKING:
    from purebpf.syscall.fd import FD

__all__ = [
    "create", "lookup", "lookup_with_value", "update", "delete", "next_key",
    "lookup_and_delete", "freeze", "pin", "get_pinned", "fd_by_id", "info",
    "lookup_batch", "update_batch", "delete_batch", "num_possible_cpus", "parse_cpu_list",
    "object_kind", "has_object_names",
]


def _bpf(cmd: BpfCmd, attr: ctypes.Structure, extra: "Optional[dict[str, object]]" = None) -> int:
    from purebpf.syscall._raw import bpf

    return int(bpf(cmd, attr, extra=extra))


def _fd(number: int, what: str) -> "FD":
    from purebpf.syscall.fd import FD

    return FD(number, what)


def _buf(data: bytes, size: Optional[int] = None) -> "ctypes.Array[ctypes.c_char]":
    n = len(data) if size is None else size
    return ctypes.create_string_buffer(bytes(data), max(n, 1))


def _addr(buf: "Optional[ctypes.Array[ctypes.c_char]]") -> int:
    return 0 if buf is None else ctypes.addressof(buf)


_possible_cpus: Optional[int] = None


def parse_cpu_list(text: str) -> List[int]:
    """CPU numbers of a kernel cpu list such as ``0-3,8,10-11``."""
    cpus: List[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


def num_possible_cpus() -> int:
    """CPUs the kernel sizes per-CPU values for (``/sys/devices/system/cpu/possible``)."""
    global _possible_cpus
    if _possible_cpus is None:
        try:
            from purebpf.syscall.features import num_possible_cpus as probe
        except ImportError:
            with open("/sys/devices/system/cpu/possible") as f:
                _possible_cpus = len(parse_cpu_list(f.read()))
        else:
            _possible_cpus = int(probe())
    return _possible_cpus


def has_object_names() -> bool:
    """Does the kernel take ``map_name`` (libbpf's FEAT_PROG_NAME probe, cached)?"""
    try:
        from purebpf.syscall.features import has_prog_name
    except ImportError:  # pragma: no cover - the probe module is part of purebpf
        return True
    return bool(has_prog_name())


def create(map_type: int, key_size: int, value_size: int, max_entries: int, *, flags: int,
           name: str, inner_map_fd: Optional[int], numa_node: Optional[int],
           btf_fd: Optional[int], btf_key_type_id: int, btf_value_type_id: int,
           btf_vmlinux_value_type_id: int, map_extra: int) -> "FD":
    """BPF_MAP_CREATE."""
    attr = attrs.MapCreateAttr()
    attr.map_type = map_type
    attr.key_size = key_size
    attr.value_size = value_size
    attr.max_entries = max_entries
    attr.map_flags = flags
    attr.inner_map_fd = inner_map_fd or 0
    attr.numa_node = numa_node or 0
    attr.map_name = name.encode()[:15]
    attr.btf_fd = btf_fd or 0
    attr.btf_key_type_id = btf_key_type_id
    attr.btf_value_type_id = btf_value_type_id
    attr.btf_vmlinux_value_type_id = btf_vmlinux_value_type_id
    attr.map_extra = map_extra
    return _fd(_bpf(BpfCmd.MAP_CREATE, attr), f"map {name!r}")


# Note for readers: the kernel only sees integer addresses in the attr, so every
# ctypes buffer is bound to a local variable that outlives the bpf() call.


def _elem(fd: "FD", key: Optional["ctypes.Array[ctypes.c_char]"],
          value: Optional["ctypes.Array[ctypes.c_char]"], flags: int = 0) -> "attrs.MapElemAttr":
    attr = attrs.MapElemAttr()
    attr.map_fd = int(fd)
    attr.key = _addr(key)
    attr.value = _addr(value)
    attr.flags = flags
    return attr


def _absent(cmd: BpfCmd, attr: ctypes.Structure) -> bool:
    """Run ``cmd``; True when the kernel answered ENOENT (no such element)."""
    try:
        _bpf(cmd, attr)
    except KernelError as exc:
        if exc.errno == errno.ENOENT:
            return True
        raise
    return False


def lookup(fd: "FD", key: bytes, value_size: int, flags: int = 0) -> Optional[bytes]:
    """BPF_MAP_LOOKUP_ELEM; None when the key is absent (ENOENT)."""
    k = _buf(key) if key else None
    v = _buf(b"", value_size)
    if _absent(BpfCmd.MAP_LOOKUP_ELEM, _elem(fd, k, v, flags)):
        return None
    return v.raw[:value_size]


def lookup_with_value(fd: "FD", value: bytes, flags: int = 0) -> bool:
    """BPF_MAP_LOOKUP_ELEM with a NULL key and the value buffer filled in.

    Used by bloom filters: the kernel reads the value and answers 0 when it
    may be in the set, ENOENT when it is certainly not.
    """
    v = _buf(value)
    return not _absent(BpfCmd.MAP_LOOKUP_ELEM, _elem(fd, None, v, flags))


def update(fd: "FD", key: bytes, value: bytes, flags: int = 0) -> None:
    """BPF_MAP_UPDATE_ELEM."""
    k = _buf(key) if key else None  # buffers stay referenced until the call returns
    v = _buf(value)
    _bpf(BpfCmd.MAP_UPDATE_ELEM, _elem(fd, k, v, flags))


def delete(fd: "FD", key: bytes) -> bool:
    """BPF_MAP_DELETE_ELEM; False when the key was absent."""
    k = _buf(key) if key else None
    return not _absent(BpfCmd.MAP_DELETE_ELEM, _elem(fd, k, None))


def next_key(fd: "FD", key: Optional[bytes], key_size: int) -> Optional[bytes]:
    """BPF_MAP_GET_NEXT_KEY (``key`` None: the first key); None after the last key."""
    out = _buf(b"", key_size)
    k = _buf(key) if key is not None else None
    attr = _elem(fd, k, None)
    attr.next_key = ctypes.addressof(out)
    if _absent(BpfCmd.MAP_GET_NEXT_KEY, attr):
        return None
    return out.raw[:key_size]


def lookup_and_delete(fd: "FD", key: bytes, value_size: int, flags: int = 0) -> Optional[bytes]:
    """BPF_MAP_LOOKUP_AND_DELETE_ELEM; None when absent (or the queue is empty)."""
    k = _buf(key) if key else None
    v = _buf(b"", value_size)
    if _absent(BpfCmd.MAP_LOOKUP_AND_DELETE_ELEM, _elem(fd, k, v, flags)):
        return None
    return v.raw[:value_size]


def lookup_batch(fd: "FD", in_batch: Optional[bytes], key_size: int, value_size: int,
                 count: int, *, delete: bool = False,
                 flags: int = 0) -> Tuple[List[bytes], List[bytes], Optional[bytes]]:
    """BPF_MAP_LOOKUP(_AND_DELETE)_BATCH: one chunk of at most ``count`` elements.

    ``in_batch``/``out_batch`` are the kernel's opaque position tokens (for
    hash maps a bucket number; their size is the key size, which is at least
    what every map kind needs).  ``out_batch`` is None when the walk is over:
    the kernel reports that with ENOENT, possibly together with a last chunk.
    """
    token_size = max(key_size, 4)
    in_buf = _buf(in_batch, token_size) if in_batch is not None else None
    out_buf = _buf(b"", token_size)
    keys = _buf(b"", key_size * count)
    values = _buf(b"", value_size * count)
    attr = attrs.MapBatchAttr()
    attr.in_batch = _addr(in_buf)
    attr.out_batch = ctypes.addressof(out_buf)
    attr.keys = ctypes.addressof(keys)
    attr.values = ctypes.addressof(values)
    attr.count = count
    attr.map_fd = int(fd)
    attr.flags = flags
    cmd = BpfCmd.MAP_LOOKUP_AND_DELETE_BATCH if delete else BpfCmd.MAP_LOOKUP_BATCH
    done = _absent(cmd, attr)
    n = int(attr.count)
    kraw, vraw = keys.raw, values.raw
    out_keys = [kraw[i * key_size:(i + 1) * key_size] for i in range(n)]
    out_vals = [vraw[i * value_size:(i + 1) * value_size] for i in range(n)]
    return out_keys, out_vals, None if done else out_buf.raw[:token_size]


def _batch_write(cmd: BpfCmd, fd: "FD", keys: Sequence[bytes], values: Optional[Sequence[bytes]],
                 flags: int) -> int:
    kbuf = _buf(b"".join(keys))
    vbuf = _buf(b"".join(values)) if values is not None else None
    attr = attrs.MapBatchAttr()
    attr.keys = ctypes.addressof(kbuf)
    attr.values = _addr(vbuf)
    attr.count = len(keys)
    attr.map_fd = int(fd)
    attr.elem_flags = flags
    _bpf(cmd, attr)
    return int(attr.count)


def update_batch(fd: "FD", keys: Sequence[bytes], values: Sequence[bytes], flags: int = 0) -> int:
    """BPF_MAP_UPDATE_BATCH; the number of elements updated."""
    return _batch_write(BpfCmd.MAP_UPDATE_BATCH, fd, keys, values, flags)


def delete_batch(fd: "FD", keys: Sequence[bytes], flags: int = 0) -> int:
    """BPF_MAP_DELETE_BATCH; the number of elements deleted."""
    return _batch_write(BpfCmd.MAP_DELETE_BATCH, fd, keys, None, flags)


def freeze(fd: "FD") -> None:
    """BPF_MAP_FREEZE."""
    _bpf(BpfCmd.MAP_FREEZE, _elem(fd, None, None))


def pin(fd: "FD", path: str) -> None:
    """BPF_OBJ_PIN."""
    p = _buf(os.fsencode(path) + b"\0")
    attr = attrs.ObjPinAttr()
    attr.pathname = ctypes.addressof(p)
    attr.bpf_fd = int(fd)
    _bpf(BpfCmd.OBJ_PIN, attr, {"path": path})


def get_pinned(path: str, flags: int = 0) -> "FD":
    """BPF_OBJ_GET."""
    p = _buf(os.fsencode(path) + b"\0")
    attr = attrs.ObjPinAttr()
    attr.pathname = ctypes.addressof(p)
    attr.file_flags = flags
    return _fd(_bpf(BpfCmd.OBJ_GET, attr, {"path": path}), f"map pinned at {path}")


def fd_by_id(map_id: int) -> "FD":
    """BPF_MAP_GET_FD_BY_ID."""
    attr = attrs.GetIdAttr()
    attr.map_id = map_id
    return _fd(_bpf(BpfCmd.MAP_GET_FD_BY_ID, attr), f"map id {map_id}")


def info(fd: "FD") -> MapInfo:
    """BPF_OBJ_GET_INFO_BY_FD with ``struct bpf_map_info``, decoded."""
    from purebpf.syscall.info import BpfMapInfo

    raw = BpfMapInfo()
    attr = attrs.InfoAttr()
    attr.bpf_fd = int(fd)
    attr.info_len = ctypes.sizeof(raw)
    attr.info = ctypes.addressof(raw)
    _bpf(BpfCmd.OBJ_GET_INFO_BY_FD, attr)
    try:
        map_type: "MapType | int" = MapType(raw.type)
    except ValueError:
        map_type = int(raw.type)
    return MapInfo(
        type=map_type,
        id=int(raw.id),
        key_size=int(raw.key_size),
        value_size=int(raw.value_size),
        max_entries=int(raw.max_entries),
        map_flags=int(raw.map_flags),
        name=bytes(raw.name).split(b"\0", 1)[0].decode("utf-8", "replace"),
        ifindex=int(raw.ifindex),
        btf_vmlinux_value_type_id=int(raw.btf_vmlinux_value_type_id),
        netns_dev=int(raw.netns_dev),
        netns_ino=int(raw.netns_ino),
        btf_id=int(raw.btf_id),
        btf_key_type_id=int(raw.btf_key_type_id),
        btf_value_type_id=int(raw.btf_value_type_id),
        map_extra=int(raw.map_extra),
    )


def object_kind(fd: "FD") -> Optional[str]:
    """``bpf-map``, ``bpf-prog``, ``bpf_link``... from ``/proc/self/fd``
    (the anon inode name), or None when /proc cannot tell."""
    try:
        target = os.readlink(f"/proc/self/fd/{int(fd)}")
    except OSError:
        return None
    if target.startswith("anon_inode:"):
        return target[len("anon_inode:"):]
    return None
