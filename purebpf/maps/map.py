"""A live BPF map: one kernel map behind one file descriptor.

:class:`Map` is made from a :class:`~purebpf.spec.MapSpec` (``Map.create``),
an existing pin (``Map.from_pin``), a kernel map id (``Map.from_id``) or an
fd (``Map.from_fd``).  It feels like a dict of bytes:

>>> m[1] = 42                 # BPF_MAP_UPDATE_ELEM, key/value packed to their sizes
>>> m[1]                      # BPF_MAP_LOOKUP_ELEM
b'*\\x00\\x00\\x00\\x00\\x00\\x00\\x00'
>>> del m[1]                  # BPF_MAP_DELETE_ELEM

Map kinds differ in what user space may do (``kernel/bpf/syscall.c``):

* queue / stack have no key: :meth:`push`, :meth:`pop`, :meth:`peek`;
* a bloom filter has no key either: :meth:`push` adds, :meth:`contains` asks;
* per-CPU maps hold one value per *possible* CPU; user space reads and writes
  all of them at once, each padded to 8 bytes (``round_up(value_size, 8)``),
  so values here are lists with one ``bytes`` per possible CPU;
* prog arrays and map-in-map slots take a file descriptor on update (pass a
  :class:`Map`, a program or an int fd) and give back the *id* on lookup;
* a ring buffer has no element operations at all.

Creation follows libbpf's rules (``bpf_object__create_map``): a perf event
array with ``max_entries`` 0 gets one slot per possible CPU, a ring buffer's
size becomes a power-of-2 multiple of the page size, a map-in-map gets a
temporary inner map as its template, map types the kernel refuses BTF for
are created without it, and the name is cut to ``BPF_OBJ_NAME_LEN - 1``.
"""

from __future__ import annotations

import errno
import logging
import mmap
import os
import sys
from typing import (TYPE_CHECKING, Any, Iterator, List, Optional, Sequence, Tuple, Union)

from purebpf.errors import (KernelError, MapKeyError, NotFoundError, NotSupportedError,
                             PurebpfError, StateError)
from purebpf.maps import _sys
from purebpf.maps._codec import round_up, to_bytes
from purebpf.maps.info import MapInfo
from purebpf.uapi import OBJ_NAME_LEN, MapFlags, MapType, MapUpdateFlags

if TYPE_CHECKING:
    from purebpf.spec import MapSpec
    from purebpf.syscall.fd import FD

__all__ = [
    "Map",
    "kernel_map_name",
    "adjust_ringbuf_size",
    "KEYLESS_TYPES",
    "PERCPU_TYPES",
    "FD_VALUE_TYPES",
]

log = logging.getLogger(__name__)

#: Map types without keys: their element calls pass a NULL key.
KEYLESS_TYPES = frozenset({MapType.QUEUE, MapType.STACK, MapType.BLOOM_FILTER,
                           MapType.RINGBUF, MapType.USER_RINGBUF, MapType.ARENA})

#: Map types with one value per possible CPU (``bpf_map_is_percpu`` idea).
PERCPU_TYPES = frozenset({MapType.PERCPU_HASH, MapType.PERCPU_ARRAY,
                          MapType.LRU_PERCPU_HASH, MapType.PERCPU_CGROUP_STORAGE})

#: Map types indexed by a u32 in ``[0, max_entries)``: update beyond is E2BIG.
ARRAY_TYPES = frozenset({MapType.ARRAY, MapType.PERCPU_ARRAY, MapType.PROG_ARRAY,
                         MapType.PERF_EVENT_ARRAY, MapType.CGROUP_ARRAY,
                         MapType.ARRAY_OF_MAPS, MapType.DEVMAP, MapType.CPUMAP,
                         MapType.XSKMAP, MapType.SOCKMAP, MapType.REUSEPORT_SOCKARRAY})

#: Map types whose user-space value is a file descriptor (lookup gives an id).
FD_VALUE_TYPES = frozenset({MapType.PROG_ARRAY, MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS,
                            MapType.PERF_EVENT_ARRAY, MapType.CGROUP_ARRAY})

#: Map types created with no BTF key/value ids (libbpf ``bpf_object__create_map``),
#: plus PROG_ARRAY, whose kernel ops refuse any BTF (``map_check_no_btf``): libbpf
#: tries and retries without; purebpf skips the call that cannot succeed.
_NO_BTF_TYPES = frozenset({MapType.PROG_ARRAY, MapType.PERF_EVENT_ARRAY, MapType.CGROUP_ARRAY,
                           MapType.STACK_TRACE, MapType.ARRAY_OF_MAPS,
                           MapType.HASH_OF_MAPS, MapType.DEVMAP, MapType.DEVMAP_HASH,
                           MapType.CPUMAP, MapType.XSKMAP, MapType.SOCKMAP,
                           MapType.SOCKHASH, MapType.QUEUE, MapType.STACK, MapType.ARENA})

_MAP_IN_MAP = frozenset({MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS})

#: errno values with which the kernel says "this map type has no such operation"
#: (EOPNOTSUPP, and the kernel-internal ENOTSUPP 524 that reaches user space).
_UNSUPPORTED_ERRNOS = frozenset({errno.EOPNOTSUPP, 524})

Value = Union[bytes, List[bytes]]


def kernel_map_name(name: str) -> str:
    """The name as the kernel stores it: at most ``BPF_OBJ_NAME_LEN - 1`` (15) chars.

    The kernel (``bpf_obj_name_cpy``) accepts only letters, digits, ``_`` and
    ``.``; other characters become ``_`` as in libbpf's ``internal_map_name``.
    """
    cut = name[:OBJ_NAME_LEN - 1]
    return "".join(c if (c.isascii() and (c.isalnum() or c in "_.")) else "_" for c in cut)


def adjust_ringbuf_size(size: int) -> int:
    """libbpf's ``adjust_ringbuf_sz``: the smallest power-of-2 multiple of the page size
    that is at least ``size`` (kept as is when already one; 0 stays 0 so the
    kernel reports the mistake)."""
    if size == 0:
        return 0
    page = mmap.PAGESIZE
    if size % page == 0 and ((size // page) & (size // page - 1)) == 0:
        return size
    mul = 1
    while mul * page <= 0xFFFFFFFF:
        if mul * page > size:
            return mul * page
        mul <<= 1
    return size


def _as_type(value: Union[MapType, int]) -> Union[MapType, int]:
    try:
        return MapType(int(value))
    except ValueError:
        return int(value)


class Map:
    """A live kernel map owning one file descriptor.

    Build with :meth:`create`, :meth:`from_pin`, :meth:`from_id` or
    :meth:`from_fd`.  Attributes: ``name``, ``type``, ``key_size``,
    ``value_size``, ``max_entries``, ``flags``, ``map_extra``, ``id``, ``fd``
    and ``spec`` (the :class:`~purebpf.spec.MapSpec` it came from, if any).
    Keys and values are ``bytes`` on the way out and anything
    :func:`purebpf.maps._codec.to_bytes` accepts on the way in.
    """

    def __init__(self, fd: "FD", *, name: str, type: Union[MapType, int], key_size: int,
                 value_size: int, max_entries: int, flags: int = 0, map_extra: int = 0,
                 map_id: int = 0, spec: "Optional[MapSpec]" = None) -> None:
        self._fd: Optional["FD"] = fd
        self.name = name
        self.type = _as_type(type)
        self.key_size = key_size
        self.value_size = value_size
        self.max_entries = max_entries
        self.flags = flags
        self.map_extra = map_extra
        self.spec = spec
        self._id = map_id
        self._pin_path: Optional[str] = None
        self._ncpus: Optional[int] = None

    # -- construction ------------------------------------------------------

    @classmethod
    def create(cls, spec: "MapSpec", *, btf_fd: Optional[int] = None,
               inner_map_fd: Optional[int] = None, name_override: Optional[str] = None) -> "Map":
        """BPF_MAP_CREATE from a spec, with libbpf's adjustments (see the module doc).

        ``btf_fd`` is the object's loaded BTF; the spec's ``key_type_id`` /
        ``value_type_id`` are passed with it.  When the kernel refuses the map
        with BTF ids, it is created again without them, as libbpf does.
        For a map-in-map without ``inner_map_fd``, a template inner map is
        created from ``spec.inner_map`` and closed once the outer map exists.
        """
        map_type = _as_type(spec.type)
        max_entries = spec.max_entries
        if map_type == MapType.PERF_EVENT_ARRAY and max_entries == 0:
            max_entries = _sys.num_possible_cpus()
        elif map_type in (MapType.RINGBUF, MapType.USER_RINGBUF):
            max_entries = adjust_ringbuf_size(max_entries)
        name = kernel_map_name(name_override if name_override is not None else spec.name)
        if not _sys.has_object_names():
            name = ""  # Linux < 4.15 rejects map_name; libbpf leaves it out likewise

        key_id, value_id = spec.key_type_id, spec.value_type_id
        use_btf_fd = btf_fd
        if map_type in _NO_BTF_TYPES:
            key_id = value_id = 0
            use_btf_fd = None
        elif map_type == MapType.STRUCT_OPS:
            value_id = 0
        if not key_id and not value_id:
            use_btf_fd = None

        template: Optional[Map] = None
        try:
            if map_type in _MAP_IN_MAP and inner_map_fd is None:
                if spec.inner_map is None:
                    raise NotSupportedError(
                        "map-in-map without an inner map",
                        detail=f"map {spec.name!r} needs an inner map definition or inner_map_fd")
                template = cls.create(spec.inner_map, btf_fd=btf_fd)
                inner_map_fd = template.fileno()
            numa = spec.numa_node if spec.flags & MapFlags.NUMA_NODE else None
            kwargs: "dict[str, Any]" = dict(
                flags=spec.flags, name=name, inner_map_fd=inner_map_fd, numa_node=numa,
                map_extra=spec.map_extra, btf_vmlinux_value_type_id=0)
            try:
                fd = _sys.create(int(map_type), spec.key_size, spec.value_size, max_entries,
                                 btf_fd=use_btf_fd, btf_key_type_id=key_id if use_btf_fd else 0,
                                 btf_value_type_id=value_id if use_btf_fd else 0, **kwargs)
            except KernelError as exc:
                if use_btf_fd is None:
                    raise
                log.warning("map %r: creation with BTF failed (%s); retrying without BTF",
                            spec.name, exc)
                fd = _sys.create(int(map_type), spec.key_size, spec.value_size, max_entries,
                                 btf_fd=None, btf_key_type_id=0, btf_value_type_id=0, **kwargs)
        finally:
            if template is not None:
                template.close()
        live = cls(fd, name=spec.name, type=map_type, key_size=spec.key_size,
                   value_size=spec.value_size, max_entries=max_entries, flags=spec.flags,
                   map_extra=spec.map_extra, spec=spec)
        return live

    @classmethod
    def from_fd(cls, fd: "FD", *, name: Optional[str] = None) -> "Map":
        """Wrap an fd of an existing map; its shape is read from the kernel.

        The Map takes ownership of ``fd``.  ``name`` defaults to the kernel's
        (possibly truncated) name.  An fd of another kind of object (a
        program, a link) is refused with NotFoundError.
        """
        try:
            kind = _sys.object_kind(fd)
            if kind is not None and kind != "bpf-map":
                raise NotFoundError("map", name or int(fd),
                                    detail=f"the file descriptor refers to a {kind}")
            info = _sys.info(fd)
        except BaseException:
            fd.close()
            raise
        return cls(fd, name=name if name is not None else info.name, type=info.type,
                   key_size=info.key_size, value_size=info.value_size,
                   max_entries=info.max_entries, flags=info.map_flags,
                   map_extra=info.map_extra, map_id=info.id)

    @classmethod
    def from_pin(cls, path: "Union[str, os.PathLike[str]]", *, name: Optional[str] = None) -> "Map":
        """Open a map pinned at ``path`` on bpffs (BPF_OBJ_GET)."""
        p = os.fspath(path)
        fd = _sys.get_pinned(p)
        try:
            live = cls.from_fd(fd, name=name)
        except NotFoundError as exc:
            raise NotFoundError("map", p, detail=f"the pinned object is not a map: {exc}") from exc
        live._pin_path = os.fspath(path)
        return live

    @classmethod
    def from_id(cls, map_id: int, *, name: Optional[str] = None) -> "Map":
        """Open a map by its kernel id (BPF_MAP_GET_FD_BY_ID)."""
        return cls.from_fd(_sys.fd_by_id(map_id), name=name)

    # -- lifecycle ---------------------------------------------------------

    @property
    def fd(self) -> "FD":
        """The owned :class:`~purebpf.syscall.fd.FD`; StateError once closed."""
        if self._fd is None or self._fd.closed:
            raise StateError(f"map {self.name!r} is closed")
        return self._fd

    def fileno(self) -> int:
        """The fd number (so a Map can be stored in a map-in-map or passed to ``select``)."""
        return int(self.fd.fileno())

    @property
    def closed(self) -> bool:
        return self._fd is None or self._fd.closed

    def close(self) -> None:
        """Close the fd (idempotent).  The kernel map lives on while pinned or in use."""
        if self._fd is not None:
            self._fd.close()
            self._fd = None

    def __enter__(self) -> "Map":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={int(self._fd)}"  # type: ignore[arg-type]
        tname = self.type.name if isinstance(self.type, MapType) else str(self.type)
        return (f"<Map {self.name!r} {tname} key={self.key_size} value={self.value_size} "
                f"max_entries={self.max_entries} {state}>")

    @property
    def id(self) -> int:
        """The kernel's id for this map (asked once, then remembered)."""
        if not self._id:
            self._id = self.info().id
        return self._id

    def info(self) -> MapInfo:
        """BPF_OBJ_GET_INFO_BY_FD, decoded into :class:`MapInfo`."""
        return _sys.info(self.fd)

    # -- shape helpers -----------------------------------------------------

    @property
    def is_percpu(self) -> bool:
        return self.type in PERCPU_TYPES

    @property
    def num_cpus(self) -> int:
        """Possible CPUs (the number of values a per-CPU lookup returns)."""
        if self._ncpus is None:
            self._ncpus = _sys.num_possible_cpus()
        return self._ncpus

    @property
    def _stride(self) -> int:
        return round_up(self.value_size, 8)

    @property
    def _full_value_size(self) -> int:
        """Bytes the kernel copies for one value (all CPUs for per-CPU maps)."""
        if self.is_percpu:
            return self._stride * self.num_cpus
        return self.value_size

    def _key(self, key: Any) -> bytes:
        if self.type in KEYLESS_TYPES:
            if key is not None and key != b"":
                raise ValueError(f"map {self.name!r} ({self._tname}) has no keys; pass None")
            return b""
        if key is None:
            raise ValueError(f"map {self.name!r} needs a {self.key_size}-byte key")
        return to_bytes(key, self.key_size, f"key of map {self.name!r}")

    def _value(self, value: Any) -> bytes:
        what = f"value of map {self.name!r}"
        if not self.is_percpu:
            return to_bytes(value, self.value_size, what)
        n, stride = self.num_cpus, self._stride
        if isinstance(value, (list, tuple)):
            if len(value) != n:
                raise ValueError(f"{what}: per-CPU map needs {n} values (one per possible "
                                 f"CPU), got {len(value)}")
            parts = [to_bytes(v, self.value_size, f"{what} [cpu {i}]") for i, v in
                     enumerate(value)]
        else:
            if isinstance(value, (bytes, bytearray, memoryview)) and len(value) == stride * n \
                    and stride * n != self.value_size:
                return bytes(value)
            one = to_bytes(value, self.value_size, what)
            parts = [one] * n
        pad = b"\0" * (stride - self.value_size)
        return b"".join(p + pad for p in parts)

    def _split(self, raw: bytes) -> Value:
        if not self.is_percpu:
            return raw
        stride = self._stride
        return [raw[i * stride:i * stride + self.value_size] for i in range(self.num_cpus)]

    @property
    def _tname(self) -> str:
        return self.type.name if isinstance(self.type, MapType) else str(self.type)

    def _kernel_error(self, exc: KernelError, key: bytes) -> KernelError:
        """A clearer error for an array index beyond ``max_entries`` (E2BIG)."""
        if exc.errno == errno.E2BIG and self.type in ARRAY_TYPES and len(key) == 4:
            index = int.from_bytes(key, "little" if sys.byteorder == "little" else "big")
            return KernelError(errno.E2BIG, exc.command,
                               detail=f"map {self.name!r}: index {index} is beyond "
                                      f"max_entries {self.max_entries}")
        return exc

    # -- element operations ------------------------------------------------

    def lookup(self, key: Any = None, flags: int = 0) -> Optional[Value]:
        """BPF_MAP_LOOKUP_ELEM: the value, or None when the key is absent.

        Per-CPU maps give a list (one ``bytes`` per possible CPU); queue and
        stack maps take no key and peek at the next element.
        """
        k = self._key(key)
        raw = _sys.lookup(self.fd, k, self._full_value_size, flags)
        return None if raw is None else self._split(raw)

    def __getitem__(self, key: Any) -> Value:
        value = self.lookup(key)
        if value is None:
            raise MapKeyError(self.name, key)
        return value

    def get(self, key: Any, default: Optional[Value] = None) -> Optional[Value]:
        value = self.lookup(key)
        return default if value is None else value

    def __contains__(self, key: Any) -> bool:
        return self.lookup(key) is not None

    def update(self, key: Any, value: Any, flags: int = MapUpdateFlags.ANY) -> None:
        """BPF_MAP_UPDATE_ELEM (flags: ANY, NOEXIST, EXIST, F_LOCK)."""
        k = self._key(key)
        v = self._value(value)
        try:
            _sys.update(self.fd, k, v, int(flags))
        except KernelError as exc:
            new = self._kernel_error(exc, k)
            if new is exc:
                raise
            raise new from exc

    def __setitem__(self, key: Any, value: Any) -> None:
        self.update(key, value)

    def delete(self, key: Any) -> None:
        """BPF_MAP_DELETE_ELEM; MapKeyError when the key is absent."""
        if not _sys.delete(self.fd, self._key(key)):
            raise MapKeyError(self.name, key)

    def __delitem__(self, key: Any) -> None:
        self.delete(key)

    def lookup_and_delete(self, key: Any = None, flags: int = 0) -> Optional[Value]:
        """BPF_MAP_LOOKUP_AND_DELETE_ELEM: the value removed, or None when absent."""
        raw = _sys.lookup_and_delete(self.fd, self._key(key), self._full_value_size, flags)
        return None if raw is None else self._split(raw)

    # -- queue, stack, bloom filter -----------------------------------------

    def push(self, value: Any, flags: int = 0) -> None:
        """Queue/stack: append (BPF_EXIST overwrites the oldest when full).
        Bloom filter: add ``value`` to the set."""
        if self.type not in (MapType.QUEUE, MapType.STACK, MapType.BLOOM_FILTER):
            raise NotSupportedError(f"push on a {self._tname} map")
        _sys.update(self.fd, b"", self._value(value), flags)

    def pop(self) -> Optional[bytes]:
        """Queue/stack: remove and return the next element (None when empty)."""
        if self.type not in (MapType.QUEUE, MapType.STACK):
            raise NotSupportedError(f"pop on a {self._tname} map")
        return _sys.lookup_and_delete(self.fd, b"", self.value_size, 0)

    def peek(self) -> Optional[bytes]:
        """Queue/stack: the next element without removing it (None when empty)."""
        if self.type not in (MapType.QUEUE, MapType.STACK):
            raise NotSupportedError(f"peek on a {self._tname} map")
        return _sys.lookup(self.fd, b"", self.value_size, 0)

    def contains(self, value: Any) -> bool:
        """Bloom filter: False when ``value`` is certainly absent, True when it may be present."""
        if self.type != MapType.BLOOM_FILTER:
            raise NotSupportedError(f"contains on a {self._tname} map",
                                    detail="use `key in map` for keyed maps")
        return _sys.lookup_with_value(self.fd, self._value(value))

    # -- iteration -----------------------------------------------------------

    def keys(self) -> Iterator[bytes]:
        """Every key, by BPF_MAP_GET_NEXT_KEY.

        Safe while deleting: when the key just handed out is deleted, the
        kernel's hash and LPM maps restart from their first key; keys already
        seen are then skipped, so every key is given once and a key is never
        given after it was deleted.  A walk that meets only known keys for
        longer than there are known keys is a cycle and ends, so it cannot
        hang.  (Many restarts make the walk O(n^2) system calls.)
        """
        if self.type in KEYLESS_TYPES:
            raise NotSupportedError(f"iterating a {self._tname} map", detail="it has no keys")
        fd, size = self.fd, self.key_size
        seen: "set[bytes]" = set()
        run = 0
        key = _sys.next_key(fd, None, size)
        while key is not None:
            if key in seen:
                run += 1
                if run > len(seen):
                    return
            else:
                run = 0
                seen.add(key)
                yield key
            key = _sys.next_key(fd, key, size)

    def __iter__(self) -> Iterator[bytes]:
        return self.keys()

    def items(self) -> Iterator[Tuple[bytes, Value]]:
        """``(key, value)`` pairs; keys deleted during the walk are left out."""
        for key in self.keys():
            value = self.lookup(key)
            if value is not None:
                yield key, value

    def values(self) -> Iterator[Value]:
        for _, value in self.items():
            yield value

    def __bool__(self) -> bool:
        """A Map is always true (``len()`` would walk every key, or fail for queues)."""
        return True

    def __len__(self) -> int:
        """Number of keys, counted by walking them (array kinds: ``max_entries``).

        The kernel keeps no element count user space could read, so this is
        O(n) system calls for hash kinds.
        """
        if self.type in ARRAY_TYPES:
            return self.max_entries
        if self.type in KEYLESS_TYPES:
            raise NotSupportedError(f"len() of a {self._tname} map")
        return sum(1 for _ in self.keys())

    # -- batch operations ----------------------------------------------------

    def _unsupported(self, exc: KernelError, what: str) -> PurebpfError:
        """NotSupportedError for ENOTSUPP/EOPNOTSUPP (the kernel decides which
        map types have batch operations; it varies with the version)."""
        if exc.errno in _UNSUPPORTED_ERRNOS:
            return NotSupportedError(f"{what} on a {self._tname} map",
                                     detail=f"the kernel refused it ({exc})")
        return exc

    def _batch_walk(self, delete: bool, count: int) -> List[Tuple[bytes, Value]]:
        """Walk the whole map in chunks.  A hash bucket is returned whole, so
        when one holds more than ``count`` elements the kernel answers ENOSPC;
        the chunk is then asked again with twice the room."""
        out: List[Tuple[bytes, Value]] = []
        token: Optional[bytes] = None
        while True:
            try:
                keys, vals, nxt = _sys.lookup_batch(self.fd, token, self.key_size,
                                                    self._full_value_size, count, delete=delete)
            except KernelError as exc:
                if exc.errno == errno.ENOSPC and count < max(self.max_entries, 1) * 2:
                    count *= 2
                    continue
                err = self._unsupported(exc, "lookup_and_delete_batch" if delete
                                        else "lookup_batch")
                if err is exc:
                    raise
                raise err from exc
            out.extend((k, self._split(v)) for k, v in zip(keys, vals))
            if nxt is None:
                return out
            token = nxt

    def _keyed(self, what: str) -> None:
        if self.type in KEYLESS_TYPES:
            raise NotSupportedError(f"{what} on a {self._tname} map", detail="it has no keys")

    def lookup_batch(self, count: int = 64) -> List[Tuple[bytes, Value]]:
        """All ``(key, value)`` pairs by BPF_MAP_LOOKUP_BATCH, ``count`` per call.

        NotSupportedError when the kernel has no batch lookup for the map type.
        """
        self._keyed("lookup_batch")
        return self._batch_walk(False, max(1, count))

    def lookup_and_delete_batch(self, count: int = 64) -> List[Tuple[bytes, Value]]:
        """All pairs, removing them (BPF_MAP_LOOKUP_AND_DELETE_BATCH; hash kinds)."""
        self._keyed("lookup_and_delete_batch")
        return self._batch_walk(True, max(1, count))

    def update_batch(self, keys: Sequence[Any], values: Sequence[Any],
                     flags: int = MapUpdateFlags.ANY) -> int:
        """BPF_MAP_UPDATE_BATCH; returns the number of elements written."""
        self._keyed("update_batch")
        if len(keys) != len(values):
            raise ValueError(f"update_batch: {len(keys)} keys but {len(values)} values")
        if not keys:
            return 0
        ks = [self._key(k) for k in keys]
        vs = [self._value(v) for v in values]
        try:
            return _sys.update_batch(self.fd, ks, vs, int(flags))
        except KernelError as exc:
            err = self._unsupported(exc, "update_batch")
            if err is exc:
                raise
            raise err from exc

    def delete_batch(self, keys: Sequence[Any]) -> int:
        """BPF_MAP_DELETE_BATCH; returns the number of elements deleted."""
        self._keyed("delete_batch")
        if not keys:
            return 0
        ks = [self._key(k) for k in keys]
        try:
            return _sys.delete_batch(self.fd, ks)
        except KernelError as exc:
            err = self._unsupported(exc, "delete_batch")
            if err is exc:
                raise
            raise err from exc

    # -- map-in-map ----------------------------------------------------------

    def set_inner(self, key: Any, inner: Any) -> None:
        """Store map ``inner`` (a Map or an fd) in slot ``key`` of a map-in-map."""
        if self.type not in _MAP_IN_MAP:
            raise NotSupportedError(f"set_inner on a {self._tname} map")
        self.update(key, inner)

    def inner_id(self, key: Any) -> Optional[int]:
        """The id of the map in slot ``key`` of a map-in-map (None when empty)."""
        raw = self.lookup(key)
        return None if raw is None else int.from_bytes(raw, sys.byteorder)  # type: ignore[arg-type]

    # -- freeze, pin ---------------------------------------------------------

    def freeze(self) -> None:
        """BPF_MAP_FREEZE: no more writes from user space (programs still may)."""
        _sys.freeze(self.fd)

    def pin(self, path: "Union[str, os.PathLike[str]]") -> None:
        """BPF_OBJ_PIN at ``path`` on bpffs (e.g. ``/sys/fs/bpf/name``)."""
        p = os.fspath(path)
        _sys.pin(self.fd, p)
        self._pin_path = p

    @property
    def pin_path(self) -> Optional[str]:
        return self._pin_path

    def unpin(self, path: "Optional[Union[str, os.PathLike[str]]]" = None) -> None:
        """Remove the pin (the last one made, or ``path``); the map itself stays open."""
        p = os.fspath(path) if path is not None else self._pin_path
        if p is None:
            raise StateError(f"map {self.name!r} is not pinned")
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass
        if p == self._pin_path:
            self._pin_path = None
