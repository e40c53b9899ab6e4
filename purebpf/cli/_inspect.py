"""``purebpf inspect OBJ``: everything the object spec knows, as text or JSON."""

from __future__ import annotations

import argparse
import collections
import sys
from typing import Any, Dict, List, TextIO

from purebpf.cli._format import dump_json, enum_name, flags_text, jsonable, plural, table


def run(args: argparse.Namespace) -> int:
    from purebpf.spec import ObjectSpec

    spec = ObjectSpec.from_file(args.object)
    if args.json:
        dump_json(inspect_dict(spec, sections=True), sys.stdout)
    else:
        print_inspect(spec, sys.stdout, sections=args.sections)
    return 0


def _btf_summary(spec: Any) -> Dict[str, Any]:
    btf = spec.btf
    ext = spec.btf_ext
    out: Dict[str, Any] = {"present": btf is not None}
    if btf is not None:
        out["types"] = len(btf) - 1
        out["string_bytes"] = btf.header.str_len
        out["byteorder"] = btf.byteorder
    if ext is not None:
        out["func_info"] = sum(len(v) for v in ext.func_info.values())
        out["line_info"] = sum(len(v) for v in ext.line_info.values())
        out["core_relos"] = sum(len(v) for v in ext.core_relos.values())
        kinds: Dict[str, int] = collections.Counter()
        for records in ext.core_relos.values():
            for r in records:
                kinds[enum_name(r.kind)] += 1
        out["core_relo_kinds"] = dict(sorted(kinds.items()))
    return out


def _relocation_counts(prog: Any) -> Dict[str, int]:
    counts: Dict[str, int] = collections.Counter(enum_name(r.kind) for r in prog.relocations)
    return dict(sorted(counts.items()))


def inspect_dict(spec: Any, *, sections: bool = True) -> Dict[str, Any]:
    """The JSON document of ``purebpf inspect --json``."""
    def program(p: Any) -> Dict[str, Any]:
        return {
            "name": p.name,
            "section": p.section,
            "section_offset": p.section_offset,
            "type": enum_name(p.prog_type),
            "expected_attach_type": enum_name(p.expected_attach_type) if p.expected_attach_type is not None else None,
            "attach_target": p.attach_target,
            "sleepable": p.sleepable,
            "linkage": p.linkage,
            "instructions": len(p.instructions),
            "slots": sum(i.slots for i in p.instructions),
            "relocations": [jsonable(r) for r in p.relocations],
            "relocation_counts": _relocation_counts(p),
            "func_info": len(p.func_info),
            "line_info": len(p.line_info),
            "core_relos": len(p.core_relos),
            "calls": list(p.calls),
        }

    doc: Dict[str, Any] = {
        "file": spec.name,
        "byteorder": spec.byteorder,
        "license": spec.license,
        "kernel_version": spec.kernel_version,
        "btf": _btf_summary(spec),
        "programs": [program(p) for p in spec.programs],
        "subprograms": [program(p) for p in spec.subprograms],
        "maps": [jsonable(m) for m in spec.maps],
        "data_sections": [
            {**{k: v for k, v in jsonable(d).items() if k != "data"}, "data": d.data.hex() if len(d.data) <= 4096 else None}
            for d in spec.data_sections
        ],
        "externs": [jsonable(e) for e in spec.externs],
    }
    if sections:
        doc["sections"] = [jsonable(s) for s in spec.sections]
        doc["symbols"] = [jsonable(s) for s in spec.symbols]
    return doc


def _map_row(m: Any, name_prefix: str = "") -> List[object]:
    from purebpf.uapi import MapFlags

    return [
        name_prefix + m.name, enum_name(m.type), m.key_size, m.value_size, m.max_entries,
        flags_text(m.flags, MapFlags), enum_name(m.pinning) if m.pinning else "-",
        m.map_extra or "-",
        ", ".join(f"[{i}]={n}" for i, n in m.initial_values) or "-",
    ]


def print_inspect(spec: Any, out: TextIO, *, sections: bool = False) -> None:
    """The text form of ``purebpf inspect``: one block per kind of thing."""
    endian = "little-endian" if spec.byteorder == "little" else "big-endian"
    out.write(f"{spec.name}: BPF object, {endian}\n")
    out.write(f"  license: {spec.license or '-'}")
    if spec.kernel_version is not None:
        v = spec.kernel_version
        out.write(f"   kernel version: {v >> 16}.{(v >> 8) & 0xff}.{v & 0xff} ({v:#x})")
    out.write("\n")
    btf = _btf_summary(spec)
    if btf["present"]:
        line = f"  BTF: {plural(btf['types'], 'type')}, {btf['string_bytes']} bytes of strings"
        if "func_info" in btf:
            line += (f"; BTF.ext: {btf['func_info']} func_info, {btf['line_info']} line_info, "
                     f"{plural(btf['core_relos'], 'CO-RE relocation')}")
        out.write(line + "\n")
        if btf.get("core_relo_kinds"):
            out.write("  CO-RE kinds: " + ", ".join(f"{k} x{n}" for k, n in btf["core_relo_kinds"].items()) + "\n")
    else:
        out.write("  BTF: none (CO-RE and BTF-defined maps unavailable)\n")

    out.write(f"\nPrograms ({len(spec.programs)}):\n")
    if spec.programs:
        table([[p.name, p.section, enum_name(p.prog_type),
                enum_name(p.expected_attach_type) if p.expected_attach_type is not None else "-",
                p.attach_target or "-", "yes" if p.sleepable else "-",
                len(p.instructions), len(p.relocations), len(p.core_relos), ", ".join(p.calls) or "-"]
               for p in spec.programs],
              ["NAME", "SECTION", "TYPE", "ATTACH TYPE", "TARGET", "SLEEPABLE", "INSNS", "RELOCS", "CO-RE", "CALLS"],
              out)
    if spec.subprograms:
        out.write(f"\nSubprograms ({len(spec.subprograms)}):\n")
        table([[p.name, p.section, p.linkage, len(p.instructions), len(p.relocations), len(p.core_relos),
                ", ".join(p.calls) or "-"] for p in spec.subprograms],
              ["NAME", "SECTION", "LINKAGE", "INSNS", "RELOCS", "CO-RE", "CALLS"], out)

    out.write(f"\nMaps ({len(spec.maps)}):\n")
    if spec.maps:
        rows = []
        for m in spec.maps:
            rows.append(_map_row(m))
            if m.inner_map is not None:
                rows.append(_map_row(m.inner_map, name_prefix="  inner: "))
        table(rows, ["NAME", "TYPE", "KEY", "VALUE", "MAX_ENTRIES", "FLAGS", "PINNING", "EXTRA", "INITIAL VALUES"], out)

    out.write(f"\nGlobal data ({len(spec.data_sections)}):\n")
    for d in spec.data_sections:
        ro = "read-only" if d.readonly else "writable"
        out.write(f"  {d.name}  {d.kind}, {d.size} bytes, {ro}, {plural(len(d.variables), 'variable')}\n")
        if d.variables:
            rows = []
            for v in d.variables:
                tname = spec.btf.type_name(v.type_id) if spec.btf is not None and v.type_id else "-"
                rows.append([v.name, v.offset, v.size, tname, v.linkage])
            table(rows, ["VARIABLE", "OFFSET", "SIZE", "TYPE", "LINKAGE"], out, indent="      ")

    out.write(f"\nExterns ({len(spec.externs)}):\n")
    if spec.externs:
        rows = []
        for e in spec.externs:
            tname = "-"
            if spec.btf is not None and e.type_id:
                t = spec.btf[e.type_id]
                tname = spec.btf.type_name(getattr(t, "type", e.type_id)) if not e.typeless else "void (typeless)"
            rows.append([e.name, e.kind, e.section, tname, "yes" if e.weak else "-"])
        table(rows, ["NAME", "KIND", "SECTION", "TYPE", "WEAK"], out)

    relocs = [(p, r) for p in list(spec.programs) + list(spec.subprograms) for r in p.relocations]
    out.write(f"\nRelocations ({len(relocs)}):\n")
    if relocs:
        table([[p.name, r.insn_index, r.slot, enum_name(r.kind), r.symbol or "-", r.target,
                r.variable or (f"+{r.offset}" if r.offset else "-")] for p, r in relocs],
              ["PROGRAM", "INSN", "SLOT", "KIND", "SYMBOL", "TARGET", "WHERE"], out)

    if sections:
        out.write(f"\nSections ({len(spec.sections)}):\n")
        table([[s.index, s.name, s.type, s.flags, s.size, s.offset] for s in spec.sections],
              ["IDX", "NAME", "TYPE", "FLAGS", "SIZE", "OFFSET"], out)
        out.write(f"\nSymbols ({len(spec.symbols)}):\n")
        table([[s.index, s.name, s.type, s.bind, s.value, s.size, s.section_name] for s in spec.symbols],
              ["IDX", "NAME", "TYPE", "BIND", "VALUE", "SIZE", "SECTION"], out)
