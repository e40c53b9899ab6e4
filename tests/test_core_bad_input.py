"""Malformed CO-RE input must give CoreRelocationError (naming program and
instruction) -- never a crash, a hang, or a foreign exception."""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from pathlib import Path
from typing import Any, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from purebpf.btf import Btf, CoreRelo, CoreReloKind
from purebpf.core_reloc import CoreFixupError, TargetBtf, compute_fixup, relocate_object
from purebpf.errors import CoreRelocationError, PurebpfError
from purebpf.insn import Instruction
from purebpf.spec import ObjectSpec

ROOT = Path(__file__).resolve().parent.parent
OBJ = ROOT / "fixtures" / "core" / "obj"


@lru_cache(maxsize=None)
def fields() -> ObjectSpec:
    return ObjectSpec.from_file(str(OBJ / "fields.bpf.o"))


@lru_cache(maxsize=None)
def target() -> Btf:
    return Btf.from_file(str(OBJ / "target_v1.o"))


def rec_id() -> int:
    btf = fields().btf
    assert btf is not None
    return btf.find_by_name("rec___local")[0]


MOV_R1_0 = Instruction(opcode=0xB7, dst=1, imm=0)


@pytest.mark.parametrize("type_id,access,kind,why", [
    (99999, "0:0", CoreReloKind.FIELD_BYTE_OFFSET, "not valid"),
    (None, "", CoreReloKind.FIELD_BYTE_OFFSET, "empty"),
    (None, "0:", CoreReloKind.FIELD_BYTE_OFFSET, "not a number"),
    (None, ":0", CoreReloKind.FIELD_BYTE_OFFSET, "empty or starts"),
    (None, "0::1", CoreReloKind.FIELD_BYTE_OFFSET, "not a number"),
    (None, "0:x", CoreReloKind.FIELD_BYTE_OFFSET, "not a number"),
    (None, "0:-1", CoreReloKind.FIELD_BYTE_OFFSET, "negative"),
    (None, "0:999", CoreReloKind.FIELD_BYTE_OFFSET, "out of range"),
    (None, "0:0:0", CoreReloKind.FIELD_BYTE_OFFSET, "no members"),
    (None, ":".join(["0"] * 100), CoreReloKind.FIELD_BYTE_OFFSET, "deeper"),
    (None, "0:1", CoreReloKind.TYPE_SIZE, "must have access string"),
    (None, "0", CoreReloKind.ENUMVAL_VALUE, "not an enum"),
    (None, "0:0", 77, "unknown relocation kind"),
    (0, "0:0", CoreReloKind.FIELD_BYTE_OFFSET, "no size"),
])
def test_malformed_record_is_a_core_error(type_id: Any, access: str, kind: int, why: str) -> None:
    relo = CoreRelo(insn_off=8 * 5, type_id=rec_id() if type_id is None else type_id,
                    access_str_off=0, access_str=access, kind=kind)
    local = fields().btf
    assert local is not None
    with pytest.raises(CoreRelocationError) as info:
        compute_fixup(local, target(), relo, MOV_R1_0, program="prog_x", insn_index=5)
    msg = str(info.value)
    assert "prog_x" in msg and "#5" in msg and why in msg, msg
    assert isinstance(info.value, CoreFixupError) and info.value.explanation.outcome == "error"


@pytest.mark.parametrize("insn,why", [
    (Instruction(opcode=0x05, off=3), "cannot carry"),                   # ja: wrong class
    (Instruction(opcode=0x0F, dst=1, src=2), "register source"),         # r1 += r2
    (Instruction(opcode=0xB7, dst=1, imm=12), "unexpected immediate"),   # local offset is 0
    (Instruction(opcode=0x61, dst=1, src=2, off=4), "unexpected offset"),
    (Instruction(opcode=0x18, dst=1, src=1, imm=0), "unexpected form"),  # ld_imm64 of a map fd
])
def test_instruction_that_does_not_fit_the_record(insn: Instruction, why: str) -> None:
    relo = CoreRelo(insn_off=0, type_id=rec_id(), access_str_off=0, access_str="0:0",
                    kind=CoreReloKind.FIELD_BYTE_OFFSET)
    local = fields().btf
    assert local is not None
    with pytest.raises(CoreRelocationError, match=why):
        compute_fixup(local, target(), relo, insn, program="p")


def _with_relos(prog_name: str, relos: Tuple[CoreRelo, ...]) -> ObjectSpec:
    spec = fields()
    progs = tuple(dataclasses.replace(p, core_relos=relos) if p.name == prog_name else p
                  for p in spec.programs)
    return dataclasses.replace(spec, programs=progs)


@pytest.mark.parametrize("insn_off,why", [(4, "multiple of 8"), (8 * 100000, "not the start"),
                                          (-8, "not the start")])
def test_record_pointing_outside_the_program(insn_off: int, why: str) -> None:
    bad = CoreRelo(insn_off=insn_off, type_id=rec_id(), access_str_off=0, access_str="0:0",
                   kind=CoreReloKind.FIELD_BYTE_OFFSET)
    result = relocate_object(_with_relos("core_fields", (bad,)), target())
    (err,) = result.programs["core_fields"].errors
    assert "core_fields" in str(err) and why in str(err)
    with pytest.raises(CoreRelocationError):
        result.check()


def test_second_slot_of_ld_imm64_is_not_an_instruction() -> None:
    prog = fields().program("core_types")
    slot = next(prog.slot_of(i) for i, ins in enumerate(prog.instructions) if ins.opcode == 0x18)
    bad = CoreRelo(insn_off=8 * (slot + 1), type_id=rec_id(), access_str_off=0, access_str="0:0",
                   kind=CoreReloKind.FIELD_BYTE_OFFSET)
    result = relocate_object(_with_relos("core_types", (bad,)), target())
    assert "not the start of an instruction" in str(result.programs["core_types"].errors[0])


def test_inputs_are_not_mutated_and_results_are_stable() -> None:
    spec = fields()
    before = [p.instructions for p in spec.programs]
    first = relocate_object(spec, target())
    second = relocate_object(spec, TargetBtf.from_btf(target()))
    assert [p.instructions for p in spec.programs] == before
    assert {n: p.instructions for n, p in first.programs.items()} == \
        {n: p.instructions for n, p in second.programs.items()}
    assert first.explanations == second.explanations


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(type_id=st.integers(min_value=0, max_value=80),
       access=st.lists(st.integers(min_value=0, max_value=20), min_size=1, max_size=6),
       kind=st.integers(min_value=0, max_value=14),
       opcode=st.sampled_from([0xB7, 0x07, 0x61, 0x79, 0x63, 0x18, 0x85, 0x05]),
       off=st.integers(min_value=-40, max_value=40), imm=st.integers(min_value=-5, max_value=200))
def test_random_records_never_crash(type_id: int, access: list, kind: int, opcode: int,
                                    off: int, imm: int) -> None:
    local = fields().btf
    assert local is not None
    relo = CoreRelo(insn_off=0, type_id=type_id, access_str_off=0,
                    access_str=":".join(map(str, access)), kind=kind)
    insn = Instruction(opcode=opcode, dst=1, src=0, off=off, imm=imm & ((1 << 64) - 1) if opcode == 0x18 else imm)
    try:
        e = compute_fixup(local, target(), relo, insn, program="fuzz")
    except CoreRelocationError:
        return
    assert e.outcome in ("patched", "poisoned") and e.replacement


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flips=st.lists(st.tuples(st.integers(min_value=0, max_value=10**6), st.integers(1, 255)),
                      min_size=1, max_size=8))
def test_corrupted_target_btf_gives_purebpf_errors_only(flips: list) -> None:
    raw = bytearray(target().raw)
    for pos, x in flips:
        raw[24 + pos % (len(raw) - 24)] ^= x   # keep the header, corrupt types/strings
    try:
        btf = Btf.from_bytes(bytes(raw), name="corrupt")
        result = relocate_object(fields(), btf)
        for p in result.programs.values():
            for e in p.errors:
                assert isinstance(e, CoreRelocationError)
    except PurebpfError:
        pass
