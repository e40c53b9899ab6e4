"""purebpf.insn disassembler against independent oracles.

* llvm-objdump-19: every instruction of every corpus and fixture object.  LLVM's
  BPF syntax differs in details from the kernel's, so both texts are reduced
  by :func:`canonical` to the same token tuple (operators, registers,
  integers) and the tuples are compared -- never our own output pasted in.
* the kernel: hand-assembled programs are loaded with BPF_PROG_LOAD at
  log_level 2 and every instruction line the verifier prints (through
  kernel/bpf/disasm.c) is compared with ``format_instruction``, character for
  character.
* bpftool: fixture programs loaded with ``bpftool prog loadall`` and dumped
  with ``bpftool prog dump xlated`` -- the kernel's rewritten program printed
  by the same disasm.c -- compared line for line.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from purebpf.errors import InstructionError
from purebpf.insn import Instruction, decode, disassemble, encode, format_instruction, slot_offsets
from purebpf.insn import opcodes as op

from conftest import fixture_objects
from test_insn import all_objects, build_corpus, code_sections

OBJDUMP = "llvm-objdump-19"

Token = object
Canonical = Tuple[Token, ...]


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> List[Path]:
    return build_corpus(tmp_path_factory.mktemp("disasm_corpus"))


# ---------------------------------------------------------------------------
# The normaliser: kernel syntax and LLVM syntax -> one canonical token tuple
# ---------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""(?P<reg>\b[rw](?P<regno>\d+)\b)
      | (?P<num>(?:(?<![\w)])[+-]\s*)?(?:0x[0-9a-f]+|\d+)\b)
      | (?P<other>[^\s\w]+|\w+)""",
    re.X,
)

# LLVM spells the exchange instructions as xchg32_32(r1 + 0x4, w2) and
# cmpxchg_64(r1 + 0x8, r0, r2); the kernel as atomic_xchg((u32 *)(r1 +4), r2).
_LLVM_XCHG = re.compile(r"\b(cmpxchg|xchg)(32_32|_64)\((\w+) ([+-] \w+),")


def canonical(text: str, *, wide_imm: bool = False) -> Canonical:
    """Reduce one instruction's text, in either syntax, to a comparable tuple.

    Register width (``w1`` vs ``r1``) is kept for ALU and jump instructions,
    where it is the 32/64-bit distinction, and dropped for memory operations,
    where LLVM names the value register ``w`` for 32-bit accesses and the
    kernel always says ``r``.  Integers are compared modulo 2**32 (2**64 for
    ld_imm64) because LLVM prints signed immediates where the kernel prints
    ``(u32)`` hex.
    """
    text = text.strip().lower()
    if text in ("<unknown>", "unknown"):
        return ("unknown",)
    text = re.sub(r"\s*<[^<>\s]*>$", "", text)        # llvm: branch target symbol
    text = re.sub(r"\s+ll$", "", text)                 # llvm: ld_imm64 marker
    text = text.replace("atomic64_", "atomic_")
    text = re.sub(r"\bpc([+-])", r"\1", text)          # kernel: goto pc+3
    text = re.sub(r"^call [\w-]+#(-?\d+)$", r"call \1", text)  # kernel: call bpf_x#1
    text = re.sub(r"skb\[(r\d+)\]", r"skb[\1 + 0]", text)      # llvm: ld_ind without imm
    m = _LLVM_XCHG.search(text)
    if m:
        size = "u32" if m.group(2) == "32_32" else "u64"
        text = _LLVM_XCHG.sub(f"atomic_{m.group(1)}(({size} *)({m.group(3)} {m.group(4)}),", text)
    memory = "*(" in text or "skb[" in text or "lock " in text or "atomic_" in text
    mask = (1 << 64) - 1 if wide_imm else (1 << 32) - 1
    out: List[Token] = []
    for tok in _TOKEN.finditer(text):
        if tok.group("reg"):
            regno = int(tok.group("regno"))
            width = "" if memory else tok.group("reg")[0]
            out.append(("reg", width, regno))
        elif tok.group("num"):
            out.append(int(tok.group("num").replace(" ", ""), 0) & mask)
        else:
            out.append(tok.group("other"))
    return tuple(out)


def test_canonical_agrees_on_syntax_pairs() -> None:
    """The normaliser itself: documented pairs of spellings map together, others apart."""
    same = [
        ("r1 = *(u32 *)(r2 +8)", "w1 = *(u32 *)(r2 + 0x8)"),
        ("*(u32 *)(r10 -4) = r1", "*(u32 *)(r10 - 0x4) = w1"),
        ("if r1 > 0xffffffff goto pc+3", "if r1 > -0x1 goto +0x3 <f+0x20>"),
        ("call bpf_map_lookup_elem#1", "call 0x1"),
        ("call pc+5", "call 0x5"),
        ("r1 = 0xffffffffffffffff", "r1 = -0x1 ll"),
        ("lock *(u32 *)(r1 +0) += r2", "lock *(u32 *)(r1 + 0x0) += w2"),
        ("r2 = atomic64_fetch_add((u64 *)(r1 +0), r2)", "r2 = atomic_fetch_add((u64 *)(r1 + 0x0), r2)"),
        ("r2 = atomic_xchg((u32 *)(r1 +4), r2)", "w2 = xchg32_32(r1 + 0x4, w2)"),
        ("r0 = atomic64_cmpxchg((u64 *)(r1 +8), r0, r2)", "r0 = cmpxchg_64(r1 + 0x8, r0, r2)"),
        ("r0 = *(u16 *)skb[r1 + 0]", "r0 = *(u16 *)skb[r1]"),
        ("r2 += -4", "r2 += -0x4"),
        ("unknown", "<unknown>"),
    ]
    for kernel, llvm in same:
        assert canonical(kernel, wide_imm="0xffffffffffffffff" in kernel) == \
            canonical(llvm, wide_imm=llvm.endswith(" ll")), (kernel, llvm)
    different = [
        ("w1 += w2", "r1 += r2"), ("r1 = *(u32 *)(r2 +8)", "r1 = *(u32 *)(r2 +4)"),
        ("r1 -= 3", "r1 += 3"), ("if r1 s> r2 goto pc+1", "if r1 > r2 goto pc+1"),
        ("r1 = *(u32 *)(r2 -8)", "r1 = *(u32 *)(r2 +8)"), ("r1 = (s8)r2", "r1 = (s16)r2"),
    ]
    for a, b in different:
        assert canonical(a) != canonical(b), (a, b)


# ---------------------------------------------------------------------------
# llvm-objdump oracle
# ---------------------------------------------------------------------------

def objdump_text(path: Path) -> Dict[str, Dict[int, str]]:
    """Section name -> slot -> LLVM's text for that instruction."""
    out = subprocess.run([OBJDUMP, "-d", "--mcpu=v4", "--no-show-raw-insn", str(path)],
                         capture_output=True, text=True, check=True).stdout
    result: Dict[str, Dict[int, str]] = {}
    current: Dict[int, str] = {}
    for line in out.splitlines():
        m = re.match(r"Disassembly of section (.*):$", line)
        if m:
            current = result.setdefault(m.group(1), {})
            continue
        m = re.match(r"\s*(\d+):\t(.*)$", line)
        if m:
            current[int(m.group(1))] = m.group(2)
    return result


def _llvm_cannot_show(insn: Instruction) -> bool:
    """Instructions LLVM 19 prints differently by design (documented gaps).

    * ld_imm64 with a pseudo source: LLVM shows the raw 64-bit value, we show
      bpftool's ``map[id:..]`` / ``subprog[..]`` notation.
    """
    return insn.is_ld_imm64 and insn.src != 0


def test_every_instruction_matches_llvm_objdump(corpus: List[Path]) -> None:
    if shutil.which(OBJDUMP) is None:
        pytest.skip(f"{OBJDUMP} not installed")
    compared = 0
    mismatches: List[str] = []
    for path in all_objects(corpus):
        llvm = objdump_text(path)
        for name, data, byteorder in code_sections(path):
            insns = decode(data, byteorder)
            assert sorted(llvm[name]) == slot_offsets(insns)
            for slot, insn in zip(slot_offsets(insns), insns):
                if _llvm_cannot_show(insn):
                    continue
                ours = format_instruction(insn)
                theirs = llvm[name][slot]
                if canonical(ours, wide_imm=insn.is_ld_imm64) != canonical(theirs, wide_imm=insn.is_ld_imm64):
                    mismatches.append(f"{path.name}:{name}:{slot}: ours {ours!r} llvm {theirs!r}")
                compared += 1
    assert not mismatches, "\n".join(mismatches[:40])
    assert compared > 400


def _synthetic_instructions() -> List[Instruction]:
    """Every opcode byte with a spread of field values, for a sweep against LLVM."""
    out: List[Instruction] = []
    for code in range(256):
        if code == op.LD_IMM64_OPCODE:
            out.append(Instruction(code, 1, 0, 0, 0xDEADBEEF12345678))
            continue
        for dst, src, off, imm in ((1, 2, 8, 0x10), (3, 4, -16, -5), (0, 9, 1, 1), (2, 1, 16, 32),
                                   (1, 2, 32, 64), (5, 6, 0, 0x7FFFFFFF)):
            out.append(Instruction(code, dst, src, off, imm))
    for imm in (0x00, 0x01, 0x40, 0x41, 0x50, 0x51, 0xA0, 0xA1, 0xE1, 0xF1, 0x100, 0x110, 0x02, 0xE0):
        for size in (op.BPF_W, op.BPF_DW, op.BPF_B, op.BPF_H):
            out.append(Instruction(op.BPF_STX | op.BPF_ATOMIC | size, 1, 2, 8, imm))
    for off, imm in ((1, 0x10000), (1, 1), (1, 0x10001), (-1, 0), (8, 0), (16, 0), (32, 0), (2, 0)):
        out.append(Instruction(op.BPF_ALU64 | op.BPF_MOV | op.BPF_X, 1, 2, off, imm))
    for src in range(8):
        out.append(Instruction(op.CALL_OPCODE, 0, src, 0, 5))
        out.append(Instruction(op.BPF_JMP | op.BPF_JCOND, 0, src, 3, 0))
    return out


# Encodings where LLVM 19's printer differs from the kernel's on purpose or
# knows no syntax; each entry: (predicate, why).
def _llvm_sweep_exception(insn: Instruction, llvm_text: str) -> Optional[str]:
    code = insn.opcode
    if llvm_text == "<unknown>":
        return "LLVM rejects an encoding that the kernel's printer still prints"
    if insn.is_atomic and insn.imm in (op.BPF_LOAD_ACQ, op.BPF_STORE_REL):
        return "load-acquire/store-release are newer than LLVM 19"
    if code & 0xE7 == op.BPF_LD | op.BPF_IND and insn.imm != 0:
        return "LLVM's ld_ind syntax (skb[rN]) has no immediate; disasm.c prints skb[rN + imm]"
    if code == op.BPF_JMP | op.BPF_CALL | op.BPF_X:
        return "LLVM's callx (indirect call) is not a kernel instruction; disasm.c prints it as a call"
    if insn.is_call and insn.src not in (0, 1):
        return "LLVM prints every call as 'call imm'; kfunc ids differ in meaning only"
    return None


def test_opcode_sweep_against_llvm(tmp_path: Path) -> None:
    """Every opcode byte with assorted fields: where LLVM 19 decodes it, we agree."""
    if shutil.which(OBJDUMP) is None:
        pytest.skip(f"{OBJDUMP} not installed")
    insns = _synthetic_instructions()
    data = encode(insns)
    asm = tmp_path / "sweep.s"
    lines = ["\t.text", "\t.globl sweep", "sweep:"]
    for start in range(0, len(data), 16):
        lines.append("\t.byte " + ",".join(str(b) for b in data[start:start + 16]))
    asm.write_text("\n".join(lines) + "\n")
    obj = tmp_path / "sweep.o"
    subprocess.run(["clang-19", "-target", "bpfel", "-c", str(asm), "-o", str(obj)], check=True)
    texts = objdump_text(obj)[".text"]
    agreed = 0
    mismatches = []
    for slot, insn in zip(slot_offsets(insns), insns):
        theirs = texts.get(slot)
        assert theirs is not None, slot
        ours = format_instruction(insn)
        if canonical(ours, wide_imm=insn.is_ld_imm64) == canonical(theirs, wide_imm=insn.is_ld_imm64):
            agreed += 1
            continue
        if ours == "unknown" or _llvm_sweep_exception(insn, theirs) is not None:
            continue
        mismatches.append(f"{insn}: ours {ours!r} llvm {theirs!r}")
    assert not mismatches, "\n".join(mismatches[:60])
    assert agreed > 500


# ---------------------------------------------------------------------------
# The kernel's own printer: verifier log at log_level 2
# ---------------------------------------------------------------------------

_BPF_PROG_LOAD = 5
_PROG_TYPE_SOCKET_FILTER = 1
_SYS_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "s390x": 351, "ppc64le": 361}


def _kernel_log(insns: Sequence[Instruction], prog_type: int = _PROG_TYPE_SOCKET_FILTER) -> Tuple[int, str]:
    """BPF_PROG_LOAD ``insns`` with log_level 2; return (errno or 0, verifier log).

    ``union bpf_attr`` for BPF_PROG_LOAD starts: prog_type u32, insn_cnt u32,
    insns u64, license u64, log_level u32, log_size u32, log_buf u64.
    """
    nr = _SYS_BPF.get(os.uname().machine)
    if nr is None:
        pytest.skip(f"no bpf() syscall number known for {os.uname().machine}")
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    code = encode(insns)
    code_buf = ctypes.create_string_buffer(code, len(code))
    license_buf = ctypes.create_string_buffer(b"GPL")
    log_size = 1 << 22
    log_buf = ctypes.create_string_buffer(log_size)
    attr = ctypes.create_string_buffer(128)
    ctypes.memmove(ctypes.addressof(attr), (ctypes.c_uint32 * 2)(prog_type, len(code) // 8), 8)
    ctypes.memmove(ctypes.addressof(attr) + 8, (ctypes.c_uint64 * 2)(
        ctypes.addressof(code_buf), ctypes.addressof(license_buf)), 16)
    ctypes.memmove(ctypes.addressof(attr) + 24, (ctypes.c_uint32 * 2)(2, log_size), 8)
    ctypes.memmove(ctypes.addressof(attr) + 32, (ctypes.c_uint64 * 1)(ctypes.addressof(log_buf)), 8)
    libc.syscall.restype = ctypes.c_long
    fd = libc.syscall(ctypes.c_long(nr), ctypes.c_long(_BPF_PROG_LOAD), attr, ctypes.c_uint(128))
    err = ctypes.get_errno() if fd < 0 else 0
    if fd >= 0:
        os.close(fd)
    return err, log_buf.value.decode(errors="replace")


_LOG_LINE = re.compile(r"^(\d+): \(([0-9a-f]{2})\) (.*?)\s*(?:;.*)?$")


def _log_instructions(log: str) -> Dict[int, Tuple[int, str]]:
    """slot -> (opcode, text) for every instruction line of a verifier log."""
    out: Dict[int, Tuple[int, str]] = {}
    for line in log.splitlines():
        m = _LOG_LINE.match(line)
        if m:
            slot, code, text = int(m.group(1)), int(m.group(2), 16), m.group(3)
            assert out.setdefault(slot, (code, text)) == (code, text), line
    return out


def I(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> Instruction:  # noqa: E743
    return Instruction(code, dst, src, off, imm)


def _verifier_program_main() -> List[Instruction]:
    """A socket filter touching every ALU, memory, atomic and jump form the verifier accepts."""
    A64, A32, J64, J32 = op.BPF_ALU64, op.BPF_ALU, op.BPF_JMP, op.BPF_JMP32
    K, X = op.BPF_K, op.BPF_X
    p: List[Instruction] = [
        I(A64 | op.BPF_MOV | X, 6, 1),                    # r6 = r1
        I(A64 | op.BPF_MOV | K, 0, imm=0),
        I(A64 | op.BPF_MOV | K, 2, imm=-7),
        I(A64 | op.BPF_MOV | K, 3, imm=11),
        I(op.BPF_STX | op.BPF_MEM | op.BPF_DW, 10, 0, -8),
        I(op.BPF_STX | op.BPF_MEM | op.BPF_DW, 10, 0, -16),
        I(op.BPF_ST | op.BPF_MEM | op.BPF_W, 10, off=-16, imm=5),
        I(op.BPF_ST | op.BPF_MEM | op.BPF_H, 10, off=-20, imm=-3),
        I(op.BPF_ST | op.BPF_MEM | op.BPF_B, 10, off=-24, imm=7),
        I(op.BPF_ST | op.BPF_MEM | op.BPF_DW, 10, off=-32, imm=0x1234),
        I(op.BPF_STX | op.BPF_MEM | op.BPF_W, 10, 3, -40),
        I(op.BPF_STX | op.BPF_MEM | op.BPF_H, 10, 3, -42),
        I(op.BPF_STX | op.BPF_MEM | op.BPF_B, 10, 3, -43),
        I(op.BPF_STX | op.BPF_MEM | op.BPF_DW, 10, 3, -56),
        I(op.BPF_LDX | op.BPF_MEM | op.BPF_DW, 4, 10, -8),
        I(op.BPF_LDX | op.BPF_MEM | op.BPF_W, 4, 10, -16),
        I(op.BPF_LDX | op.BPF_MEM | op.BPF_H, 4, 10, -20),
        I(op.BPF_LDX | op.BPF_MEM | op.BPF_B, 4, 10, -24),
        I(op.BPF_LDX | op.BPF_MEMSX | op.BPF_W, 4, 10, -16),
        I(op.BPF_LDX | op.BPF_MEMSX | op.BPF_H, 4, 10, -20),
        I(op.BPF_LDX | op.BPF_MEMSX | op.BPF_B, 4, 10, -24),
        I(op.BPF_LDX | op.BPF_MEM | op.BPF_W, 5, 6, 0),   # skb->len
    ]
    for cls in (A64, A32):
        for alu in (op.BPF_ADD, op.BPF_SUB, op.BPF_MUL, op.BPF_DIV, op.BPF_OR, op.BPF_AND,
                    op.BPF_LSH, op.BPF_RSH, op.BPF_MOD, op.BPF_XOR, op.BPF_MOV, op.BPF_ARSH):
            p.append(I(cls | alu | K, 2, imm=-3 if alu in (op.BPF_ADD, op.BPF_MOV, op.BPF_XOR) else 3))
            p.append(I(cls | alu | X, 2, 3))
        for alu in (op.BPF_DIV, op.BPF_MOD):
            p.append(I(cls | alu | K, 2, off=1, imm=-5))
            p.append(I(cls | alu | X, 2, 3, off=1))
        p.append(I(cls | op.BPF_NEG | K, 2))
        for width in (8, 16) + ((32,) if cls == A64 else ()):
            p.append(I(cls | op.BPF_MOV | X, 2, 3, off=width))
    for width in (16, 32, 64):
        p.append(I(A32 | op.BPF_END | op.BPF_TO_BE, 2, imm=width))
        p.append(I(A32 | op.BPF_END | op.BPF_TO_LE, 2, imm=width))
        p.append(I(A64 | op.BPF_END, 2, imm=width))
    p.append(I(op.LD_IMM64_OPCODE, 2, imm=0x123456789ABCDEF0))
    p.append(I(op.LD_IMM64_OPCODE, 3, imm=0xFFFFFFFF))
    atomic_imms = [op.BPF_ADD, op.BPF_OR, op.BPF_AND, op.BPF_XOR]
    atomic_imms += [a | op.BPF_FETCH for a in atomic_imms] + [op.BPF_XCHG, op.BPF_CMPXCHG]
    for size, off in ((op.BPF_DW, -8), (op.BPF_W, -16)):
        for imm in atomic_imms:
            p.append(I(op.BPF_STX | op.BPF_ATOMIC | size, 10, 2, off, imm))
    for size, off in ((op.BPF_DW, -8), (op.BPF_W, -16), (op.BPF_H, -20), (op.BPF_B, -24)):
        p.append(I(op.BPF_STX | op.BPF_ATOMIC | size, 4, 10, off, op.BPF_LOAD_ACQ))
        p.append(I(op.BPF_STX | op.BPF_ATOMIC | size, 10, 3, off, op.BPF_STORE_REL))
    p.append(I(A64 | op.BPF_MOV | K, 2, imm=3))
    p.append(I(A64 | op.BPF_MOV | K, 3, imm=-2))
    for cls in (J64, J32):
        for jmp in (op.BPF_JEQ, op.BPF_JGT, op.BPF_JGE, op.BPF_JSET, op.BPF_JNE, op.BPF_JSGT,
                    op.BPF_JSGE, op.BPF_JLT, op.BPF_JLE, op.BPF_JSLT, op.BPF_JSLE):
            p.append(I(cls | jmp | K, 2, off=0, imm=-1 if jmp in (op.BPF_JSGT, op.BPF_JGT) else 5))
            p.append(I(cls | jmp | X, 2, 3, off=0))
    p += [
        I(J64 | op.BPF_JA, off=0),
        I(J32 | op.BPF_JA, imm=0),
        I(J64 | op.BPF_JCOND, off=1),                       # may_goto pc+1
        I(A64 | op.BPF_MOV | K, 0, imm=1),
        I(op.CALL_OPCODE, imm=7),                           # bpf_get_prandom_u32
        I(op.CALL_OPCODE, imm=5),                           # bpf_ktime_get_ns
        I(op.BPF_LD | op.BPF_ABS | op.BPF_B, imm=0),
        I(op.BPF_LD | op.BPF_ABS | op.BPF_H, imm=2),
        I(op.BPF_LD | op.BPF_ABS | op.BPF_W, imm=4),
        I(A64 | op.BPF_MOV | K, 7, imm=1),
        I(op.BPF_LD | op.BPF_IND | op.BPF_B, src=7, imm=3),
        I(op.BPF_LD | op.BPF_IND | op.BPF_H, src=7, imm=-1),
        I(op.BPF_LD | op.BPF_IND | op.BPF_W, src=7, imm=0),
        I(A64 | op.BPF_MOV | K, 0, imm=0),
        I(op.EXIT_OPCODE),
    ]
    return p


def _verifier_program_calls() -> List[Instruction]:
    """A bpf-to-bpf call (``call pc+N``) next to a helper call.

    (A ``BPF_PSEUDO_FUNC`` callback would need BTF func_info; bpftool's
    xlated dump covers that form instead.)
    """
    A64, K = op.BPF_ALU64, op.BPF_K
    return [
        I(A64 | op.BPF_MOV | K, 1, imm=2),
        I(op.CALL_OPCODE, src=op.BPF_PSEUDO_CALL, imm=5),   # -> slot 7
        I(op.LD_IMM64_OPCODE, 2, imm=1 << 40),
        I(op.CALL_OPCODE, imm=7),                           # bpf_get_prandom_u32
        I(A64 | op.BPF_MOV | K, 0, imm=0),
        I(op.EXIT_OPCODE),
        I(A64 | op.BPF_MOV | op.BPF_X, 0, 1),               # slot 7: subprog
        I(A64 | op.BPF_ADD | K, 0, imm=1),
        I(op.EXIT_OPCODE),
    ]


@pytest.mark.kernel
@pytest.mark.parametrize("build", [_verifier_program_main, _verifier_program_calls],
                         ids=["main", "calls"])
def test_format_matches_kernel_verifier_log(build: object) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to load BPF programs")
    insns = build()  # type: ignore[operator]
    err, log = _kernel_log(insns)
    assert err == 0, f"kernel refused the test program ({errno.errorcode.get(err, err)}):\n{log[-3000:]}"
    printed = _log_instructions(log)
    compared = 0
    for slot, insn in zip(slot_offsets(insns), insns):
        assert slot in printed, f"verifier did not print slot {slot}: {format_instruction(insn)}"
        code, text = printed[slot]
        assert code == insn.opcode
        assert format_instruction(insn) == text, f"slot {slot}"
        compared += 1
    assert compared == len(insns)


# ---------------------------------------------------------------------------
# bpftool prog dump xlated: the kernel's rewritten programs, printed by
# bpftool's copy of disasm.c with its print_imm / print_call callbacks
# ---------------------------------------------------------------------------

_XLATED_LINE = re.compile(r"^\s*(\d+): (?:\(([0-9a-f]{2})\) )?(.*)$")


def _bpftool_predates(insn: Instruction) -> bool:
    """Instructions newer than Debian's bpftool 7.1 printer (cpu v4 and later).

    bpftool 7.1 ships the disasm.c of Linux 6.1: it prints ``BUG_..`` for
    byte swaps and sign-extending loads and drops the ``s``/``(s8)``
    modifiers of signed division and movsx.  The kernel verifier log test
    above covers those forms against the running kernel's own printer.
    """
    cls, opx = insn.cls, insn.op
    if insn.is_alu:
        if opx == op.BPF_END and cls == op.BPF_ALU64:
            return True
        if opx in (op.BPF_DIV, op.BPF_MOD) and insn.off == 1:
            return True
        if opx == op.BPF_MOV and insn.off != 0:
            return True
    if cls == op.BPF_LDX and insn.mode == op.BPF_MEMSX:
        return True
    if insn.is_atomic and insn.imm in (op.BPF_LOAD_ACQ, op.BPF_STORE_REL):
        return True
    if insn.opcode in (op.BPF_JMP32 | op.BPF_JA, op.BPF_JMP | op.BPF_JCOND):
        return True
    return False


def _bpftool_prog_ids(obj: Path, pin_dir: str) -> Optional[List[int]]:
    load = subprocess.run(["bpftool", "prog", "loadall", str(obj), pin_dir],
                          capture_output=True, text=True, check=False)
    if load.returncode != 0:
        return None
    ids = []
    for entry in sorted(os.listdir(pin_dir)):
        show = subprocess.run(["bpftool", "-j", "prog", "show", "pinned", os.path.join(pin_dir, entry)],
                              capture_output=True, text=True, check=True)
        ids.append(int(json.loads(show.stdout)["id"]))
    return ids


def _compare_xlated(prog_id: int, tmp: Path, seen_src: Optional[Set[int]] = None) -> Tuple[int, List[str]]:
    raw = tmp / f"xlated_{prog_id}.bin"
    subprocess.run(["bpftool", "prog", "dump", "xlated", "id", str(prog_id), "file", str(raw)],
                   check=True, capture_output=True)
    text = subprocess.run(["bpftool", "prog", "dump", "xlated", "id", str(prog_id)],
                          check=True, capture_output=True, text=True).stdout
    theirs: Dict[int, Tuple[Optional[int], str]] = {}
    for line in text.splitlines():
        m = _XLATED_LINE.match(line)
        if m:
            theirs[int(m.group(1))] = (int(m.group(2), 16) if m.group(2) else None, m.group(3))
    insns = decode(raw.read_bytes())
    assert sorted(theirs) == slot_offsets(insns)
    compared, problems = 0, []
    for slot, insn in zip(slot_offsets(insns), insns):
        code, their_text = theirs[slot]
        ours = format_instruction(insn)
        if _bpftool_predates(insn):
            continue
        assert code == insn.opcode, (slot, their_text)
        if seen_src is not None and insn.is_ld_imm64:
            seen_src.add(insn.src)
        if insn.is_pseudo_call:
            # In a JITed program's xlated image the kernel keeps the callee's
            # subprogram index in imm and the pc-relative offset in off;
            # bpftool prints off and appends the callee's kernel symbol
            # (call pc+49#bpf_prog_<tag>_name).  Compare the relative form.
            ours = format_instruction(insn.with_imm(insn.off))
            ok = their_text == ours or their_text.startswith(ours + "#")
        elif insn.is_call:
            # helper calls are rewritten to kernel addresses; bpftool names the
            # kernel symbol (call htab_map_update_elem#350800): compare the imm
            ok = their_text.rsplit("#", 1)[-1] == ours.rsplit("#", 1)[-1]
        else:
            ok = their_text == ours
        if not ok:
            problems.append(f"prog {prog_id} slot {slot}: ours {ours!r} bpftool {their_text!r}")
        compared += 1
    return compared, problems


@pytest.mark.kernel
def test_format_matches_bpftool_xlated(corpus: List[Path], tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to load BPF programs")
    if shutil.which("bpftool") is None:
        pytest.skip("bpftool not installed")
    if not os.path.ismount("/sys/fs/bpf"):
        subprocess.run(["mount", "-t", "bpf", "bpf", "/sys/fs/bpf"], check=True)
    ours_required = [p for p in corpus if p.name in ("prog_v3.bpfel.o", "prog_v4.bpfel.o")]
    others = [p for p in fixture_objects() if ".bpfeb." not in p.name]
    compared = 0
    problems: List[str] = []
    loaded_required = 0
    seen_src: Set[int] = set()
    # bpftool (libbpf) pins LIBBPF_PIN_BY_NAME maps under /sys/fs/bpf itself;
    # remove the pins this test makes there.
    pins_before = set(os.listdir("/sys/fs/bpf"))
    try:
        for obj in ours_required + others:
            loaded, n = _load_and_compare(obj, ours_required, tmp_path, seen_src, problems)
            compared += n
            loaded_required += int(loaded and obj in ours_required)
    finally:
        for name in set(os.listdir("/sys/fs/bpf")) - pins_before:
            path = os.path.join("/sys/fs/bpf", name)
            if os.path.isfile(path):
                os.unlink(path)
    assert not problems, "\n".join(problems[:40])
    assert loaded_required == 2 and compared > 150
    # plain constants, map[id:N], map[id:N][0]+OFF and subprog[+N] were all compared
    assert {0, op.BPF_PSEUDO_MAP_FD, op.BPF_PSEUDO_MAP_VALUE, op.BPF_PSEUDO_FUNC} <= seen_src, seen_src


def _load_and_compare(obj: Path, ours_required: List[Path], tmp_path: Path, seen_src: Set[int],
                      problems: List[str]) -> Tuple[bool, int]:
    """Load ``obj`` with bpftool and compare every program's xlated dump.

    Returns whether bpftool loaded it and how many instructions were compared."""
    compared = 0
    pin_dir = f"/sys/fs/bpf/purebpf_test_{uuid.uuid4().hex[:12]}"
    try:
        ids = _bpftool_prog_ids(obj, pin_dir)
        if ids is None:
            assert obj not in ours_required, f"bpftool could not load {obj}"
            return False, 0
        for prog_id in ids:
            n, bad = _compare_xlated(prog_id, tmp_path, seen_src)
            compared += n
            problems += [f"{obj.name}: {b}" for b in bad]
    finally:
        shutil.rmtree(pin_dir, ignore_errors=True)
    return True, compared


def test_disassemble_lines_follow_llvm_slots_and_opcodes(corpus: List[Path]) -> None:
    """Line prefixes are the slot numbers llvm-objdump shows, the (xx) the raw opcode byte."""
    checked = 0
    for path in all_objects(corpus):
        llvm = objdump_text(path)
        for name, data, byteorder in code_sections(path):
            insns = decode(data, byteorder)
            notes: List[Tuple[int, Instruction]] = []

            def annotate(slot: int, insn: Instruction, notes: List[Tuple[int, Instruction]] = notes) -> Optional[str]:
                notes.append((slot, insn))
                return f"note {slot}" if insn.is_exit else None

            lines = disassemble(insns, annotate=annotate)
            assert [s for s, _ in notes] == sorted(llvm[name]) == slot_offsets(insns)
            for line, (slot, insn) in zip(lines, notes):
                m = re.match(r"^ *(\d+): \(([0-9a-f]{2})\) (.*)$", line)
                assert m is not None, line
                assert int(m.group(1)) == slot
                assert int(m.group(2), 16) == data[slot * 8]
                body = m.group(3)
                if insn.is_exit:
                    assert body == f"exit  ; note {slot}"
                else:
                    assert ";" not in body
                assert body.split("  ; ")[0] == format_instruction(insn)
                assert line.split("  ; ")[0] == format_instruction(insn, index=slot)
                checked += 1
    assert checked > 400


def test_unknown_encodings_print_unknown() -> None:
    """Opcodes outside the ISA (per the kernel's opcode table) show as (xx) unknown."""
    for code in (0x0E, 0xE4, 0xF7, 0xFD, 0x96, 0x38 | op.BPF_LD, 0x01 | op.BPF_IMM, 0xE3):
        text = disassemble([Instruction(code, 1, 2, 3, 4)])[0]
        assert text == f"   0: ({code:02x}) unknown", text


@pytest.mark.kernel
def test_valid_opcodes_match_kernel() -> None:
    """VALID_OPCODES against the running kernel's opcode check, for all 256 bytes.

    Each opcode is loaded as ``insn; r0 = 0; exit`` with zero fields.  The
    kernel rejects a byte outside its instruction table with "unknown opcode
    XX"; LDX bytes pass that table (it holds verifier-internal LDX modes) and
    are rejected by the LDX field check instead.
    """
    if os.geteuid() != 0:
        pytest.skip("needs root to load BPF programs")
    internal = {op.BPF_ST | 0xC0}                   # nospec: verifier-inserted only
    newer = {op.BPF_JMP | op.BPF_JA | op.BPF_X}     # gotox: after Linux 6.18
    kernel_known = set()
    for code in range(256):
        first = [Instruction(code)]
        err, log = _kernel_log(first + [Instruction(op.BPF_ALU64 | op.BPF_MOV), Instruction(op.EXIT_OPCODE)])
        assert log, code
        if f"unknown opcode {code:02x}" in log or "BPF_LDX uses reserved fields" in log:
            continue
        kernel_known.add(code)
    ours = set(op.VALID_OPCODES)
    if op.BPF_JMP | op.BPF_JA | op.BPF_X in kernel_known:
        newer = set()
    assert ours - internal - newer == kernel_known


@pytest.mark.kernel
def test_kfunc_call_names_match_kernel_verifier_log() -> None:
    """kfunc calls: with a BTF-id -> name callback we print what the verifier prints."""
    if os.geteuid() != 0:
        pytest.skip("needs root to load BPF programs")
    if shutil.which("bpftool") is None:
        pytest.skip("bpftool not installed")
    if not Path("/sys/kernel/btf/vmlinux").exists():
        pytest.skip("kernel feature missing: /sys/kernel/btf/vmlinux")
    dump = subprocess.run(["bpftool", "btf", "dump", "file", "/sys/kernel/btf/vmlinux"],
                          capture_output=True, text=True, check=True).stdout
    funcs = {int(m.group(1)): m.group(2) for m in re.finditer(r"^\[(\d+)\] FUNC '(\w+)'", dump, re.M)}
    by_name = {name: num for num, name in funcs.items()}
    if "bpf_rcu_read_lock" not in by_name:
        pytest.skip("kernel feature missing: bpf_rcu_read_lock kfunc")
    insns = [
        Instruction(op.CALL_OPCODE, src=op.BPF_PSEUDO_KFUNC_CALL, imm=by_name["bpf_rcu_read_lock"]),
        Instruction(op.CALL_OPCODE, src=op.BPF_PSEUDO_KFUNC_CALL, imm=by_name["bpf_rcu_read_unlock"]),
        Instruction(op.BPF_ALU64 | op.BPF_MOV),
        Instruction(op.EXIT_OPCODE),
    ]
    err, log = _kernel_log(insns)
    assert err == 0, log[-2000:]
    printed = _log_instructions(log)
    for slot, insn in enumerate(insns):
        assert format_instruction(insn, kfunc_name=funcs.get) == printed[slot][1]
    # without a name source the kernel's fallback word is used
    assert format_instruction(insns[0]) == f"call kernel-function#{insns[0].imm}"


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 255), st.integers(0, 15), st.integers(0, 15),
       st.integers(-0x8000, 0x7FFF), st.integers(-(1 << 31), (1 << 32) - 1), st.integers(0, (1 << 64) - 1))
def test_formatter_total_on_any_fields(code: int, dst: int, src: int, off: int, imm: int, wide: int) -> None:
    """Any field values format to one line; unknown exactly for opcodes outside the ISA."""
    insn = Instruction(code, dst, src, off, wide if code == op.LD_IMM64_OPCODE else imm)
    text = format_instruction(insn)
    assert text and "\n" not in text and "None" not in text
    if not op.is_valid_opcode(code):
        assert text == "unknown"
    line = disassemble([insn])[0]
    assert line == f"   0: ({code:02x}) {text}"


def test_jump_targets_match_llvm_objdump(corpus: List[Path]) -> None:
    """slot + 1 + jump_offset() is the branch target llvm-objdump resolves (<sym+0xNN>)."""
    checked = 0
    for path in all_objects(corpus):
        out = subprocess.run([OBJDUMP, "-d", "--mcpu=v4", "--no-show-raw-insn", str(path)],
                             capture_output=True, text=True, check=True).stdout
        symbols: Dict[Tuple[str, str], int] = {}
        targets: Dict[Tuple[str, int], Tuple[str, int]] = {}
        section = ""
        for line in out.splitlines():
            m = re.match(r"Disassembly of section (.*):$", line)
            if m:
                section = m.group(1)
            m = re.match(r"^([0-9a-f]{16}) <(.+)>:$", line)
            if m:
                symbols[(section, m.group(2))] = int(m.group(1), 16)
            m = re.match(r"\s*(\d+):\t.*(?:goto|gotol|may_goto) [+-]0x[0-9a-f]+ <(.+)\+0x([0-9a-f]+)>$", line)
            if m:
                targets[(section, int(m.group(1)))] = (m.group(2), int(m.group(3), 16))
        for name, data, byteorder in code_sections(path):
            insns = decode(data, byteorder)
            for slot, insn in zip(slot_offsets(insns), insns):
                if (name, slot) not in targets:
                    continue
                sym, off = targets[(name, slot)]
                jump = insn.jump_offset()
                assert jump is not None, insn
                # llvm-objdump prints targets before the section start modulo 2**64
                addr = (symbols[(name, sym)] + off) & ((1 << 64) - 1)
                if addr >= 1 << 63:
                    addr -= 1 << 64
                assert addr // 8 == slot + 1 + jump, (path.name, name, slot)
                checked += 1
    assert checked > 100


def test_str_is_the_kernel_syntax() -> None:
    insn = Instruction(op.BPF_LDX | op.BPF_MEM | op.BPF_W, 1, 2, 8)
    assert str(insn) == format_instruction(insn)


_FIXTURE_CODE = [data for p in fixture_objects() for _, data, _ in code_sections(p)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_fixture_code_decodes_and_disassembles(data: st.DataObject) -> None:
    """Real code with random byte flips: decode raises only InstructionError, formatting never fails."""
    if not _FIXTURE_CODE:
        pytest.skip("no fixture objects yet")
    code = bytearray(data.draw(st.sampled_from(_FIXTURE_CODE)))
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(code) - 1))
        code[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(code)))
    blob = bytes(code[:cut])
    byteorder = data.draw(st.sampled_from(["little", "big"]))
    try:
        insns = decode(blob, byteorder, file="mutated.o", section="prog")
    except InstructionError as err:
        assert err.file == "mutated.o" and err.section == "prog" and err.offset is not None
        return
    lines = disassemble(insns)
    assert len(lines) == len(insns)
    assert encode(insns, byteorder) == blob
