"""Map definitions: BTF-defined maps in ``.maps`` and legacy ``maps`` sections.

A BTF-defined map is a global variable in section ``.maps`` whose type is an
anonymous struct built by the ``__uint``/``__type``/``__array`` macros of
``bpf_helpers.h``::

    #define __uint(name, val)  int (*name)[val]
    #define __type(name, val)  typeof(val) *name
    #define __array(name, val) typeof(val) *name[]

so integer attributes are encoded in the element count of a pointed-to
array, and key/value types are the pointee of a pointer.  The rules below are
libbpf's ``parse_btf_map_def`` (strict mode: unknown members are errors).

The ``values`` member (a zero-length array of pointers, last in the struct)
describes the inner map of a map-in-map or the program type of a prog array;
its initial contents are given by ``.rel.maps`` relocations against the
variable's storage, one 8-byte pointer slot per entry.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from purebpf.elf.container import ElfContainer
from purebpf.spec import MapSpec, SectionInfo, SymbolInfo

if TYPE_CHECKING:
    from purebpf.btf import Btf

__all__ = ["read_btf_maps", "read_legacy_maps", "attach_initial_values", "MapLocation"]

MAPS_SECTION = ".maps"
LEGACY_MAPS_SECTION = "maps"
_PTR_SIZE = 8

_INT_ATTRS = ("type", "max_entries", "map_flags", "numa_node", "key_size", "value_size",
              "pinning", "map_extra")


@dataclass(frozen=True)
class MapLocation:
    """Where a map's definition lives: for relocation lookups by offset."""

    section_index: int
    offset: int
    size: int
    #: byte offset of the ``values`` array within the definition (-1 if none).
    values_offset: int = -1


def _fail(elf: ElfContainer, map_name: str, reason: str, offset: Optional[int] = None) -> None:
    elf.fail(f"map {map_name!r}: {reason}", section=MAPS_SECTION, offset=offset)


def _parse_def(elf: ElfContainer, btf: "Btf", map_name: str, struct_id: int, *,
               is_inner: bool, var_offset: Optional[int]) -> Tuple[MapSpec, int]:
    """Parse one definition struct; returns the spec and the ``values`` bit offset (-1)."""
    from purebpf.btf import BtfKind
    from purebpf.uapi import MapType, PinType

    def fail(reason: str) -> None:
        _fail(elf, map_name, reason, var_offset)

    struct_t = btf[struct_id]
    if struct_t.kind != BtfKind.STRUCT:
        fail(f"definition must be a struct, not {struct_t.kind.name}")
    members = getattr(struct_t, "members", ())
    ints: Dict[str, int] = {}
    key_type_id = value_type_id = 0
    key_size_from_type = value_size_from_type = None
    inner: Optional[MapSpec] = None
    values_bit_offset = -1
    for pos, member in enumerate(members):
        name = member.name
        if not name:
            fail("unnamed member in map definition")
        if name in _INT_ATTRS:
            ptr = btf[btf.skip_modifiers(member.type)]
            if ptr.kind != BtfKind.PTR:
                fail(f"attribute {name!r}: expected PTR, got {ptr.kind.name}")
            arr = btf[getattr(ptr, "type")]
            if arr.kind != BtfKind.ARRAY:
                fail(f"attribute {name!r}: expected a pointer to an ARRAY, got {arr.kind.name}")
            ints[name] = int(getattr(arr, "nelems"))
        elif name in ("key", "value"):
            ptr = btf[member.type]
            if ptr.kind != BtfKind.PTR:
                fail(f"{name} type must be a pointer, got {ptr.kind.name}")
            pointee = int(getattr(ptr, "type"))
            size = btf.size_of(pointee)
            if name == "key":
                key_type_id, key_size_from_type = pointee, size
            else:
                value_type_id, value_size_from_type = pointee, size
        elif name == "values":
            values_bit_offset = member.bit_offset
            inner = _parse_values(elf, btf, map_name, member.type, ints, is_inner=is_inner,
                                  is_last=pos == len(members) - 1, var_offset=var_offset)
        else:
            fail(f"unknown attribute {name!r} (libbpf's strict map definition rules)")

    def size_attr(attr: str, from_type: Optional[int]) -> int:
        declared = ints.get(attr)
        if from_type is not None:
            if declared is not None and declared != from_type:
                fail(f"conflicting {attr}: {declared} declared, {from_type} from its type")
            return from_type
        return declared or 0

    key_size = size_attr("key_size", key_size_from_type)
    value_size = size_attr("value_size", value_size_from_type)
    raw_type = ints.get("type", 0)
    map_type = MapType(raw_type) if raw_type in MapType._value2member_map_ else raw_type
    if values_bit_offset >= 0:
        if value_size not in (0, 4):
            fail(f"value_size must be 4 for map-in-map or prog array, got {value_size}")
        value_size = 4
    raw_pin = ints.get("pinning", 0)
    if raw_pin not in (PinType.NONE, PinType.BY_NAME):
        fail(f"invalid pinning value {raw_pin}")
    spec = MapSpec(
        name=map_name, type=map_type, key_size=key_size, value_size=value_size,
        max_entries=ints.get("max_entries", 0), flags=ints.get("map_flags", 0),
        numa_node=ints.get("numa_node", 0), pinning=PinType(raw_pin),
        map_extra=ints.get("map_extra", 0), key_type_id=key_type_id, value_type_id=value_type_id,
        inner_map=inner, section=MAPS_SECTION,
    )
    return spec, values_bit_offset


_MAP_IN_MAP = ("ARRAY_OF_MAPS", "HASH_OF_MAPS")


def _parse_values(elf: ElfContainer, btf: "Btf", map_name: str, type_id: int,
                  ints: Dict[str, int], *, is_inner: bool, is_last: bool,
                  var_offset: Optional[int]) -> Optional[MapSpec]:
    from purebpf.btf import BtfKind
    from purebpf.uapi import MapType

    def fail(reason: str) -> None:
        _fail(elf, map_name, reason, var_offset)

    raw_type = ints.get("type", 0)
    is_map_in_map = raw_type in (MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS)
    is_prog_array = raw_type == MapType.PROG_ARRAY
    if is_inner:
        fail("multi-level inner maps are not supported")
    if not is_last:
        fail("'values' must be the last member")
    if not (is_map_in_map or is_prog_array):
        fail("'values' is only valid for map-in-map and prog array maps "
             "(declare 'type' before 'values')")
    arr = btf[type_id]
    if arr.kind != BtfKind.ARRAY or getattr(arr, "nelems") != 0:
        fail("'values' must be a zero-sized array of pointers")
    ptr = btf[btf.skip_modifiers(getattr(arr, "type"))]
    if ptr.kind != BtfKind.PTR:
        fail(f"'values' elements must be pointers, got {ptr.kind.name}")
    target_id = btf.skip_modifiers(getattr(ptr, "type"))
    target = btf[target_id]
    if is_prog_array:
        if target.kind != BtfKind.FUNC_PROTO:
            fail(f"prog array 'values' must point to a function prototype, got {target.kind.name}")
        return None
    if target.kind != BtfKind.STRUCT:
        fail(f"map-in-map 'values' must point to an inner map definition struct, "
             f"got {target.kind.name}")
    inner, _ = _parse_def(elf, btf, f"{map_name}.inner", target_id, is_inner=True,
                          var_offset=var_offset)
    return inner


def read_btf_maps(elf: ElfContainer, btf: "Optional[Btf]",
                  symbols_by_name: Dict[Tuple[int, str], SymbolInfo]
                  ) -> List[Tuple[MapSpec, MapLocation]]:
    """Parse the maps of the ``.maps`` section from its BTF DATASEC."""
    from purebpf.btf import BtfKind
    from purebpf.btf.types import VarLinkage

    info = elf.section_by_name(MAPS_SECTION)
    if info is None:
        return []
    if btf is None:
        elf.fail("section .maps needs BTF (.BTF section missing)", section=MAPS_SECTION)
    ids = btf.find_by_name(MAPS_SECTION, BtfKind.DATASEC)
    if not ids:
        elf.fail("no BTF DATASEC describes section .maps", section=MAPS_SECTION)
    datasec = btf[ids[0]]
    result: List[Tuple[MapSpec, MapLocation]] = []
    for secinfo in getattr(datasec, "vars"):
        var = btf[secinfo.type]
        if var.kind != BtfKind.VAR:
            elf.fail(f".maps DATASEC entry {secinfo.type} is {var.kind.name}, not VAR",
                     section=MAPS_SECTION)
        name = var.name
        linkage = getattr(var, "linkage")
        if linkage not in (VarLinkage.GLOBAL_ALLOCATED, VarLinkage.STATIC):
            elf.fail(f"map {name!r}: unsupported linkage {linkage}", section=MAPS_SECTION)
        # Offsets: trust the ELF symbol (libbpf's btf_fixup_datasec), else BTF.
        sym = symbols_by_name.get((info.index, name))
        offset = sym.value if sym is not None else secinfo.offset
        size = secinfo.size
        struct_id = btf.skip_modifiers(getattr(var, "type"))
        spec, values_bits = _parse_def(elf, btf, name, struct_id, is_inner=False,
                                       var_offset=offset)
        def_size = btf.size_of(struct_id)
        if def_size > size:
            elf.fail(f"map {name!r}: definition size {def_size} exceeds variable size {size}",
                     section=MAPS_SECTION, offset=offset)
        if offset + size > info.size:
            elf.fail(f"map {name!r} [{offset:#x}, {offset + size:#x}) extends past the section",
                     section=MAPS_SECTION, offset=offset)
        spec = replace(spec, btf_var_id=secinfo.type, section_offset=offset)
        loc = MapLocation(section_index=info.index, offset=offset, size=size,
                          values_offset=values_bits // 8 if values_bits >= 0 else -1)
        result.append((spec, loc))
    return result


def attach_initial_values(elf: ElfContainer, maps: List[Tuple[MapSpec, MapLocation]],
                          program_names: Dict[Tuple[int, int], str]) -> List[MapSpec]:
    """Fill ``initial_values`` from the ``.rel.maps`` entries (libbpf ``bpf_object__collect_map_relos``).

    ``program_names`` maps ``(section index, offset)`` of every function to its name.
    """
    info = elf.section_by_name(MAPS_SECTION)
    slots: Dict[str, Dict[int, str]] = {spec.name: {} for spec, _ in maps}
    map_at = {(loc.section_index, loc.offset): spec.name for spec, loc in maps}
    if info is not None:
        for rel_info, target in elf.relocation_sections():
            if target.index != info.index:
                continue
            for rel in elf.relocations(rel_info):
                owner = None
                for spec, loc in maps:
                    if loc.offset <= rel.offset < loc.offset + loc.size:
                        owner = (spec, loc)
                        break
                if owner is None:
                    elf.fail(f"relocation at {rel.offset:#x} is not inside any map definition",
                             section=rel_info.name, offset=rel.offset)
                spec, loc = owner
                if loc.values_offset < 0:
                    elf.fail(f"map {spec.name!r}: relocation at {rel.offset:#x} but the map has "
                             f"no 'values' member", section=rel_info.name, offset=rel.offset)
                moff = rel.offset - loc.offset - loc.values_offset
                if moff < 0 or moff % _PTR_SIZE:
                    elf.fail(f"map {spec.name!r}: relocation at {rel.offset:#x} is not on a "
                             f"'values' pointer slot", section=rel_info.name, offset=rel.offset)
                slot = moff // _PTR_SIZE
                sym = elf.symbol(rel.sym_index, section=rel_info.name)
                from purebpf.uapi import MapType

                if spec.type == MapType.PROG_ARRAY:
                    if sym.type != "STT_FUNC":
                        elf.fail(f"prog array {spec.name!r}: slot {slot} refers to {sym.name!r}, "
                                 f"which is not a function", section=rel_info.name, offset=rel.offset)
                    target_name = program_names.get((sym.section_index, sym.value))
                    if target_name is None:
                        elf.fail(f"prog array {spec.name!r}: no program {sym.name!r}", section=rel_info.name, offset=rel.offset)
                else:
                    target_name = map_at.get((sym.section_index, sym.value))
                    if target_name is None:
                        elf.fail(f"map {spec.name!r}: slot {slot} refers to {sym.name!r}, which "
                                 f"is not a map in .maps", section=rel_info.name, offset=rel.offset)
                if spec.max_entries and slot >= spec.max_entries:
                    elf.fail(f"map {spec.name!r}: initial value slot {slot} is beyond "
                             f"max_entries {spec.max_entries}", section=rel_info.name, offset=rel.offset)
                slots[spec.name][slot] = target_name
    out = []
    for spec, _ in maps:
        values = tuple(sorted(slots[spec.name].items()))
        out.append(replace(spec, initial_values=values) if values else spec)
    return out


# struct bpf_map_def { u32 type, key_size, value_size, max_entries, map_flags; }
_LEGACY_FIELDS = 5


def read_legacy_maps(elf: ElfContainer) -> List[Tuple[MapSpec, MapLocation]]:
    """Maps of the legacy ``SEC("maps")`` (``struct bpf_map_def``) convention.

    Each named symbol in the section is one map; the definition size is the
    section size divided by the number of maps (older libbpf's rule).
    """
    from purebpf.uapi import MapType, PinType

    info: Optional[SectionInfo] = elf.section_by_name(LEGACY_MAPS_SECTION)
    if info is None or info.size == 0:
        return []
    syms = sorted((s for s in elf.symbols
                   if s.section_index == info.index and s.name and s.type != "STT_SECTION"),
                  key=lambda s: s.value)
    if not syms:
        elf.fail("legacy maps section has no map symbols", section=info.name)
    def_size = info.size // len(syms)
    if def_size < 4 * _LEGACY_FIELDS or info.size % len(syms):
        elf.fail(f"cannot split {info.size} bytes into {len(syms)} map definitions",
                 section=info.name)
    data = elf.section_data(info)
    fmt = ("<" if elf.byteorder == "little" else ">") + "I" * _LEGACY_FIELDS
    result = []
    for sym in syms:
        if sym.value % 4 or sym.value + def_size > info.size:
            elf.fail(f"map {sym.name!r} at {sym.value:#x} is misplaced", section=info.name,
                     offset=sym.value)
        mtype, key_size, value_size, max_entries, flags = struct.unpack_from(fmt, data, sym.value)
        result.append((
            MapSpec(name=sym.name,
                    type=MapType(mtype) if mtype in MapType._value2member_map_ else mtype,
                    key_size=key_size, value_size=value_size, max_entries=max_entries,
                    flags=flags, pinning=PinType.NONE, section=LEGACY_MAPS_SECTION,
                    section_offset=sym.value),
            MapLocation(section_index=info.index, offset=sym.value, size=def_size),
        ))
    return result


def is_struct_ops_section(name: str) -> bool:
    """``.struct_ops`` and ``.struct_ops.link`` (libbpf's STRUCT_OPS_SEC / STRUCT_OPS_LINK_SEC)."""
    return name == ".struct_ops" or name.startswith(".struct_ops.")


def read_struct_ops_maps(elf: ElfContainer, btf: "Optional[Btf]",
                         symbols_by_name: Dict[Tuple[int, str], SymbolInfo],
                         program_names: Dict[Tuple[int, int], str]
                         ) -> List[Tuple[MapSpec, MapLocation]]:
    """One STRUCT_OPS map per variable of a ``.struct_ops`` section.

    Like libbpf's ``init_struct_ops_maps``: key_size 4, value_size the size of
    the variable's struct type, max_entries 1, ``BPF_F_LINK`` for
    ``.struct_ops.link``; ``value_type_id`` is the object's struct type.  The
    function-pointer members relocated to programs become ``initial_values``
    as ``(pointer slot within the struct, program name)``; the slot is the
    member's byte offset divided by 8.
    """
    from purebpf.btf import BtfKind
    from purebpf.uapi import MapFlags, MapType, PinType

    result: List[Tuple[MapSpec, MapLocation]] = []
    for info in elf.sections:
        if not is_struct_ops_section(info.name) or info.type != "SHT_PROGBITS":
            continue
        if btf is None:
            elf.fail("struct_ops needs BTF (.BTF section missing)", section=info.name)
        ids = btf.find_by_name(info.name, BtfKind.DATASEC)
        if not ids:
            elf.fail(f"no BTF DATASEC describes section {info.name}", section=info.name)
        flags = int(MapFlags.LINK) if info.name == ".struct_ops.link" else 0
        located: List[Tuple[str, int, int, int, int]] = []
        for secinfo in getattr(btf[ids[0]], "vars"):
            var = btf[secinfo.type]
            if var.kind != BtfKind.VAR:
                elf.fail(f"DATASEC entry {secinfo.type} is {var.kind.name}, not VAR",
                         section=info.name)
            type_id = btf.skip_modifiers(int(getattr(var, "type")))
            if btf[type_id].kind != BtfKind.STRUCT:
                elf.fail(f"struct_ops variable {var.name!r} is not a struct", section=info.name)
            sym = symbols_by_name.get((info.index, var.name))
            offset = sym.value if sym is not None else secinfo.offset
            size = btf.size_of(type_id)
            if offset + size > info.size:
                elf.fail(f"struct_ops variable {var.name!r} extends past the section",
                         section=info.name, offset=offset)
            located.append((var.name, secinfo.type, type_id, offset, size))
        slots: Dict[str, Dict[int, str]] = {name: {} for name, *_ in located}
        for rel_info, target in elf.relocation_sections():
            if target.index != info.index:
                continue
            for rel in elf.relocations(rel_info):
                owner = [v for v in located if v[3] <= rel.offset < v[3] + v[4]]
                if not owner:
                    elf.fail(f"relocation at {rel.offset:#x} is outside every struct_ops "
                             f"variable", section=rel_info.name, offset=rel.offset)
                name, _, _, offset, _ = owner[0]
                sym = elf.symbol(rel.sym_index, section=rel_info.name)
                prog = program_names.get((sym.section_index, sym.value))
                if sym.type != "STT_FUNC" or prog is None or (rel.offset - offset) % _PTR_SIZE:
                    elf.fail(f"struct_ops {name!r}: relocation at {rel.offset:#x} does not set "
                             f"a function pointer to a program", section=rel_info.name,
                             offset=rel.offset)
                slots[name][(rel.offset - offset) // _PTR_SIZE] = prog
        for name, var_id, type_id, offset, size in located:
            result.append((
                MapSpec(name=name, type=MapType.STRUCT_OPS, key_size=4, value_size=size,
                        max_entries=1, flags=flags, pinning=PinType.NONE,
                        value_type_id=type_id, btf_var_id=var_id,
                        initial_values=tuple(sorted(slots[name].items())), section=info.name,
                        section_offset=offset),
                MapLocation(section_index=info.index, offset=offset, size=size),
            ))
    return result
