"""Global variables: a data section seen as named, typed values.

A BPF object's ``.data``, ``.rodata``, ``.bss`` (and custom ``.data.NAME`` /
``.rodata.NAME``, ``.kconfig``) sections become ARRAY maps with a single
element -- key 0, the value is the whole section -- which programs address
with ``BPF_PSEUDO_MAP_VALUE`` ld_imm64 instructions.  libbpf creates them in
``bpf_object__init_internal_map`` / ``bpf_object__populate_internal_map``:

1. ``BPF_MAP_CREATE`` ARRAY, key_size 4, value_size = section size,
   max_entries 1, ``BPF_F_RDONLY_PROG`` for ``.rodata``/``.kconfig``, and
   ``BPF_F_MMAPABLE`` when the section holds a non-static variable;
2. ``BPF_MAP_UPDATE_ELEM`` key 0 with the initial bytes (as edited by the user
   before load);
3. ``BPF_MAP_FREEZE`` for read-only sections;
4. ``mmap`` of the map: read-only for frozen sections, read/write otherwise,
   so user space and programs share the very same memory.

:class:`GlobalData` follows that life.  Before load (``open`` mode) it edits
a private copy of the initial bytes; :meth:`GlobalData.create_map` performs
the four steps and switches it to ``live`` mode, where reads and writes go
through the mmap (or, for a map that is not mmap-able, through map
lookup/update).  Writing a read-only section after load raises StateError.

Variables are found by name in the section's :class:`~purebpf.spec.VariableSpec`
list and converted with their BTF type: integers (size and signedness from
``BTF_KIND_INT``/``ENUM``), ``bool``, floats, pointers (as integers), arrays of
1-byte integers (``char name[16]``) as ``bytes``, arrays of wider integers or
enums (``__u32 hist[16]``) as a ``list`` of ints (written from a list or tuple
of the same length); anything else (structs, unions) is raw bytes.
"""

from __future__ import annotations

import logging
import mmap
import struct
import sys
from typing import TYPE_CHECKING, Any, List, Optional

from purebpf.errors import KernelError, StateError
from purebpf.maps._codec import round_up
from purebpf.maps.map import Map, kernel_map_name
from purebpf.uapi import OBJ_NAME_LEN, MapFlags, MapType

if TYPE_CHECKING:
    from purebpf.btf import Btf
    from purebpf.spec import DataSectionSpec, MapSpec, ObjectSpec, VariableSpec

__all__ = [
    "GlobalData",
    "internal_map_name",
    "libbpf_object_name",
    "data_section_map_spec",
    "data_section_is_mmapable",
    "open_views",
]

log = logging.getLogger(__name__)

_READONLY_KINDS = ("rodata", "kconfig")


def libbpf_object_name(path: str) -> str:
    """The object name libbpf derives from a path: the base name, cut to 15
    characters, up to its first dot (``/x/globals.bpf.o`` -> ``globals``)."""
    base = path.rsplit("/", 1)[-1][:OBJ_NAME_LEN - 1]
    return base.split(".", 1)[0]


def internal_map_name(object_name: str, section_name: str) -> str:
    """The kernel name libbpf gives a data-section map (``internal_map_name``).

    The object name's prefix plus the section name within 15 characters:
    ``globals`` + ``.rodata`` -> ``globals.rodata``.  A custom section with a
    second dot (``.data.counters``) is named by the section alone.
    """
    sfx_len = min(max(7, len(section_name)), OBJ_NAME_LEN - 1)
    if "." in section_name[1:]:
        pfx_len = 0
    else:
        pfx_len = min(OBJ_NAME_LEN - sfx_len - 1, len(object_name))
    return kernel_map_name(object_name[:pfx_len] + section_name[:sfx_len])


def data_section_is_mmapable(section: "DataSectionSpec",
                             spec: "Optional[ObjectSpec]" = None) -> bool:
    """libbpf's ``map_is_mmapable``: the section has a BTF DATASEC holding at
    least one non-static variable.

    With ``spec``, ``__hidden`` globals (ELF visibility STV_HIDDEN or
    STV_INTERNAL) count as static, because libbpf's ``btf_fixup_datasec``
    turns them static at open time.
    """
    if not section.btf_datasec_id:
        return False
    hidden: "set[str]" = set()
    if spec is not None:
        hidden = {sym.name for sym in spec.symbols if sym.section_name == section.name
                  and sym.visibility in ("STV_HIDDEN", "STV_INTERNAL")}
    return any(var.linkage != "static" and var.name not in hidden for var in section.variables)


def data_section_map_spec(section: "DataSectionSpec", *, name: Optional[str] = None,
                          mmapable: Optional[bool] = None) -> "MapSpec":
    """The ARRAY map definition libbpf makes for a data section.

    ``mmapable`` defaults to :func:`data_section_is_mmapable`; pass False for
    a kernel without ``BPF_F_MMAPABLE`` (Linux < 5.5).
    """
    from purebpf.spec import MapSpec

    flags = int(MapFlags.RDONLY_PROG) if section.kind in _READONLY_KINDS else 0
    if mmapable is None:
        mmapable = data_section_is_mmapable(section)
    if mmapable:
        flags |= int(MapFlags.MMAPABLE)
    return MapSpec(name=name if name is not None else section.name, type=MapType.ARRAY,
                   key_size=4, value_size=section.size, max_entries=1, flags=flags,
                   key_type_id=0, value_type_id=section.btf_datasec_id or 0,
                   section=section.name)


class GlobalData:
    """Named access to the variables of one data section, before and after load.

    ``GlobalData(section, btf)`` starts in open mode over a copy of
    ``section.data``; :meth:`create_map` (called by the loader) puts it in the
    kernel.  ``view["name"]`` reads a variable, ``view["name"] = value``
    writes it, :attr:`raw` is the whole section as a memoryview.
    """

    def __init__(self, section: "DataSectionSpec", btf: "Optional[Btf]" = None, *,
                 byteorder: str = sys.byteorder) -> None:
        self.section = section
        self.btf = btf
        self.byteorder = byteorder
        self._initial = bytearray(section.data)
        if len(self._initial) < section.size:
            self._initial.extend(bytes(section.size - len(self._initial)))
        self._map: Optional[Map] = None
        self._mmap: Optional[mmap.mmap] = None
        self._closed = False

    # -- state ---------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.section.name

    @property
    def readonly(self) -> bool:
        """True for ``.rodata*`` and ``.kconfig``: frozen once loaded."""
        return self.section.kind in _READONLY_KINDS

    @property
    def loaded(self) -> bool:
        return self._map is not None

    @property
    def map(self) -> Map:
        """The live map (StateError before load or after close)."""
        self._check_open()
        if self._map is None:
            raise StateError(f"data section {self.name!r} is not loaded yet")
        return self._map

    @property
    def mmapped(self) -> bool:
        return self._mmap is not None

    def _check_open(self) -> None:
        if self._closed:
            raise StateError(f"data section {self.name!r} is closed")

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("live" if self._map is not None else "open")
        return f"<GlobalData {self.name!r} {self.section.size} bytes {state}>"

    # -- loading -------------------------------------------------------------

    def create_map(self, *, name: Optional[str] = None, btf_fd: Optional[int] = None,
                   mmapable: Optional[bool] = None) -> Map:
        """Create the section's map from the current bytes; the view goes live.

        Steps as libbpf: create (``name`` is the kernel name, see
        :func:`internal_map_name`), write key 0, freeze read-only sections,
        mmap when ``BPF_F_MMAPABLE`` is set.  Everything created is closed
        again if a step fails.  Returns the :class:`Map` (owned by this view:
        :meth:`close` closes it).
        """
        self._check_open()
        if self._map is not None:
            raise StateError(f"data section {self.name!r} is already loaded")
        spec = data_section_map_spec(self.section, name=name or self.name, mmapable=mmapable)
        live = Map.create(spec, btf_fd=btf_fd)
        live.name = self.name
        try:
            live.update(0, bytes(self._initial))
            if self.readonly:
                live.freeze()
            if spec.flags & MapFlags.MMAPABLE:
                self._mmap = self._map_memory(live)
        except BaseException:
            live.close()
            raise
        self._map = live
        return live

    def _map_memory(self, live: Map) -> mmap.mmap:
        """mmap the map: PROT_READ when frozen (the kernel refuses writable maps
        of frozen or RDONLY maps), PROT_READ|PROT_WRITE otherwise."""
        length = round_up(round_up(self.section.size, 8), mmap.PAGESIZE)
        prot = mmap.PROT_READ if self.readonly else mmap.PROT_READ | mmap.PROT_WRITE
        try:
            return mmap.mmap(live.fileno(), length, flags=mmap.MAP_SHARED, prot=prot)
        except OSError as exc:
            raise KernelError(exc.errno or 0, "mmap",
                              detail=f"data section {self.name!r} map") from exc

    @classmethod
    def from_map(cls, section: "DataSectionSpec", live: Map, btf: "Optional[Btf]" = None) -> "GlobalData":
        """A live view over an existing data-section map (e.g. reused from a pin).

        The view takes ownership of ``live``.
        """
        view = cls(section, btf)
        view._map = live
        if live.flags & MapFlags.MMAPABLE:
            try:
                view._mmap = view._map_memory(live)
            except BaseException:
                live.close()
                raise
        return view

    def close(self) -> None:
        """Unmap and close the map (idempotent)."""
        if self._mmap is not None:
            try:
                self._mmap.close()
            except BufferError:
                log.warning("data section %r: memory still exported; unmapped when released",
                            self.name)
            self._mmap = None
        if self._map is not None:
            self._map.close()
        self._closed = True

    def __enter__(self) -> "GlobalData":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- bytes -----------------------------------------------------------------

    def _read(self, offset: int, size: int) -> bytes:
        self._check_open()
        if self._map is None:
            return bytes(self._initial[offset:offset + size])
        if self._mmap is not None:
            return self._mmap[offset:offset + size]
        whole = self._map.lookup(0)
        assert isinstance(whole, bytes)
        return whole[offset:offset + size]

    def _check_writable(self) -> None:
        self._check_open()
        if self._map is not None and self.readonly:
            raise StateError(f"data section {self.name!r} is read-only after load "
                             "(set .rodata variables before load)")

    def _write(self, offset: int, data: bytes) -> None:
        self._check_writable()
        if self._map is None:
            self._initial[offset:offset + len(data)] = data
            return
        if self._mmap is not None:
            self._mmap[offset:offset + len(data)] = data
            return
        whole = self._map.lookup(0)
        assert isinstance(whole, bytes)
        self._map.update(0, whole[:offset] + data + whole[offset + len(data):])

    @property
    def raw(self) -> memoryview:
        """The whole section: writable before load and for live .data/.bss
        (the mmap itself), read-only for loaded read-only sections."""
        self._check_open()
        if self._map is None:
            return memoryview(self._initial)
        if self._mmap is not None:
            return memoryview(self._mmap)[:self.section.size]
        return memoryview(self._read(0, self.section.size))

    def read_bytes(self) -> bytes:
        """A copy of the whole section's current contents."""
        return self._read(0, self.section.size)

    # -- variables ---------------------------------------------------------------

    def names(self) -> List[str]:
        return [v.name for v in self.section.variables]

    def __contains__(self, name: object) -> bool:
        return any(v.name == name for v in self.section.variables)

    def variable(self, name: str) -> "VariableSpec":
        return self.section.variable(name)

    def get_bytes(self, name: str) -> bytes:
        var = self.variable(name)
        return self._read(var.offset, var.size)

    def set_bytes(self, name: str, data: bytes) -> None:
        self._check_writable()
        var = self.variable(name)
        if len(data) != var.size:
            raise ValueError(f"variable {name!r} is {var.size} bytes, got {len(data)}")
        self._write(var.offset, bytes(data))

    def __getitem__(self, name: str) -> Any:
        var = self.variable(name)
        return self._decode(var, self._read(var.offset, var.size))

    def __setitem__(self, name: str, value: Any) -> None:
        self._check_writable()
        var = self.variable(name)
        self._write(var.offset, self._encode(var, value))

    def __iter__(self) -> Any:
        return iter(self.names())

    def as_dict(self) -> "dict[str, Any]":
        return {name: self[name] for name in self.names()}

    # -- BTF conversion -------------------------------------------------------

    def _shape(self, var: "VariableSpec") -> "tuple[str, int, bool]":
        """(``int``/``bool``/``float``/``chars``/``ints``/``bytes``, size, signed) for a variable.

        ``ints`` is an array of integers or enums, read as a list of ints
        (the size is the element's); ``chars`` an array of 1-byte integers,
        read as bytes.
        """
        btf = self.btf
        if btf is None or not var.type_id:
            return "bytes", var.size, False
        from purebpf.btf.types import Array, Enum, Enum64, Float, Int, Ptr

        t = btf[btf.skip_modifiers(var.type_id)]
        if isinstance(t, Int):
            if t.is_bool:
                return "bool", t.size, False
            if t.bits != t.size * 8 or t.offset:
                return "bytes", var.size, False
            return "int", t.size, t.is_signed
        if isinstance(t, (Enum, Enum64)):
            return "int", t.size, t.signed
        if isinstance(t, Ptr):
            return "int", var.size, False
        if isinstance(t, Float) and t.size in (4, 8):
            return "float", t.size, False
        if isinstance(t, Array):
            elem = btf[btf.skip_modifiers(t.type)]
            if isinstance(elem, Int) and elem.size == 1 and not elem.is_bool:
                return "chars", var.size, False
            if (isinstance(elem, (Int, Enum, Enum64)) and elem.size in (1, 2, 4, 8)
                    and t.nelems * elem.size == var.size
                    and (not isinstance(elem, Int) or (elem.bits == elem.size * 8 and not elem.offset))):
                signed = elem.is_signed if isinstance(elem, Int) else elem.signed
                return "ints", elem.size, signed
        return "bytes", var.size, False

    def _decode(self, var: "VariableSpec", data: bytes) -> Any:
        kind, size, signed = self._shape(var)
        if kind in ("int", "bool") and len(data) == size:
            value = int.from_bytes(data, self.byteorder, signed=signed)  # type: ignore[arg-type]
            return bool(value) if kind == "bool" else value
        if kind == "float" and len(data) == size:
            fmt = ("<" if self.byteorder == "little" else ">") + ("f" if size == 4 else "d")
            return struct.unpack(fmt, data)[0]
        if kind == "ints":
            return list(struct.unpack(self._array_format(size, signed, len(data) // size), data))
        return data

    def _array_format(self, size: int, signed: bool, count: int) -> str:
        code = {1: "b", 2: "h", 4: "i", 8: "q"}[size]
        return ("<" if self.byteorder == "little" else ">") + str(count) + (
            code if signed else code.upper())

    def _encode(self, var: "VariableSpec", value: Any) -> bytes:
        kind, size, signed = self._shape(var)
        name = var.name
        if kind in ("int", "bool") and size == var.size:
            if isinstance(value, (bytes, bytearray, memoryview)):
                return self._exact(name, bytes(value), var.size)
            if not isinstance(value, int):
                raise TypeError(f"variable {name!r} is an integer; got {type(value).__name__}")
            lo = -(1 << (size * 8 - 1)) if signed else 0
            hi = (1 << (size * 8 - 1)) - 1 if signed else (1 << (size * 8)) - 1
            if not lo <= int(value) <= hi:
                raise ValueError(f"variable {name!r}: {value} is out of range "
                                 f"[{lo}, {hi}] for a {size}-byte "
                                 f"{'signed' if signed else 'unsigned'} integer")
            return int(value).to_bytes(size, self.byteorder, signed=signed)  # type: ignore[arg-type]
        if kind == "float" and size == var.size and isinstance(value, (int, float)):
            fmt = ("<" if self.byteorder == "little" else ">") + ("f" if size == 4 else "d")
            return struct.pack(fmt, float(value))
        if kind == "ints" and isinstance(value, (list, tuple)):
            count = var.size // size
            if len(value) != count:
                raise ValueError(f"variable {name!r} holds {count} integers, got {len(value)}")
            try:
                return struct.pack(self._array_format(size, signed, count), *value)
            except struct.error as exc:
                raise ValueError(f"variable {name!r}: {exc} (elements are {size}-byte "
                                 f"{'signed' if signed else 'unsigned'} integers)") from None
        if kind == "chars":
            data = value.encode() if isinstance(value, str) else bytes(value)
            if len(data) > var.size:
                raise ValueError(f"variable {name!r} holds {var.size} bytes, got {len(data)}")
            return data + bytes(var.size - len(data))
        if isinstance(value, str):
            raise TypeError(f"variable {name!r} takes bytes, not str")
        return self._exact(name, bytes(value), var.size)

    @staticmethod
    def _exact(name: str, data: bytes, size: int) -> bytes:
        if len(data) != size:
            raise ValueError(f"variable {name!r} is {size} bytes, got {len(data)}")
        return data


def open_views(sections: "List[DataSectionSpec]", btf: "Optional[Btf]" = None, *,
               byteorder: str = sys.byteorder) -> "dict[str, GlobalData]":
    """Open-mode views for every section that gets a map (not ``.ksyms``/arena)."""
    return {s.name: GlobalData(s, btf, byteorder=byteorder) for s in sections
            if s.kind not in ("ksyms", "arena") and s.size > 0}

