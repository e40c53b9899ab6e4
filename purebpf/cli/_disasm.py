"""``purebpf disasm OBJ``: annotated disassembly in the kernel verifier's syntax.

Each instruction carries what the object says about it: the map or global
variable an ``ld_imm64`` refers to, the subprogram a call jumps to, the extern
it needs, the CO-RE relocation that will rewrite it, and -- above the first
instruction of each C statement -- the source line from ``.BTF.ext`` line_info.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Dict, List, Optional, Sequence, TextIO

from purebpf.cli._format import enum_name


def run(args: argparse.Namespace) -> int:
    from purebpf.spec import ObjectSpec

    spec = ObjectSpec.from_file(args.object)
    programs = select_programs(spec, args.prog)
    relocated: Optional[Dict[str, Any]] = None
    if args.relocated or args.target_btf:
        from purebpf.core_reloc import load_target_btf, relocate_object

        target = load_target_btf(args.target_btf)
        result = relocate_object(spec, target, programs=[p.name for p in programs])
        relocated = dict(result.programs)
    for n, prog in enumerate(programs):
        if n:
            sys.stdout.write("\n")
        print_program(spec, prog, sys.stdout, relocated=relocated.get(prog.name) if relocated else None,
                      source=not args.no_source)
    return 0


def select_programs(spec: Any, names: Optional[Sequence[str]]) -> List[Any]:
    """Entry programs and subprograms, or just the named ones (in the order given)."""
    if not names:
        return list(spec.programs) + list(spec.subprograms)
    chosen = []
    for name in names:
        chosen.append(spec.program(name))
    return chosen


def _relocation_note(r: Any) -> str:
    kind = enum_name(r.kind)
    if kind == "map":
        return f"map {r.target}"
    if kind == "global_data":
        where = r.variable if r.variable else f"+{r.offset}"
        return f"global {r.target}: {where}"
    if kind == "subprog_call":
        return f"call subprogram {r.target}"
    if kind == "func_pointer":
        return f"address of {r.target}"
    if kind == "extern_kconfig":
        return f"kconfig extern {r.target}"
    if kind == "extern_ksym_var":
        return f"ksym {r.target}"
    if kind == "extern_kfunc":
        return f"kfunc {r.target}"
    return f"{kind} {r.target}"


def _core_note(spec: Any, relo: Any) -> str:
    kind = enum_name(relo.kind)
    btf = spec.btf
    tname = btf.type_name(relo.type_id) if btf is not None else f"type {relo.type_id}"
    try:
        from purebpf.core_reloc._spec import describe_access, parse_local_spec

        expr = describe_access(parse_local_spec(btf, relo.type_id, relo.access_str, int(relo.kind)))
    except Exception:  # noqa: BLE001 - annotation only; `purebpf reloc` reports bad records
        expr = f"{tname} [{relo.access_str}]"
    return f"CO-RE {kind}: {expr}"


def print_program(spec: Any, prog: Any, out: TextIO, *, relocated: Optional[Any] = None,
                  source: bool = True) -> None:
    from purebpf.insn import format_instruction

    kind = "subprogram" if prog.is_subprogram else enum_name(prog.prog_type)
    out.write(f"{prog.name}:  section {prog.section}, {kind}, {len(prog.instructions)} instructions\n")
    notes: Dict[int, List[str]] = {}
    for r in prog.relocations:
        notes.setdefault(r.insn_index, []).append(_relocation_note(r))
    core_by_slot: Dict[int, List[Any]] = {}
    for relo in prog.core_relos:
        core_by_slot.setdefault(relo.insn_index, []).append(relo)
    lines_by_slot: Dict[int, Any] = {}
    for li in prog.line_info:
        lines_by_slot.setdefault(li.insn_index, li)
    explained: Dict[int, Any] = {}
    instructions = prog.instructions
    if relocated is not None:
        instructions = relocated.instructions
        for e in relocated.explanations:
            explained[e.slot] = e

    slot = 0
    last_line = None
    for index, insn in enumerate(instructions):
        li = lines_by_slot.get(slot)
        if source and li is not None and li.line_text and (li.line_text, li.line) != last_line:
            out.write(f"; {li.line_text.strip()}  [{li.file_name.rsplit('/', 1)[-1]}:{li.line}]\n")
            last_line = (li.line_text, li.line)
        text = format_instruction(insn, index=slot)
        extra = list(notes.get(index, []))
        for relo in core_by_slot.get(slot, []):
            extra.append(_core_note(spec, relo))
        e = explained.get(slot)
        if e is not None:
            if e.outcome == "poisoned":
                extra.append("CO-RE poisoned: nothing matches in the target")
            elif e.outcome == "error":
                extra.append(f"CO-RE error: {e.error}")
            else:
                extra.append(f"CO-RE {e.kind_name}: {e.orig_value} -> {e.new_value}")
        if extra:
            text = text.ljust(48) + " ; " + "; ".join(extra)
        out.write(text + "\n")
        slot += insn.slots
