"""Typed wrappers over ``bpf(2)``: one function per command.

Each function fills its ``bpf_attr`` variant (:mod:`purebpf.syscall.attrs`),
keeps every buffer it points to alive for the duration of the call, calls
the choke point :func:`purebpf.syscall._raw.bpf` and converts the result:
descriptors come back as owned :class:`~purebpf.syscall.fd.FD` objects,
``ENOENT`` from a lookup as ``None``, other errors as
:class:`~purebpf.errors.KernelError` (errno kept, command named, hint added).

Retry policies (a bigger verifier log, probing a feature) belong to the
callers; the only retry here is libbpf's: BPF_PROG_LOAD is repeated up to
five times on ``EAGAIN``.

These are raw calls: the kernel reads exactly the map's ``key_size`` /
``value_size`` bytes from the buffers it is given, so keys and values must
already have those sizes (:class:`purebpf.maps.Map` checks and packs them).
"""

from __future__ import annotations

import ctypes
import errno as E
import os
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

from purebpf.errors import BtfLoadError, KernelError, VerifierError
from purebpf.syscall import trace as _trace
from purebpf.syscall._raw import bpf, e2big_hint, errno_hint
from purebpf.syscall.attrs import (
    BtfLoadAttr,
    EnableStatsAttr,
    GetIdAttr,
    InfoAttr,
    IterCreateAttr,
    LinkCreateAttr,
    LinkDetachAttr,
    LinkUpdateAttr,
    MapBatchAttr,
    MapCreateAttr,
    MapElemAttr,
    ObjPinAttr,
    ProgAttachAttr,
    ProgBindMapAttr,
    ProgLoadAttr,
    QueryAttr,
    RawTracepointAttr,
    TaskFdQueryAttr,
    TestRunAttr,
)
from purebpf.syscall.fd import FD, fd_number
from purebpf.syscall.info import BpfBtfInfo, BpfLinkInfo, BpfMapInfo, BpfProgInfo
from purebpf.uapi import AttachType, BpfCmd, MapType, ProgType

__all__ = [
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

#: what the wrappers accept as bytes
BytesLike = Union[bytes, bytearray, memoryview]
FdArg = Union[FD, int]

def _buf(data: Optional[BytesLike]) -> Tuple[int, Optional["ctypes.Array[ctypes.c_char]"]]:
    """(address, keep-alive copy) for ``data``; (0, None) for empty/None."""
    if not data:
        return 0, None
    b = (ctypes.c_char * len(data)).from_buffer_copy(data)
    return ctypes.addressof(b), b


def _out(size: int) -> "ctypes.Array[ctypes.c_char]":
    return (ctypes.c_char * max(size, 1))()


def _name16(name: str) -> bytes:
    """``BPF_OBJ_NAME_LEN``: at most 15 bytes plus the NUL."""
    return name.encode("utf-8", "replace")[:15]


def _elem_extra(key: Optional[BytesLike], value: Optional[BytesLike] = None,
                value_size: Optional[int] = None) -> Optional[Dict[str, Any]]:
    """Key / value bytes for the transcript, computed only while a hook listens."""
    if not _trace._hooks:
        return None
    extra: Dict[str, Any] = {}
    if key is not None and len(key):
        extra["key"] = _trace.Name(_short_hex(bytes(key)))
    if value is not None and len(value):
        extra["value"] = _trace.Name(_short_hex(bytes(value)))
    if value_size is not None:
        extra["value_size"] = value_size
    return extra


def _short_hex(data: bytes, limit: int = 32) -> str:
    text = data[:limit].hex()
    return text + f"...({len(data)} bytes)" if len(data) > limit else text


def _fd_or_zero(fd: Optional[FdArg]) -> int:
    return 0 if fd is None else fd_number(fd)


# -- maps -------------------------------------------------------------------

def map_create(map_type: Union[MapType, int], key_size: int, value_size: int, max_entries: int, *,
               flags: int = 0, name: str = "", inner_map_fd: Optional[FdArg] = None,
               numa_node: Optional[int] = None, btf_fd: Optional[FdArg] = None,
               btf_key_type_id: int = 0, btf_value_type_id: int = 0,
               btf_vmlinux_value_type_id: int = 0, map_extra: int = 0,
               map_ifindex: int = 0, value_type_btf_obj_fd: Optional[FdArg] = None) -> FD:
    """BPF_MAP_CREATE: create a map and return its FD.

    ``numa_node`` sets ``BPF_F_NUMA_NODE`` itself; ``name`` is cut to 15
    bytes (``BPF_OBJ_NAME_LEN``).  The map lives while the FD (or a pin)
    does.
    """
    attr = MapCreateAttr()
    attr.map_type = int(map_type)
    attr.key_size = key_size
    attr.value_size = value_size
    attr.max_entries = max_entries
    attr.map_flags = int(flags)
    if numa_node is not None:
        attr.map_flags |= 1 << 2  # BPF_F_NUMA_NODE
        attr.numa_node = numa_node
    attr.inner_map_fd = _fd_or_zero(inner_map_fd)
    attr.map_name = _name16(name)
    attr.map_ifindex = map_ifindex
    if btf_fd is not None:
        attr.btf_fd = fd_number(btf_fd)
        attr.btf_key_type_id = btf_key_type_id
        attr.btf_value_type_id = btf_value_type_id
        attr.btf_vmlinux_value_type_id = btf_vmlinux_value_type_id
    attr.map_extra = map_extra
    if value_type_btf_obj_fd is not None:
        attr.value_type_btf_obj_fd = fd_number(value_type_btf_obj_fd)
        attr.map_flags |= 1 << 15  # BPF_F_VTYPE_BTF_OBJ_FD
    fd = bpf(BpfCmd.MAP_CREATE, attr, raise_on_error=False)
    if fd < 0:
        err = -fd
        hint = errno_hint("BPF_MAP_CREATE", err)
        if err in (E.EINVAL, E.E2BIG):
            from purebpf.syscall._hints import map_create_problem

            hint = map_create_problem(attr) or (e2big_hint(attr, hint) if err == E.E2BIG else hint)
        raise KernelError(err, "BPF_MAP_CREATE", hint=hint, detail=f"map {name!r}" if name else None)
    return FD(fd, f"map {name!r}" if name else "map")


def map_lookup_elem(fd: FdArg, key: Optional[BytesLike], value_size: int, flags: int = 0, *,
                    value: Optional[BytesLike] = None) -> Optional[bytes]:
    """BPF_MAP_LOOKUP_ELEM: the value (``value_size`` bytes) or None when absent (ENOENT).

    For per-CPU maps ``value_size`` must be ``round_up(value_size, 8) *
    possible CPUs``.  ``key`` is None/empty for key-less maps (queue and
    stack, where the lookup is a peek).  A bloom filter is asked with
    ``key=None`` and the candidate in ``value``: the result is None when the
    value is certainly absent.
    """
    attr = MapElemAttr()
    attr.map_fd = fd_number(fd)
    kaddr, kbuf = _buf(key)
    out = _out(value_size)
    if value is not None:
        raw = bytes(value)[:value_size]
        ctypes.memmove(out, raw, len(raw))
    attr.key = kaddr
    attr.value = ctypes.addressof(out)
    attr.flags = int(flags)
    ret = bpf(BpfCmd.MAP_LOOKUP_ELEM, attr, raise_on_error=False, extra=_elem_extra(key, value, value_size))
    del kbuf
    if ret == -E.ENOENT:
        return None
    if ret < 0:
        _raise(BpfCmd.MAP_LOOKUP_ELEM, -ret)
    return out.raw[:value_size]


def map_lookup_and_delete_elem(fd: FdArg, key: Optional[BytesLike], value_size: int,
                               flags: int = 0) -> Optional[bytes]:
    """BPF_MAP_LOOKUP_AND_DELETE_ELEM (pop for queue/stack): the value, or None when absent."""
    attr = MapElemAttr()
    attr.map_fd = fd_number(fd)
    kaddr, kbuf = _buf(key)
    out = _out(value_size)
    attr.key = kaddr
    attr.value = ctypes.addressof(out)
    attr.flags = int(flags)
    ret = bpf(BpfCmd.MAP_LOOKUP_AND_DELETE_ELEM, attr, raise_on_error=False,
              extra=_elem_extra(key, None, value_size))
    del kbuf
    if ret == -E.ENOENT:
        return None
    if ret < 0:
        _raise(BpfCmd.MAP_LOOKUP_AND_DELETE_ELEM, -ret)
    return out.raw[:value_size]


def map_update_elem(fd: FdArg, key: Optional[BytesLike], value: BytesLike, flags: int = 0) -> None:
    """BPF_MAP_UPDATE_ELEM with ``flags`` ANY/NOEXIST/EXIST (| F_LOCK)."""
    attr = MapElemAttr()
    attr.map_fd = fd_number(fd)
    kaddr, kbuf = _buf(key)
    vaddr, vbuf = _buf(value)
    attr.key = kaddr
    attr.value = vaddr
    attr.flags = int(flags)
    bpf(BpfCmd.MAP_UPDATE_ELEM, attr, extra=_elem_extra(key, value))
    del kbuf, vbuf


def map_delete_elem(fd: FdArg, key: Optional[BytesLike], flags: int = 0) -> bool:
    """BPF_MAP_DELETE_ELEM: True if deleted, False if the key was absent (ENOENT)."""
    attr = MapElemAttr()
    attr.map_fd = fd_number(fd)
    kaddr, kbuf = _buf(key)
    attr.key = kaddr
    attr.flags = int(flags)
    ret = bpf(BpfCmd.MAP_DELETE_ELEM, attr, raise_on_error=False, extra=_elem_extra(key))
    del kbuf
    if ret == -E.ENOENT:
        return False
    if ret < 0:
        _raise(BpfCmd.MAP_DELETE_ELEM, -ret)
    return True


def map_get_next_key(fd: FdArg, key: Optional[BytesLike], key_size: int) -> Optional[bytes]:
    """BPF_MAP_GET_NEXT_KEY: the key after ``key`` (the first key when ``key`` is None).

    Returns None at the end (ENOENT).  When ``key`` is not in the map the
    kernel returns the first key of hash maps, so an iteration survives
    concurrent deletes.
    """
    attr = MapElemAttr()
    attr.map_fd = fd_number(fd)
    kaddr, kbuf = _buf(key)
    out = _out(key_size)
    attr.key = kaddr
    attr.next_key = ctypes.addressof(out)
    ret = bpf(BpfCmd.MAP_GET_NEXT_KEY, attr, raise_on_error=False, extra=_elem_extra(key))
    del kbuf
    if ret == -E.ENOENT:
        return None
    if ret < 0:
        _raise(BpfCmd.MAP_GET_NEXT_KEY, -ret)
    return out.raw[:key_size]


def map_freeze(fd: FdArg) -> None:
    """BPF_MAP_FREEZE: make the map read-only for user space (programs may still write
    unless it was created with ``BPF_F_RDONLY_PROG``)."""
    attr = MapElemAttr()
    attr.map_fd = fd_number(fd)
    bpf(BpfCmd.MAP_FREEZE, attr)


class BatchResult(NamedTuple):
    """What a lookup batch returned: ``keys``/``values`` (equal length) and
    ``out_batch``, the token to pass as ``in_batch`` next time (None when the
    map has no more elements)."""

    keys: List[bytes]
    values: List[bytes]
    out_batch: Optional[bytes]


def _lookup_batch(cmd: BpfCmd, fd: FdArg, in_batch: Optional[BytesLike], key_size: int, value_size: int,
                  count: int, elem_flags: int, flags: int) -> BatchResult:
    token = max(key_size, 8)
    attr = MapBatchAttr()
    ibaddr, ibbuf = _buf(in_batch)
    obuf = _out(token)
    keys = _out(key_size * count)
    values = _out(value_size * count)
    attr.in_batch = ibaddr
    attr.out_batch = ctypes.addressof(obuf)
    attr.keys = ctypes.addressof(keys)
    attr.values = ctypes.addressof(values)
    attr.count = count
    attr.map_fd = fd_number(fd)
    attr.elem_flags = elem_flags
    attr.flags = flags
    ret = bpf(cmd, attr, raise_on_error=False)
    del ibbuf
    if ret < 0 and ret != -E.ENOENT:
        _raise(cmd, -ret)
    n = attr.count
    kraw, vraw = keys.raw, values.raw
    klist = [kraw[i * key_size:(i + 1) * key_size] for i in range(n)]
    vlist = [vraw[i * value_size:(i + 1) * value_size] for i in range(n)]
    return BatchResult(klist, vlist, None if ret == -E.ENOENT else obuf.raw[:token])


def map_lookup_batch(fd: FdArg, in_batch: Optional[BytesLike], key_size: int, value_size: int, count: int,
                     *, elem_flags: int = 0, flags: int = 0) -> BatchResult:
    """BPF_MAP_LOOKUP_BATCH: up to ``count`` elements starting at ``in_batch``
    (None: from the start).  ``value_size`` is the per-element size (per-CPU
    maps: rounded size times possible CPUs)."""
    return _lookup_batch(BpfCmd.MAP_LOOKUP_BATCH, fd, in_batch, key_size, value_size, count,
                         elem_flags, flags)


def map_lookup_and_delete_batch(fd: FdArg, in_batch: Optional[BytesLike], key_size: int, value_size: int,
                                count: int, *, elem_flags: int = 0, flags: int = 0) -> BatchResult:
    """BPF_MAP_LOOKUP_AND_DELETE_BATCH: like :func:`map_lookup_batch`, removing what it returns."""
    return _lookup_batch(BpfCmd.MAP_LOOKUP_AND_DELETE_BATCH, fd, in_batch, key_size, value_size, count,
                         elem_flags, flags)


def map_update_batch(fd: FdArg, keys: Sequence[BytesLike], values: Sequence[BytesLike], *,
                     elem_flags: int = 0, flags: int = 0) -> int:
    """BPF_MAP_UPDATE_BATCH: write ``len(keys)`` elements; returns how many were written.

    On failure the KernelError's ``count`` attribute holds the number the
    kernel processed before stopping.
    """
    if len(keys) != len(values):
        raise ValueError(f"{len(keys)} keys but {len(values)} values")
    return _write_batch(BpfCmd.MAP_UPDATE_BATCH, fd, keys, values, elem_flags, flags)


def map_delete_batch(fd: FdArg, keys: Sequence[BytesLike], *, elem_flags: int = 0, flags: int = 0) -> int:
    """BPF_MAP_DELETE_BATCH: delete ``keys``; returns how many were deleted."""
    return _write_batch(BpfCmd.MAP_DELETE_BATCH, fd, keys, None, elem_flags, flags)


def _write_batch(cmd: BpfCmd, fd: FdArg, keys: Sequence[BytesLike], values: Optional[Sequence[BytesLike]],
                 elem_flags: int, flags: int) -> int:
    attr = MapBatchAttr()
    kaddr, kbuf = _buf(b"".join(bytes(k) for k in keys))
    vaddr, vbuf = _buf(b"".join(bytes(v) for v in values) if values is not None else None)
    attr.keys = kaddr
    attr.values = vaddr
    attr.count = len(keys)
    attr.map_fd = fd_number(fd)
    attr.elem_flags = elem_flags
    attr.flags = flags
    ret = bpf(cmd, attr, raise_on_error=False)
    del kbuf, vbuf
    if ret < 0:
        err = _error(cmd, -ret)
        err.count = attr.count  # type: ignore[attr-defined]
        raise err
    return int(attr.count)


# -- pinning -----------------------------------------------------------------

def obj_pin(fd: FdArg, path: Union[str, "os.PathLike[str]"], *, path_fd: Optional[int] = None) -> None:
    """BPF_OBJ_PIN: pin the object at ``path`` on a bpf filesystem (relative to
    ``path_fd`` when given, with ``BPF_F_PATH_FD``)."""
    p = os.fsencode(path) + b"\0"
    buf = ctypes.create_string_buffer(p, len(p))
    attr = ObjPinAttr()
    attr.pathname = ctypes.addressof(buf)
    attr.bpf_fd = fd_number(fd)
    if path_fd is not None:
        attr.path_fd = path_fd
        attr.file_flags = 1 << 14  # BPF_F_PATH_FD
    bpf(BpfCmd.OBJ_PIN, attr, extra={"path": os.fsdecode(path)})


def obj_get(path: Union[str, "os.PathLike[str]"], flags: int = 0, *, path_fd: Optional[int] = None) -> FD:
    """BPF_OBJ_GET: a new FD for the object pinned at ``path`` (``flags``:
    ``BPF_F_RDONLY``/``BPF_F_WRONLY``)."""
    p = os.fsencode(path) + b"\0"
    buf = ctypes.create_string_buffer(p, len(p))
    attr = ObjPinAttr()
    attr.pathname = ctypes.addressof(buf)
    attr.file_flags = flags
    if path_fd is not None:
        attr.path_fd = path_fd
        attr.file_flags |= 1 << 14  # BPF_F_PATH_FD
    fd = bpf(BpfCmd.OBJ_GET, attr, extra={"path": os.fsdecode(path)})
    return FD(fd, f"pinned {os.fsdecode(path)}")


# -- programs and BTF -----------------------------------------------------------

def _log_text(buf: Optional[ctypes.Array[ctypes.c_char]]) -> str:
    if buf is None:
        return ""
    return buf.value.decode("utf-8", "replace")


def prog_load(prog_type: Union[ProgType, int], insns: BytesLike, license: str, *, name: str = "",
              expected_attach_type: Optional[Union[AttachType, int]] = None, attach_btf_id: int = 0,
              attach_btf_obj_fd: Optional[FdArg] = None, attach_prog_fd: Optional[FdArg] = None,
              kern_version: int = 0, prog_flags: int = 0, prog_btf_fd: Optional[FdArg] = None,
              func_info: BytesLike = b"", func_info_rec_size: int = 8,
              line_info: BytesLike = b"", line_info_rec_size: int = 16,
              fd_array: Optional[Sequence[int]] = None, log_level: int = 0, log_size: int = 0,
              prog_ifindex: int = 0) -> Tuple[FD, str]:
    """BPF_PROG_LOAD: load ``insns`` (8 bytes per slot) and return (FD, verifier log).

    ``log_level``/``log_size`` ask for the verifier log (``log_size`` bytes of
    buffer; 0 means no log).  On failure raises
    :class:`~purebpf.errors.VerifierError` carrying whatever log was
    produced, ``truncated=True`` on ENOSPC, and the attribute
    ``log_true_size`` (the size the whole log needs, from kernels >= 6.4;
    0 otherwise) -- or a plain :class:`~purebpf.errors.KernelError` when the
    refusal is not the verifier's (EPERM, EBADF, E2BIG, ENOMEM... with no
    log).  Repeats the call on EAGAIN up to five times, as libbpf does.
    """
    data = bytes(insns)
    if len(data) % 8:
        raise ValueError(f"instruction bytes not a multiple of 8: {len(data)}")
    ibuf = ctypes.create_string_buffer(data, max(len(data), 1))
    lic = license.encode() + b"\0"
    lbuf = ctypes.create_string_buffer(lic, len(lic))
    attr = ProgLoadAttr()
    attr.prog_type = int(prog_type)
    attr.insn_cnt = len(data) // 8
    attr.insns = ctypes.addressof(ibuf)
    attr.license = ctypes.addressof(lbuf)
    logbuf = None
    if log_size and log_level:
        logbuf = ctypes.create_string_buffer(log_size)
        attr.log_level = log_level
        attr.log_size = log_size
        attr.log_buf = ctypes.addressof(logbuf)
    attr.kern_version = kern_version
    attr.prog_flags = prog_flags
    attr.prog_name = _name16(name)
    attr.prog_ifindex = prog_ifindex
    if expected_attach_type is not None:
        attr.expected_attach_type = int(expected_attach_type)
    if prog_btf_fd is not None:
        attr.prog_btf_fd = fd_number(prog_btf_fd)
    fibuf = libuf = None
    if func_info:
        faddr, fibuf = _buf(func_info)
        attr.func_info_rec_size = func_info_rec_size
        attr.func_info = faddr
        attr.func_info_cnt = len(func_info) // func_info_rec_size
    if line_info:
        laddr, libuf = _buf(line_info)
        attr.line_info_rec_size = line_info_rec_size
        attr.line_info = laddr
        attr.line_info_cnt = len(line_info) // line_info_rec_size
    attr.attach_btf_id = attach_btf_id
    if attach_prog_fd is not None:
        attr.attach_prog_fd = fd_number(attach_prog_fd)
    elif attach_btf_obj_fd is not None:
        attr.attach_btf_obj_fd = fd_number(attach_btf_obj_fd)
    fabuf = None
    if fd_array:
        fabuf = (ctypes.c_int * len(fd_array))(*fd_array)
        attr.fd_array = ctypes.addressof(fabuf)
    extra: Optional[Dict[str, Any]] = {"license": license} if _trace._hooks else None
    if extra is not None:
        if fd_array:
            extra["fd_array"] = _trace.Name("[" + ",".join(str(f) for f in fd_array) + "]")
    ret = -E.EAGAIN
    for _ in range(5):
        ret = bpf(BpfCmd.PROG_LOAD, attr, raise_on_error=False, extra=extra)
        if ret != -E.EAGAIN:
            break
    del ibuf, lbuf, fibuf, libuf, fabuf
    log = _log_text(logbuf)
    if ret >= 0:
        return FD(ret, f"prog {name!r}" if name else "prog"), log
    err = -ret
    hint = errno_hint("BPF_PROG_LOAD", err)
    if err in (E.EINVAL, E.E2BIG):
        from purebpf.syscall._hints import prog_load_problem

        hint = prog_load_problem(attr, log) or (e2big_hint(attr, hint) if err == E.E2BIG else hint)
    if log or err in (E.EACCES, E.EINVAL, E.ENOSPC):
        verr = VerifierError(err, name, log, hint=hint, truncated=(err == E.ENOSPC))
        verr.log_true_size = int(attr.log_true_size)  # type: ignore[attr-defined]
        raise verr
    raise KernelError(err, "BPF_PROG_LOAD", hint=hint, detail=f"program {name!r}" if name else None)


def btf_load(data: BytesLike, *, log_level: int = 0, log_size: int = 0) -> Tuple[FD, str]:
    """BPF_BTF_LOAD: load raw BTF (header + types + strings) and return (FD, log).

    On failure raises :class:`~purebpf.errors.BtfLoadError` with the log
    (empty unless ``log_level``/``log_size`` were given) and the attribute
    ``log_true_size``.
    """
    raw = bytes(data)
    dbuf = ctypes.create_string_buffer(raw, max(len(raw), 1))
    attr = BtfLoadAttr()
    attr.btf = ctypes.addressof(dbuf)
    attr.btf_size = len(raw)
    logbuf = None
    if log_level and log_size:
        logbuf = ctypes.create_string_buffer(log_size)
        attr.btf_log_buf = ctypes.addressof(logbuf)
        attr.btf_log_size = log_size
        attr.btf_log_level = log_level
    ret = bpf(BpfCmd.BTF_LOAD, attr, raise_on_error=False)
    del dbuf
    log = _log_text(logbuf)
    if ret >= 0:
        return FD(ret, "btf"), log
    err = -ret
    summary = log.strip().splitlines()[-1] if log.strip() else None
    berr = BtfLoadError(err, log, hint=errno_hint("BPF_BTF_LOAD", err), summary=summary)
    berr.log_true_size = int(attr.btf_log_true_size)  # type: ignore[attr-defined]
    raise berr


# -- information ------------------------------------------------------------

_INFO_NAMES = {"BpfProgInfo": "bpf_prog_info", "BpfMapInfo": "bpf_map_info", "BpfBtfInfo": "bpf_btf_info",
               "BpfLinkInfo": "bpf_link_info"}


def obj_get_info_by_fd(fd: FdArg, info: ctypes.Structure) -> int:
    """BPF_OBJ_GET_INFO_BY_FD into ``info`` (a ``Bpf*Info`` structure, with any
    array pointers/counts already set); returns the length the kernel wrote."""
    attr = InfoAttr()
    attr.bpf_fd = fd_number(fd)
    attr.info_len = ctypes.sizeof(info)
    attr.info = ctypes.addressof(info)
    extra = {"info": _trace.Name(_INFO_NAMES.get(type(info).__name__, type(info).__name__))} \
        if _trace._hooks else None
    bpf(BpfCmd.OBJ_GET_INFO_BY_FD, attr, extra=extra)
    return int(attr.info_len)


def prog_info(fd: FdArg) -> BpfProgInfo:
    """``struct bpf_prog_info`` of a program (scalars only; array pointers left 0)."""
    info = BpfProgInfo()
    obj_get_info_by_fd(fd, info)
    return info


def prog_info_with_arrays(fd: FdArg, arrays: Sequence[Tuple[str, str, int]]
                          ) -> Tuple[BpfProgInfo, Dict[str, bytes]]:
    """``struct bpf_prog_info`` plus the array fields named in ``arrays``.

    Each entry is ``(len_field, ptr_field, element_size)``.  The kernel fills
    arrays only into buffers user space supplies, so this asks twice: once
    for the lengths, once with buffers of those sizes for all arrays at once.
    Returns the second answer (the first when no array is non-empty) and the
    bytes of each array keyed by its ``ptr_field``.
    """
    first = prog_info(fd)
    wanted = [(lf, pf, elem, int(getattr(first, lf))) for lf, pf, elem in arrays]
    wanted = [w for w in wanted if w[3]]
    if not wanted:
        return first, {pf: b"" for _, pf, _ in arrays}
    info = BpfProgInfo()
    buffers = {}
    for len_field, ptr_field, elem, n in wanted:
        buf = _out(n * elem)
        buffers[ptr_field] = buf
        setattr(info, len_field, n)
        setattr(info, ptr_field, ctypes.addressof(buf))
    obj_get_info_by_fd(fd, info)
    out = {pf: b"" for _, pf, _ in arrays}
    for len_field, ptr_field, elem, n in wanted:
        got = int(getattr(info, len_field)) * elem
        out[ptr_field] = buffers[ptr_field].raw[:min(n * elem, got)]
    return info, out


def _prog_array(fd: FdArg, len_field: str, ptr_field: str, elem: int) -> bytes:
    return prog_info_with_arrays(fd, [(len_field, ptr_field, elem)])[1][ptr_field]


def prog_xlated_insns(fd: FdArg) -> bytes:
    """The program as the verifier left it (``xlated_prog_insns``), 8 bytes per slot.

    Map references appear as the kernel rewrote them (map addresses /
    ids depending on privileges)."""
    return _prog_array(fd, "xlated_prog_len", "xlated_prog_insns", 1)


def prog_jited_insns(fd: FdArg) -> bytes:
    """The JIT-compiled machine code (``jited_prog_insns``)."""
    return _prog_array(fd, "jited_prog_len", "jited_prog_insns", 1)


def prog_map_ids(fd: FdArg) -> List[int]:
    """Ids of the maps the program uses (``map_ids``)."""
    raw = _prog_array(fd, "nr_map_ids", "map_ids", 4)
    return list((ctypes.c_uint32 * (len(raw) // 4)).from_buffer_copy(raw))


def map_info(fd: FdArg) -> BpfMapInfo:
    """``struct bpf_map_info`` of a map."""
    info = BpfMapInfo()
    obj_get_info_by_fd(fd, info)
    return info


def btf_info(fd: FdArg) -> BpfBtfInfo:
    """``struct bpf_btf_info`` of a BTF object (no data copied)."""
    info = BpfBtfInfo()
    obj_get_info_by_fd(fd, info)
    return info


def btf_data(fd: FdArg) -> bytes:
    """The raw BTF bytes the kernel holds for a BTF object."""
    first = btf_info(fd)
    buf = _out(first.btf_size)
    info = BpfBtfInfo()
    info.btf = ctypes.addressof(buf)
    info.btf_size = first.btf_size
    obj_get_info_by_fd(fd, info)
    return buf.raw[:info.btf_size]


def btf_name(fd: FdArg) -> str:
    """The name of a kernel BTF object ("vmlinux", a module name; "" for program BTF)."""
    buf = _out(256)
    info = BpfBtfInfo()
    info.name = ctypes.addressof(buf)
    info.name_len = 256
    obj_get_info_by_fd(fd, info)
    return buf.value.decode("utf-8", "replace")


def link_info(fd: FdArg) -> BpfLinkInfo:
    """``struct bpf_link_info`` of a link (string pointers left 0)."""
    info = BpfLinkInfo()
    obj_get_info_by_fd(fd, info)
    return info


def link_target_name(fd: FdArg) -> str:
    """The name a link is attached to, when its info carries one: the raw
    tracepoint (``tp_name``), the perf event's tracepoint / kprobe function /
    uprobe file, or the iterator target.  "" for other links."""
    first = link_info(fd)
    buf = _out(512)
    info = BpfLinkInfo()
    link_type = int(first.type)
    if link_type == 1:  # BPF_LINK_TYPE_RAW_TRACEPOINT
        info.raw_tracepoint.tp_name = ctypes.addressof(buf)
        info.raw_tracepoint.tp_name_len = 512
    elif link_type == 4:  # BPF_LINK_TYPE_ITER
        info.iter.target_name = ctypes.addressof(buf)
        info.iter.target_name_len = 512
    elif link_type == 7:  # BPF_LINK_TYPE_PERF_EVENT
        kind = int(first.perf_event.type)
        if kind in (1, 2):  # BPF_PERF_EVENT_UPROBE / URETPROBE
            info.perf_event.uprobe.file_name = ctypes.addressof(buf)
            info.perf_event.uprobe.name_len = 512
        elif kind in (3, 4):  # KPROBE / KRETPROBE
            info.perf_event.kprobe.func_name = ctypes.addressof(buf)
            info.perf_event.kprobe.name_len = 512
        elif kind == 5:  # TRACEPOINT
            info.perf_event.tracepoint.tp_name = ctypes.addressof(buf)
            info.perf_event.tracepoint.name_len = 512
        else:
            return ""
    else:
        return ""
    obj_get_info_by_fd(fd, info)
    return buf.value.decode("utf-8", "replace")


# -- ids ------------------------------------------------------------------------

def _get_fd_by_id(cmd: BpfCmd, what: str, obj_id: int, open_flags: int) -> FD:
    attr = GetIdAttr()
    attr.start_id = obj_id
    attr.open_flags = open_flags
    return FD(bpf(cmd, attr), f"{what} id {obj_id}")


def prog_get_fd_by_id(prog_id: int, open_flags: int = 0) -> FD:
    """BPF_PROG_GET_FD_BY_ID."""
    return _get_fd_by_id(BpfCmd.PROG_GET_FD_BY_ID, "prog", prog_id, open_flags)


def map_get_fd_by_id(map_id: int, open_flags: int = 0) -> FD:
    """BPF_MAP_GET_FD_BY_ID (``open_flags``: BPF_F_RDONLY / BPF_F_WRONLY)."""
    return _get_fd_by_id(BpfCmd.MAP_GET_FD_BY_ID, "map", map_id, open_flags)


def btf_get_fd_by_id(btf_id: int, open_flags: int = 0) -> FD:
    """BPF_BTF_GET_FD_BY_ID."""
    return _get_fd_by_id(BpfCmd.BTF_GET_FD_BY_ID, "btf", btf_id, open_flags)


def link_get_fd_by_id(link_id: int, open_flags: int = 0) -> FD:
    """BPF_LINK_GET_FD_BY_ID."""
    return _get_fd_by_id(BpfCmd.LINK_GET_FD_BY_ID, "link", link_id, open_flags)


def _next_id(cmd: BpfCmd, start: int) -> Optional[int]:
    attr = GetIdAttr()
    attr.start_id = start
    ret = bpf(cmd, attr, raise_on_error=False)
    if ret == -E.ENOENT:
        return None
    if ret < 0:
        _raise(cmd, -ret)
    return int(attr.next_id)


def prog_get_next_id(start: int = 0) -> Optional[int]:
    """BPF_PROG_GET_NEXT_ID: the smallest program id greater than ``start`` (None at the end)."""
    return _next_id(BpfCmd.PROG_GET_NEXT_ID, start)


def map_get_next_id(start: int = 0) -> Optional[int]:
    """BPF_MAP_GET_NEXT_ID."""
    return _next_id(BpfCmd.MAP_GET_NEXT_ID, start)


def btf_get_next_id(start: int = 0) -> Optional[int]:
    """BPF_BTF_GET_NEXT_ID."""
    return _next_id(BpfCmd.BTF_GET_NEXT_ID, start)


def link_get_next_id(start: int = 0) -> Optional[int]:
    """BPF_LINK_GET_NEXT_ID."""
    return _next_id(BpfCmd.LINK_GET_NEXT_ID, start)


# -- running and attaching -------------------------------------------------------

class TestRunResult(NamedTuple):
    """BPF_PROG_TEST_RUN results: the program's return value, the average run
    time per repetition in ns, and the output packet / context."""

    retval: int
    duration_ns: int
    data_out: bytes
    ctx_out: bytes


TestRunResult.__test__ = False  # type: ignore[attr-defined]  # a result type, not a pytest test class


def prog_test_run(fd: FdArg, *, data_in: BytesLike = b"", data_size_out: int = 0, ctx_in: BytesLike = b"",
                  ctx_size_out: int = 0, repeat: int = 1, flags: int = 0, cpu: int = 0,
                  batch_size: int = 0) -> TestRunResult:
    """BPF_PROG_TEST_RUN: run the program in the kernel on ``data_in``/``ctx_in``.

    ``data_size_out`` / ``ctx_size_out`` size the output buffers (0: no
    output wanted).  ``retval`` is returned as an unsigned 32-bit value,
    like the kernel's ``__u32 retval``.
    """
    attr = TestRunAttr()
    attr.prog_fd = fd_number(fd)
    daddr, dbuf = _buf(data_in)
    caddr, cbuf = _buf(ctx_in)
    attr.data_in = daddr
    attr.data_size_in = len(data_in)
    attr.ctx_in = caddr
    attr.ctx_size_in = len(ctx_in)
    dout = cout = None
    if data_size_out:
        dout = _out(data_size_out)
        attr.data_out = ctypes.addressof(dout)
        attr.data_size_out = data_size_out
    if ctx_size_out:
        cout = _out(ctx_size_out)
        attr.ctx_out = ctypes.addressof(cout)
        attr.ctx_size_out = ctx_size_out
    attr.repeat = repeat
    attr.flags = flags
    attr.cpu = cpu
    attr.batch_size = batch_size
    bpf(BpfCmd.PROG_TEST_RUN, attr)
    del dbuf, cbuf
    data_out = dout.raw[:min(attr.data_size_out, data_size_out)] if dout is not None else b""
    ctx_out = cout.raw[:min(attr.ctx_size_out, ctx_size_out)] if cout is not None else b""
    return TestRunResult(int(attr.retval), int(attr.duration), data_out, ctx_out)


def link_create(prog_fd: FdArg, target_fd: int, attach_type: Union[AttachType, int], *, flags: int = 0,
                target_btf_id: int = 0, iter_info: BytesLike = b"", perf_cookie: int = 0,
                tracing_cookie: int = 0, relative_fd: int = 0, relative_id: int = 0,
                expected_revision: int = 0, kprobe_multi_syms: Sequence[str] = (),
                kprobe_multi_addrs: Sequence[int] = (), kprobe_multi_cookies: Sequence[int] = (),
                kprobe_multi_flags: int = 0, uprobe_multi_path: str = "",
                uprobe_multi_offsets: Sequence[int] = (), uprobe_multi_ref_ctr_offsets: Sequence[int] = (),
                uprobe_multi_cookies: Sequence[int] = (), uprobe_multi_pid: int = 0,
                uprobe_multi_flags: int = 0, netfilter_pf: int = 0, netfilter_hooknum: int = 0,
                netfilter_priority: int = 0, netfilter_flags: int = 0) -> FD:
    """BPF_LINK_CREATE: attach ``prog_fd`` to ``target_fd`` (an fd, an ifindex
    or 0) as ``attach_type``; the link lives while its FD (or pin) does.

    The attach-type-specific part of the attr is chosen by which keywords
    are given: ``target_btf_id`` (freplace / tracing), ``iter_info``
    (iterators), ``perf_cookie`` (perf_event links), ``tracing_cookie``
    (fentry/fexit/lsm cookie, with ``target_btf_id``), ``relative_fd`` /
    ``relative_id`` / ``expected_revision`` (tcx, netkit, cgroup),
    ``kprobe_multi_*``, ``uprobe_multi_*``, ``netfilter_*``.
    """
    attr = LinkCreateAttr()
    attr.prog_fd = fd_number(prog_fd)
    attr.target_fd = target_fd
    attr.attach_type = int(attach_type)
    attr.flags = flags
    keep: List[object] = []
    extra: Dict[str, Any] = {}
    if kprobe_multi_syms or kprobe_multi_addrs:
        km = attr.kprobe_multi
        km.flags = kprobe_multi_flags
        if kprobe_multi_syms:
            names = [ctypes.create_string_buffer(s.encode()) for s in kprobe_multi_syms]
            arr = (ctypes.c_uint64 * len(names))(*[ctypes.addressof(n) for n in names])
            keep += [names, arr]
            km.syms = ctypes.addressof(arr)
            km.cnt = len(names)
        else:
            a = (ctypes.c_uint64 * len(kprobe_multi_addrs))(*kprobe_multi_addrs)
            keep.append(a)
            km.addrs = ctypes.addressof(a)
            km.cnt = len(kprobe_multi_addrs)
        if kprobe_multi_cookies:
            c = (ctypes.c_uint64 * len(kprobe_multi_cookies))(*kprobe_multi_cookies)
            keep.append(c)
            km.cookies = ctypes.addressof(c)
        extra["kprobe_multi_cnt"] = km.cnt
    elif uprobe_multi_path:
        um = attr.uprobe_multi
        p = ctypes.create_string_buffer(os.fsencode(uprobe_multi_path))
        o = (ctypes.c_uint64 * len(uprobe_multi_offsets))(*uprobe_multi_offsets)
        keep += [p, o]
        um.path = ctypes.addressof(p)
        um.offsets = ctypes.addressof(o)
        um.cnt = len(uprobe_multi_offsets)
        if uprobe_multi_ref_ctr_offsets:
            r = (ctypes.c_uint64 * len(uprobe_multi_ref_ctr_offsets))(*uprobe_multi_ref_ctr_offsets)
            keep.append(r)
            um.ref_ctr_offsets = ctypes.addressof(r)
        if uprobe_multi_cookies:
            c = (ctypes.c_uint64 * len(uprobe_multi_cookies))(*uprobe_multi_cookies)
            keep.append(c)
            um.cookies = ctypes.addressof(c)
        um.pid = uprobe_multi_pid
        um.flags = uprobe_multi_flags
        extra["uprobe_multi_path"] = uprobe_multi_path
    elif iter_info:
        iaddr, ibuf = _buf(iter_info)
        keep.append(ibuf)
        attr.iter_info = iaddr
        attr.iter_info_len = len(iter_info)
    elif perf_cookie:
        attr.perf_event.bpf_cookie = perf_cookie
        extra["bpf_cookie"] = perf_cookie
    elif netfilter_pf or netfilter_hooknum or netfilter_priority or netfilter_flags:
        nf = attr.netfilter
        nf.pf, nf.hooknum, nf.priority, nf.flags = (netfilter_pf, netfilter_hooknum,
                                                    netfilter_priority, netfilter_flags)
        extra.update(pf=netfilter_pf, hooknum=netfilter_hooknum, priority=netfilter_priority)
    elif relative_fd or relative_id or expected_revision:
        attr.tcx.relative_fd = relative_fd or relative_id
        attr.tcx.expected_revision = expected_revision
        extra.update(relative=relative_fd or relative_id, expected_revision=expected_revision)
    elif target_btf_id or tracing_cookie:
        attr.tracing.target_btf_id = target_btf_id
        attr.tracing.cookie = tracing_cookie
        extra["target_btf_id"] = target_btf_id
        if tracing_cookie:
            extra["cookie"] = tracing_cookie
    fd = bpf(BpfCmd.LINK_CREATE, attr, extra=extra)
    del keep
    try:
        kind = AttachType(int(attach_type)).name
    except ValueError:
        kind = str(int(attach_type))
    return FD(fd, f"link {kind}")


def link_update(link_fd: FdArg, new_prog_fd: FdArg, *, old_prog_fd: Optional[FdArg] = None,
                flags: int = 0) -> None:
    """BPF_LINK_UPDATE: swap the program of a link (``old_prog_fd`` with BPF_F_REPLACE)."""
    attr = LinkUpdateAttr()
    attr.link_fd = fd_number(link_fd)
    attr.new_prog_fd = fd_number(new_prog_fd)
    attr.flags = flags
    if old_prog_fd is not None:
        attr.old_prog_fd = fd_number(old_prog_fd)
        attr.flags |= 1 << 2  # BPF_F_REPLACE
    bpf(BpfCmd.LINK_UPDATE, attr)


def link_detach(link_fd: FdArg) -> None:
    """BPF_LINK_DETACH: detach the link (its fd stays open, now defunct)."""
    attr = LinkDetachAttr()
    attr.link_fd = fd_number(link_fd)
    bpf(BpfCmd.LINK_DETACH, attr)


def raw_tracepoint_open(name: Optional[str], prog_fd: FdArg, *, cookie: int = 0) -> FD:
    """BPF_RAW_TRACEPOINT_OPEN: attach a raw_tp program to tracepoint ``name``
    (``None`` for tp_btf/fentry/fexit/lsm programs, whose target is in the
    program itself)."""
    attr = RawTracepointAttr()
    nbuf = None
    if name:
        nbuf = ctypes.create_string_buffer(name.encode())
        attr.name = ctypes.addressof(nbuf)
    attr.prog_fd = fd_number(prog_fd)
    attr.cookie = cookie
    fd = bpf(BpfCmd.RAW_TRACEPOINT_OPEN, attr, extra={"name": name} if name else None)
    del nbuf
    return FD(fd, f"raw_tracepoint {name!r}" if name else "raw_tracepoint")


def prog_attach(prog_fd: FdArg, target_fd: int, attach_type: Union[AttachType, int], flags: int = 0, *,
                replace_prog_fd: Optional[FdArg] = None, relative_fd: int = 0,
                expected_revision: int = 0) -> None:
    """BPF_PROG_ATTACH (legacy attach to a cgroup, sockmap, lirc, flow dissector...)."""
    attr = ProgAttachAttr()
    attr.target_fd = target_fd
    attr.attach_bpf_fd = fd_number(prog_fd)
    attr.attach_type = int(attach_type)
    attr.attach_flags = flags
    if replace_prog_fd is not None:
        attr.replace_bpf_fd = fd_number(replace_prog_fd)
    attr.relative_fd = relative_fd
    attr.expected_revision = expected_revision
    bpf(BpfCmd.PROG_ATTACH, attr)


def prog_detach(target_fd: int, attach_type: Union[AttachType, int], prog_fd: Optional[FdArg] = None) -> None:
    """BPF_PROG_DETACH."""
    attr = ProgAttachAttr()
    attr.target_fd = target_fd
    attr.attach_type = int(attach_type)
    if prog_fd is not None:
        attr.attach_bpf_fd = fd_number(prog_fd)
    bpf(BpfCmd.PROG_DETACH, attr)


class ProgQueryResult(NamedTuple):
    """BPF_PROG_QUERY: attach flags, program ids attached and the revision."""

    attach_flags: int
    prog_ids: List[int]
    revision: int


def prog_query(target_fd: int, attach_type: Union[AttachType, int], *, query_flags: int = 0,
               max_progs: int = 64) -> ProgQueryResult:
    """BPF_PROG_QUERY: which programs are attached to ``target_fd`` for ``attach_type``.

    When more than ``max_progs`` are attached the kernel says ENOSPC and how
    many there are; the query is repeated with a buffer that large.
    """
    count = max(max_progs, 1)
    while True:
        ids = (ctypes.c_uint32 * count)()
        attr = QueryAttr()
        attr.target_fd = target_fd
        attr.attach_type = int(attach_type)
        attr.query_flags = query_flags
        attr.prog_ids = ctypes.addressof(ids)
        attr.prog_cnt = count
        ret = bpf(BpfCmd.PROG_QUERY, attr, raise_on_error=False)
        if ret == -E.ENOSPC and attr.prog_cnt > count:
            count = int(attr.prog_cnt)
            continue
        if ret < 0:
            _raise(BpfCmd.PROG_QUERY, -ret)
        n = min(int(attr.prog_cnt), count)
        return ProgQueryResult(int(attr.attach_flags), list(ids[:n]), int(attr.revision))


def enable_stats(stats_type: int = 0) -> FD:
    """BPF_ENABLE_STATS: run-time statistics (run_time_ns/run_cnt) stay on while the FD is open."""
    attr = EnableStatsAttr()
    attr.type = stats_type
    return FD(bpf(BpfCmd.ENABLE_STATS, attr), "stats")


def iter_create(link_fd: FdArg) -> FD:
    """BPF_ITER_CREATE: a readable fd producing the iterator program's output."""
    attr = IterCreateAttr()
    attr.link_fd = fd_number(link_fd)
    return FD(bpf(BpfCmd.ITER_CREATE, attr), "iter")


def prog_bind_map(prog_fd: FdArg, map_fd: FdArg) -> None:
    """BPF_PROG_BIND_MAP: keep ``map_fd`` alive as long as the program (libbpf does it for .rodata)."""
    attr = ProgBindMapAttr()
    attr.prog_fd = fd_number(prog_fd)
    attr.map_fd = fd_number(map_fd)
    bpf(BpfCmd.PROG_BIND_MAP, attr)


class TaskFdQueryResult(NamedTuple):
    """BPF_TASK_FD_QUERY: what a perf-event / raw-tp fd of a task is attached to."""

    prog_id: int
    fd_type: int
    name: str
    probe_offset: int
    probe_addr: int


def task_fd_query(pid: int, fd: int, *, flags: int = 0, buf_len: int = 256) -> TaskFdQueryResult:
    """BPF_TASK_FD_QUERY for descriptor ``fd`` of process ``pid``."""
    buf = _out(buf_len)
    attr = TaskFdQueryAttr()
    attr.pid = pid
    attr.fd = fd
    attr.flags = flags
    attr.buf = ctypes.addressof(buf)
    attr.buf_len = buf_len
    bpf(BpfCmd.TASK_FD_QUERY, attr)
    return TaskFdQueryResult(int(attr.prog_id), int(attr.fd_type), buf.value.decode("utf-8", "replace"),
                             int(attr.probe_offset), int(attr.probe_addr))


# -- errors -------------------------------------------------------------------------

def _error(cmd: BpfCmd, err: int) -> KernelError:
    from purebpf.syscall._raw import command_name

    name = command_name(cmd)
    return KernelError(err, name, hint=errno_hint(name, err))  # E2BIG here means "too many"


def _raise(cmd: BpfCmd, err: int) -> None:
    raise _error(cmd, err)
