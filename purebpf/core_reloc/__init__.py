"""CO-RE: relocate BPF programs for a target kernel's types, and explain every step.

Compile Once, Run Everywhere: clang records, in ``.BTF.ext``, each instruction
whose constant depends on a kernel type layout (a field offset, a size, an
enum value, whether a type exists...).  This package recomputes those
constants against a *target* BTF -- the running kernel's, or a BTF file -- with
libbpf's rules (``tools/lib/bpf/relo_core.c``), and produces patched copies of
the instructions together with a readable explanation of every decision.

Pure: no syscalls, no mutation of inputs.  The only I/O is reading BTF files
in :func:`load_target_btf`.

Public API::

    relocate_object(spec, target=None, *, programs=None) -> ObjectRelocation
    compute_fixup(local_btf, target, relo, insn, *, program=..., insn_index=...) -> CoreExplanation
    apply_fixup(insns, explanation) -> tuple of instructions
    load_target_btf(path=None) -> TargetBtf
    format_explanation(explanation) -> str
"""

from __future__ import annotations

from purebpf.core_reloc.engine import CoreFixupError, apply_fixup, compute_fixup
from purebpf.core_reloc.explain import (
    CandidateReport,
    CoreExplanation,
    TargetLocation,
    format_explanation,
)
from purebpf.core_reloc.relocate import ObjectRelocation, RelocatedProgram, relocate_object
from purebpf.core_reloc.target import Candidate, TargetBtf, load_target_btf

__all__ = [
    "relocate_object",
    "ObjectRelocation",
    "RelocatedProgram",
    "compute_fixup",
    "apply_fixup",
    "CoreFixupError",
    "CoreExplanation",
    "CandidateReport",
    "TargetLocation",
    "format_explanation",
    "load_target_btf",
    "TargetBtf",
    "Candidate",
]
