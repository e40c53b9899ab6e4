"""Relocated values and instruction patching (libbpf bpf_core_calc_relo / bpf_core_patch_insn).

For each relocation kind a value is computed twice, once from the local spec
(what the compiler assumed, ``orig``) and once from the target spec (``new``).
The instruction must currently hold ``orig`` (checked when ``validate``), and
is rewritten to hold ``new``.  A relocation that cannot be satisfied but may
sit in dead code *poisons* the instruction instead: it becomes a call of the
non-existent helper 0xbad2310, which the verifier only rejects if reachable.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Tuple

from purebpf.btf.types import Enum, Enum64, Int, IntEncoding, Ptr, Struct, Union

from purebpf.core_reloc._spec import ENUMVAL_KINDS, FIELD_KINDS, TYPE_KINDS, CoreSpec
from purebpf.core_reloc._walk import SpecError, resolve_size, skip_mods, type_at

if TYPE_CHECKING:  # pragma: no cover
    from purebpf.btf import Btf

#: Helper id used by libbpf to poison unresolved CO-RE instructions ("bad relo").
POISON_HELPER_ID = 0xBAD2310
MASK64 = (1 << 64) - 1

# Opcode fields (include/uapi/linux/bpf_common.h, bpf.h).
BPF_LD, BPF_LDX, BPF_ST, BPF_STX, BPF_ALU, BPF_JMP, BPF_ALU64 = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x07
BPF_K = 0x00
BPF_CALL = 0x80
LD_IMM64 = 0x18  # BPF_LD | BPF_IMM | BPF_DW
_SIZE_BYTES = {0x18: 8, 0x00: 4, 0x08: 2, 0x10: 1}  # BPF_DW, BPF_W, BPF_H, BPF_B
_BYTES_SIZE = {v: k for k, v in _SIZE_BYTES.items()}


class PatchError(Exception):
    """Internal: the instruction cannot be patched (libbpf returns -EINVAL/-ERANGE)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PoisonRequest(Exception):
    """Internal: the relocation asks for the instruction to be poisoned (libbpf -EUCLEAN)."""


@dataclass
class FieldValue:
    value: int
    size: int = 0          # memory access size in bytes when known (BYTE_OFFSET on a whole field)
    type_id: int = 0       # type of the accessed memory (for the size-adjustment rule)
    validate: bool = True


@dataclass
class RelocResult:
    """libbpf ``struct bpf_core_relo_res``."""

    orig_val: int = 0
    new_val: int = 0
    poison: bool = False
    validate: bool = True
    fail_memsz_adjust: bool = False
    orig_sz: int = 0
    new_sz: int = 0
    orig_type_id: int = 0
    new_type_id: int = 0


def _field_value(spec: Optional[CoreSpec], kind: int, big_endian: bool) -> FieldValue:
    """libbpf bpf_core_calc_field_relo for one side."""
    if kind == 2:  # FIELD_EXISTS
        return FieldValue(1 if spec is not None else 0)
    if spec is None:
        raise PoisonRequest()
    btf = spec.btf
    acc = spec.accessors[-1]
    if acc.name is None:  # the access ends in an array element a[n]
        if kind == 0:
            size = resolve_size(btf, acc.type_id)
            return FieldValue(spec.bit_offset // 8, size, acc.type_id, True)
        if kind == 1:
            return FieldValue(resolve_size(btf, acc.type_id), 0, 0, True)
        raise SpecError(f"relocation kind {kind} cannot be applied to an array element access")
    holder = type_at(btf, acc.type_id)
    if not isinstance(holder, (Struct, Union)):
        raise SpecError("field accessor does not point into a struct/union")
    m = holder.members[acc.idx]
    field_type_id, mt = skip_mods(btf, m.type)
    bit_off = spec.bit_offset
    bit_sz = m.bitfield_size
    bitfield = bit_sz > 0
    if bitfield:
        byte_sz = getattr(mt, "size", 0)
        if not isinstance(byte_sz, int) or byte_sz <= 0:
            raise SpecError("bitfield member has a type without size")
        byte_off = bit_off // 8 // byte_sz * byte_sz
        while bit_off + bit_sz - byte_off * 8 > byte_sz * 8:
            if byte_sz >= 8:
                raise SpecError("bitfield cannot be read with a 64-bit load")
            byte_sz *= 2
            byte_off = bit_off // 8 // byte_sz * byte_sz
    else:
        byte_sz = resolve_size(btf, field_type_id)
        byte_off = bit_off // 8
        bit_sz = byte_sz * 8
    validate = not bitfield
    if kind == 0:  # FIELD_BYTE_OFFSET
        if bitfield:
            return FieldValue(byte_off, 0, 0, validate)
        return FieldValue(byte_off, byte_sz, field_type_id, validate)
    if kind == 1:  # FIELD_BYTE_SIZE
        return FieldValue(byte_sz, 0, 0, validate)
    if kind == 3:  # FIELD_SIGNED
        signed = ((isinstance(mt, (Enum, Enum64)) and mt.signed)
                  or (isinstance(mt, Int) and mt.is_signed))
        return FieldValue(1 if signed else 0, 0, 0, True)
    if kind == 4:  # FIELD_LSHIFT_U64
        if big_endian:
            value = (8 - byte_sz) * 8 + (bit_off - byte_off * 8)
        else:
            value = 64 - (bit_off + bit_sz - byte_off * 8)
        return FieldValue(value & MASK64, 0, 0, validate)
    if kind == 5:  # FIELD_RSHIFT_U64
        return FieldValue((64 - bit_sz) & MASK64, 0, 0, True)
    raise SpecError(f"unsupported field relocation kind {kind}")


def _type_value(spec: Optional[CoreSpec], kind: int) -> int:
    """libbpf bpf_core_calc_type_relo for one side (0 when the type is absent)."""
    if spec is None:
        return 0
    if kind == 7:  # TYPE_ID_TARGET
        return spec.root_type_id
    if kind in (8, 12):  # TYPE_EXISTS, TYPE_MATCHES
        return 1
    if kind == 9:  # TYPE_SIZE
        return resolve_size(spec.btf, spec.root_type_id)
    raise SpecError(f"unsupported type relocation kind {kind}")


def _enum_value(spec: Optional[CoreSpec], kind: int) -> int:
    """libbpf bpf_core_calc_enumval_relo for one side.

    A 32-bit enumerator is read as ``__s32`` and widened to ``__u64`` (sign
    extension), an ENUM64 one as its unsigned 64-bit pattern -- as libbpf does.
    """
    if kind == 10:  # ENUMVAL_EXISTS
        return 1 if spec is not None else 0
    if spec is None:
        raise PoisonRequest()
    acc = spec.accessors[0]
    t = type_at(spec.btf, acc.type_id)
    if isinstance(t, Enum):
        v32 = t.values[acc.idx].value & 0xFFFFFFFF
        if v32 & 0x80000000:
            v32 -= 1 << 32
        return v32 & MASK64
    if isinstance(t, Enum64):
        return t.values[acc.idx].value & MASK64
    raise SpecError("enumerator accessor does not point into an enum")


def calc_relo(kind: int, local: CoreSpec, target: Optional[CoreSpec], big_endian: bool) -> RelocResult:
    """Original and relocated value for one candidate (or for none: ``target`` None)."""
    res = RelocResult()
    try:
        if kind in FIELD_KINDS:
            lv = _field_value(local, kind, big_endian)
            tv = _field_value(target, kind, big_endian)
            res.orig_val, res.orig_sz, res.orig_type_id, res.validate = lv.value, lv.size, lv.type_id, lv.validate
            res.new_val, res.new_sz, res.new_type_id = tv.value, tv.size, tv.type_id
            if res.orig_sz != res.new_sz and target is not None:
                orig_t = type_at(local.btf, res.orig_type_id)
                new_t = type_at(target.btf, res.new_type_id)
                safe = (isinstance(orig_t, Ptr) and isinstance(new_t, Ptr)) or (
                    isinstance(orig_t, Int) and isinstance(new_t, Int)
                    and orig_t.encoding != IntEncoding.SIGNED and new_t.encoding != IntEncoding.SIGNED)
                res.fail_memsz_adjust = not safe
        elif kind in TYPE_KINDS:
            res.validate = kind != 7
            res.orig_val = _type_value(local, kind)
            res.new_val = _type_value(target, kind)
        elif kind in ENUMVAL_KINDS:
            res.orig_val = _enum_value(local, kind)
            res.new_val = _enum_value(target, kind)
        else:
            raise SpecError(f"unknown relocation kind {kind}")
    except PoisonRequest:
        res.poison = True
    return res


# --------------------------------------------------------------------------- patching


def _s32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def _as_u64_from_s32(value: int) -> int:
    """``(__u64)(__s32)imm``: how libbpf compares an instruction immediate."""
    return _s32(value) & MASK64


def _as_u64_from_s16(value: int) -> int:
    value &= 0xFFFF
    value = value - (1 << 16) if value & 0x8000 else value
    return value & MASK64


def poison_insns(insn: Any) -> Tuple[Any, ...]:
    """The replacement for a poisoned instruction (both slots of an ld_imm64)."""
    call = dataclasses.replace(insn, opcode=BPF_JMP | BPF_CALL, dst=0, src=0, off=0, imm=POISON_HELPER_ID)
    if insn.opcode == LD_IMM64:
        return (call, call)
    return (call,)


def patch_insn(insn: Any, res: RelocResult) -> Tuple[Tuple[Any, ...], str]:
    """Apply a result to one instruction (libbpf bpf_core_patch_insn).

    Returns the replacement instruction(s) and a short description of what was
    changed.  Raises PatchError when libbpf would refuse the relocation.
    """
    if res.poison:
        return poison_insns(insn), "poisoned"
    opcode = insn.opcode
    cls = opcode & 0x07
    orig, new = res.orig_val, res.new_val
    if cls in (BPF_ALU, BPF_ALU64):
        if opcode & 0x08 != BPF_K:
            raise PatchError("ALU instruction uses a register source, not an immediate")
        if res.validate and _as_u64_from_s32(insn.imm) != orig:
            raise PatchError(f"unexpected immediate: instruction has {_s32(insn.imm)}, "
                             f"the local type implies {orig} (-> {new})")
        return (dataclasses.replace(insn, imm=_s32(new)),), f"imm {_s32(insn.imm)} -> {_s32(new)}"
    if cls in (BPF_LDX, BPF_ST, BPF_STX):
        off = insn.off
        if res.validate and _as_u64_from_s16(off) != orig:
            raise PatchError(f"unexpected offset: instruction has {off}, "
                             f"the local type implies {orig} (-> {new})")
        if new > 0x7FFF:
            raise PatchError(f"relocated offset {new} does not fit in the 16-bit offset field")
        if res.fail_memsz_adjust:
            return poison_insns(insn), ("poisoned: field size changed and the access is not of a "
                                        "pointer or unsigned integer")
        out = dataclasses.replace(insn, off=new)
        what = f"off {off} -> {new}"
        if res.new_sz != res.orig_sz:
            have = _SIZE_BYTES.get(opcode & 0x18)
            if have != res.orig_sz:
                raise PatchError(f"memory access size is {have} bytes, the local field has {res.orig_sz}")
            new_size = _BYTES_SIZE.get(res.new_sz)
            if new_size is None:
                raise PatchError(f"target field size {res.new_sz} cannot be loaded in one instruction")
            out = dataclasses.replace(out, opcode=(opcode & 0xE0) | new_size | cls)
            what += f", size {res.orig_sz} -> {res.new_sz} bytes"
        return (out,), what
    if cls == BPF_LD:
        if opcode != LD_IMM64 or insn.src != 0 or insn.off != 0:
            raise PatchError("ld_imm64 relocation on an instruction of unexpected form")
        imm = insn.imm & MASK64
        if res.validate and imm != orig:
            raise PatchError(f"unexpected 64-bit immediate: instruction has {imm}, "
                             f"the local type implies {orig} (-> {new})")
        return (dataclasses.replace(insn, imm=new & MASK64),), f"imm64 {imm} -> {new & MASK64}"
    raise PatchError(f"instruction class {cls:#x} (opcode {opcode:#04x}) cannot carry a CO-RE relocation")
