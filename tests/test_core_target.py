"""Target BTF selection, module (split) BTF candidates, and the explanation API.

Split BTF for the module tests is written by libbpf's own BTF writer
(btf__new_empty_split / btf__add_struct ... through ctypes), so the layouts
checked are the ones libbpf encoded.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import shutil
import subprocess
from pathlib import Path
from typing import Tuple

import pytest

from purebpf.btf import Btf, CoreRelo, CoreReloKind
from purebpf.core_reloc import (
    CoreExplanation,
    TargetBtf,
    apply_fixup,
    compute_fixup,
    format_explanation,
    load_target_btf,
    relocate_object,
)
from purebpf.core_reloc.target import flavor_index
from purebpf.insn import Instruction, format_instruction
from purebpf.spec import ObjectSpec

ROOT = Path(__file__).resolve().parent.parent
OBJ = ROOT / "fixtures" / "core" / "obj"


def _raw_btf(tmp_path: Path) -> Path:
    objcopy = shutil.which("llvm-objcopy-19") or shutil.which("llvm-objcopy")
    if objcopy is None:
        pytest.skip("llvm-objcopy not installed")
    out = tmp_path / "target_v1.btf"
    subprocess.run([objcopy, "--dump-section", f".BTF={out}", str(OBJ / "target_v1.o"),
                    str(tmp_path / "scratch.o")], check=True)
    return out


def test_raw_btf_file_and_elf_give_the_same_relocation(tmp_path: Path) -> None:
    raw = _raw_btf(tmp_path)
    assert raw.read_bytes()[:2] == b"\x9f\xeb"      # a bare BTF blob, as BTFHub ships
    spec = ObjectSpec.from_file(str(OBJ / "fields.bpf.o"))
    from_raw = relocate_object(spec, load_target_btf(str(raw)))
    from_elf = relocate_object(spec, load_target_btf(str(OBJ / "target_v1.o")))
    assert not from_raw.errors
    assert {n: p.instructions for n, p in from_raw.programs.items()} == \
        {n: p.instructions for n, p in from_elf.programs.items()}
    assert from_raw.target_name == "target_v1.btf"


def test_flavor_index_lists_flavoured_names() -> None:
    idx = flavor_index(Btf.from_file(str(OBJ / "target_v1.o")))
    assert sorted(idx["amb"]) == ["amb___v1", "amb___v2"]
    assert sorted(idx["conf"]) == ["conf___v1", "conf___v2"]
    assert "rec" not in idx


# --------------------------------------------------------------------------- split BTF


class _Writer:
    def __init__(self) -> None:
        lib = ctypes.CDLL("libbpf.so.1")
        vp = ctypes.c_void_p
        lib.btf__new_empty.restype = vp
        lib.btf__new_empty_split.restype = vp
        lib.btf__new_empty_split.argtypes = [vp]
        lib.btf__add_int.argtypes = [vp, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]
        lib.btf__add_struct.argtypes = [vp, ctypes.c_char_p, ctypes.c_uint32]
        lib.btf__add_field.argtypes = [vp, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint32, ctypes.c_uint32]
        lib.btf__raw_data.restype = vp
        lib.btf__raw_data.argtypes = [vp, ctypes.POINTER(ctypes.c_uint32)]
        lib.btf__free.argtypes = [vp]
        self.lib = lib

    def raw(self, btf: int) -> bytes:
        size = ctypes.c_uint32()
        ptr = self.lib.btf__raw_data(btf, ctypes.byref(size))
        return ctypes.string_at(ptr, size.value)


def _split_setup(tmp_path: Path) -> Tuple[Btf, Btf, TargetBtf]:
    """base ("vmlinux": struct both{int a}) + module "mymod" (struct modonly{int pad; int m},
    struct both{long x; int a}); local: struct modonly___l{int m}, struct both{int a}."""
    w = _Writer()
    lib = w.lib
    base = lib.btf__new_empty()
    i32 = lib.btf__add_int(base, b"int", 4, 1)
    both = lib.btf__add_struct(base, b"both", 4)
    lib.btf__add_field(base, b"a", i32, 0, 0)
    base_raw = w.raw(base)
    mod = lib.btf__new_empty_split(base)
    i64 = lib.btf__add_int(mod, b"long", 8, 1)
    lib.btf__add_struct(mod, b"modonly", 8)
    lib.btf__add_field(mod, b"pad", i32, 0, 0)
    lib.btf__add_field(mod, b"m", i32, 32, 0)
    lib.btf__add_struct(mod, b"both", 16)
    lib.btf__add_field(mod, b"x", i64, 0, 0)
    lib.btf__add_field(mod, b"a", i32, 64, 0)
    (tmp_path / "mymod").write_bytes(w.raw(mod))
    local = lib.btf__new_empty()
    l32 = lib.btf__add_int(local, b"int", 4, 1)
    lib.btf__add_struct(local, b"modonly___l", 4)
    lib.btf__add_field(local, b"m", l32, 0, 0)
    lib.btf__add_struct(local, b"both", 4)
    lib.btf__add_field(local, b"a", l32, 0, 0)
    local_raw = w.raw(local)
    for b in (base, mod, local):
        lib.btf__free(b)
    assert both == 2
    main = Btf.from_bytes(base_raw, name="vmlinux")
    target = TargetBtf(main, name="vmlinux", modules=["mymod"], module_dir=str(tmp_path), override=False)
    return Btf.from_bytes(local_raw, name="local"), main, target


MOV = Instruction(opcode=0xB7, dst=1, imm=0)


def test_module_btf_is_searched_when_vmlinux_has_no_candidate(tmp_path: Path) -> None:
    local, main, target = _split_setup(tmp_path)
    lid = local.find_by_name("modonly___l")[0]
    e = compute_fixup(local, target, CoreRelo(0, lid, 0, "0:0", CoreReloKind.FIELD_BYTE_OFFSET), MOV)
    assert e.new_value == 4 and e.target is not None
    assert e.target.source == "mymod" and e.target.type_id >= len(main)
    assert e.replacement == (dataclasses.replace(MOV, imm=4),)


def test_modules_are_not_searched_when_vmlinux_has_a_candidate(tmp_path: Path) -> None:
    local, _, target = _split_setup(tmp_path)
    lid = local.find_by_name("both")[0]
    e = compute_fixup(local, target, CoreRelo(0, lid, 0, "0:0", CoreReloKind.FIELD_BYTE_OFFSET), MOV)
    assert [c.source for c in e.candidates] == ["vmlinux"]
    assert e.new_value == 0


def test_user_given_btf_never_consults_modules(tmp_path: Path) -> None:
    local, main, _ = _split_setup(tmp_path)
    target = TargetBtf.from_btf(main)
    lid = local.find_by_name("modonly___l")[0]
    e = compute_fixup(local, target, CoreRelo(0, lid, 0, "0:0", CoreReloKind.FIELD_BYTE_OFFSET), MOV)
    assert e.outcome == "poisoned" and not e.candidates


# --------------------------------------------------------------------------- explanations


def _explanations() -> Tuple[CoreExplanation, ...]:
    spec = ObjectSpec.from_file(str(OBJ / "fields.bpf.o"))
    return relocate_object(spec, Btf.from_file(str(OBJ / "target_v1.o"))).explanations


def test_explanations_serialise_to_json_and_read_well() -> None:
    exps = _explanations()
    doc = json.loads(json.dumps([e.to_dict() for e in exps]))
    assert len(doc) == len(exps)
    first = doc[0]
    for key in ("program", "insn_index", "kind_name", "local_type", "access", "access_str",
                "candidates", "target", "orig_value", "new_value", "insn_before", "insn_after"):
        assert key in first
    missing = next(e for e in exps if e.outcome == "poisoned")
    text = format_explanation(missing)
    assert "struct rec has no field `missing`" in text and "poisoned" in text
    assert "0xbad2310" in text or "195896080" in text
    pt = next(e for e in exps if e.access == "struct rec___local::pt.y" and e.kind == 0)
    assert pt.target is not None and pt.target.access == "struct rec::pt.y"
    assert "struct rec::pt.y" in format_explanation(pt)


def test_explanation_instructions_are_the_disassembly_of_the_replacement() -> None:
    for e in _explanations():
        assert e.insn_after == tuple(format_instruction(i) for i in e.replacement)


def test_apply_fixup_splices_and_keeps_slots() -> None:
    spec = ObjectSpec.from_file(str(OBJ / "edge.bpf.o"))
    prog = spec.program("ldimm_poison")
    result = relocate_object(spec, Btf.from_file(str(OBJ / "target_v1.o")))
    poisoned = next(e for e in result.programs["ldimm_poison"].explanations if e.outcome == "poisoned")
    assert prog.instructions[poisoned.insn_index].opcode == 0x18 and len(poisoned.replacement) == 2
    out = apply_fixup(prog.instructions, poisoned)
    assert len(out) == len(prog.instructions) + 1
    assert sum(i.slots for i in out) == sum(i.slots for i in prog.instructions)
    assert all(i.opcode == 0x85 and i.imm == 0xBAD2310 for i in out[poisoned.insn_index:poisoned.insn_index + 2])
    assert prog.instructions == spec.program("ldimm_poison").instructions  # input untouched
