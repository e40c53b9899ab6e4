"""Decode raw instruction bytes into :class:`Instruction` objects and back.

Each 8-byte slot is ``struct bpf_insn``: ``code`` (u8), a register byte,
``off`` (s16), ``imm`` (s32).  The register byte holds two 4-bit bitfields
declared ``dst_reg:4; src_reg:4;`` -- under ``__LITTLE_ENDIAN_BITFIELD`` the
first field takes the low nibble, under ``__BIG_ENDIAN_BITFIELD`` the high
one.  So in a little-endian object ``dst = regs & 0xf``, ``src = regs >> 4``,
and in a big-endian object (``clang -target bpfeb``) the nibbles swap.

``BPF_LD | BPF_IMM | BPF_DW`` takes two slots; the second slot's ``imm``
holds the high 32 bits of the constant.
"""

from __future__ import annotations

import struct
from typing import List, Optional, Sequence

from purebpf.errors import InstructionError
from purebpf.insn.instruction import Instruction
from purebpf.insn.opcodes import LD_IMM64_OPCODE

__all__ = ["decode", "encode", "INSN_SIZE"]

#: Size in bytes of one ``struct bpf_insn`` slot.
INSN_SIZE = 8

_LE = struct.Struct("<BBhi")
_BE = struct.Struct(">BBhi")
_LE_FORMAT = "<BBhi"
_BE_FORMAT = ">BBhi"

# Building a frozen dataclass through __init__ costs a guarded setattr per
# field; decode builds thousands, so it fills the instance dict directly.
_new = object.__new__


def _make(opcode: int, dst: int, src: int, off: int, imm: int, second_slot: int = 0) -> Instruction:
    insn: Instruction = _new(Instruction)
    d = insn.__dict__
    d["opcode"] = opcode
    d["dst"] = dst
    d["src"] = src
    d["off"] = off
    d["imm"] = imm
    d["second_slot"] = second_slot
    return insn


def _check_byteorder(byteorder: str) -> bool:
    """Return True for little endian; reject anything but "little"/"big"."""
    if byteorder == "little":
        return True
    if byteorder == "big":
        return False
    raise ValueError(f"byteorder must be 'little' or 'big', not {byteorder!r}")


def decode(
    data: bytes,
    byteorder: str = "little",
    *,
    file: Optional[str] = None,
    section: Optional[str] = None,
) -> List[Instruction]:
    """Decode a program's instruction bytes.

    ``byteorder`` is the object's byte order (``"little"`` for ``bpfel``,
    ``"big"`` for ``bpfeb``).  Unknown opcodes decode fine (the verifier, not
    the decoder, judges them).  Raises :class:`~purebpf.errors.InstructionError`
    (with ``file``/``section`` and the byte offset) when the length is not a
    multiple of 8 or an ld_imm64 lacks its second slot.
    """
    little = _check_byteorder(byteorder)
    view = memoryview(data).cast("B") if not isinstance(data, (bytes, bytearray)) else data
    size = len(view)
    if size % INSN_SIZE:
        raise InstructionError(
            f"instruction bytes are {size} long, not a multiple of {INSN_SIZE}",
            file=file, section=section, offset=size - size % INSN_SIZE,
        )
    out: List[Instruction] = []
    append = out.append
    make = _make
    it = struct.iter_unpack(_LE_FORMAT if little else _BE_FORMAT, view)
    slot = 0
    for code, regs, off, imm in it:
        if little:
            dst, src = regs & 0x0F, regs >> 4
        else:
            dst, src = regs >> 4, regs & 0x0F
        if code == LD_IMM64_OPCODE:
            try:
                code2, regs2, off2, imm2 = next(it)
            except StopIteration:
                raise InstructionError(
                    "ld_imm64 (opcode 0x18) is missing its second 8-byte slot",
                    file=file, section=section, offset=slot * INSN_SIZE,
                ) from None
            extra = 0
            if code2 or regs2 or off2:
                if little:
                    dst2, src2 = regs2 & 0x0F, regs2 >> 4
                else:
                    dst2, src2 = regs2 >> 4, regs2 & 0x0F
                extra = code2 | dst2 << 8 | src2 << 12 | (off2 & 0xFFFF) << 16
            append(make(code, dst, src, off, (imm & 0xFFFFFFFF) | (imm2 & 0xFFFFFFFF) << 32, extra))
            slot += 2
        else:
            append(make(code, dst, src, off, imm))
            slot += 1
    return out


def _field_error(index: int, offset: int, what: str) -> InstructionError:
    return InstructionError(f"instruction {index}: {what}", section="<encode>", offset=offset)


def encode(insns: Sequence[Instruction], byteorder: str = "little") -> bytes:
    """Encode instructions to bytes: the exact inverse of :func:`decode`.

    Raises :class:`~purebpf.errors.InstructionError` when a field does not
    fit (register > 15, ``off`` outside s16, ``imm`` outside 32 bits -- or 64
    bits for ld_imm64; negative 64-bit constants are stored two's complement).
    """
    little = _check_byteorder(byteorder)
    pack = (_LE if little else _BE).pack
    parts: List[bytes] = []
    append = parts.append
    offset = 0
    for index, insn in enumerate(insns):
        code, dst, src, off, imm = insn.opcode, insn.dst, insn.src, insn.off, insn.imm
        if not 0 <= code <= 0xFF:
            raise _field_error(index, offset, f"opcode {code!r} is not a byte")
        if not (0 <= dst <= 15 and 0 <= src <= 15):
            raise _field_error(index, offset, f"registers dst={dst!r} src={src!r} must be 0..15")
        if not -0x8000 <= off <= 0x7FFF:
            raise _field_error(index, offset, f"off {off!r} does not fit in a signed 16-bit field")
        regs = (src << 4 | dst) if little else (dst << 4 | src)
        if code == LD_IMM64_OPCODE:
            if not -(1 << 63) <= imm < (1 << 64):
                raise _field_error(index, offset, f"imm {imm!r} does not fit in 64 bits")
            imm &= 0xFFFFFFFFFFFFFFFF
            lo, hi = imm & 0xFFFFFFFF, imm >> 32
            extra = insn.second_slot
            code2, dst2, src2 = extra & 0xFF, (extra >> 8) & 0x0F, (extra >> 12) & 0x0F
            off2 = (extra >> 16) & 0xFFFF
            regs2 = (src2 << 4 | dst2) if little else (dst2 << 4 | src2)
            append(pack(code, regs, off, lo - (1 << 32) if lo & 0x80000000 else lo))
            append(pack(code2, regs2, off2 - 0x10000 if off2 & 0x8000 else off2,
                        hi - (1 << 32) if hi & 0x80000000 else hi))
            offset += 16
        else:
            if not -0x80000000 <= imm <= 0xFFFFFFFF:
                raise _field_error(index, offset, f"imm {imm!r} does not fit in 32 bits")
            if imm > 0x7FFFFFFF:
                imm -= 1 << 32
            append(pack(code, regs, off, imm))
            offset += 8
    return b"".join(parts)
