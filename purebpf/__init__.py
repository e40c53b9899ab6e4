"""purebpf: a pure-Python eBPF loader.

Read a compiled BPF object (``*.bpf.o``), relocate it for the running kernel
with CO-RE, and inspect it -- with no libbpf, no LLVM and no kernel headers.
"""

from __future__ import annotations

from purebpf.errors import (
    AttachError,
    BtfError,
    BtfLoadError,
    MapKeyError,
    StateError,
    VerifierError,
    BtfExtError,
    CoreRelocationError,
    ElfError,
    InstructionError,
    KernelError,
    NotFoundError,
    NotSupportedError,
    ParseError,
    PurebpfError,
    RelocationError,
)

__version__ = "0.1.0"

# Public names imported on first use (PEP 562), so `import purebpf` stays cheap
# and a command pays only for the parts it touches.
_LAZY = {
    "ObjectSpec": "purebpf.spec",
    "ProgramSpec": "purebpf.spec",
    "MapSpec": "purebpf.spec",
    "DataSectionSpec": "purebpf.spec",
    "VariableSpec": "purebpf.spec",
    "ExternSpec": "purebpf.spec",
    "Relocation": "purebpf.spec",
    "RelocationKind": "purebpf.spec",
    "Btf": "purebpf.btf",
    "BtfExt": "purebpf.btf",
    "Instruction": "purebpf.insn",
    "relocate_object": "purebpf.core_reloc",
    "load_target_btf": "purebpf.core_reloc",
    "CoreExplanation": "purebpf.core_reloc",
    "open_object": "purebpf.object",
    "OpenObject": "purebpf.object",
    "Object": "purebpf.object",
    "Program": "purebpf.program",
    "Link": "purebpf.link",
    "attach_program": "purebpf.link",
    "Map": "purebpf.maps",
    "GlobalData": "purebpf.maps",
    "RingBuffer": "purebpf.maps",
    "RecordBatch": "purebpf.maps",
    "PerfBuffer": "purebpf.maps",
    "ProgType": "purebpf.uapi",
    "AttachType": "purebpf.uapi",
    "MapType": "purebpf.uapi",
}


def __getattr__(name: str) -> object:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'purebpf' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> "list[str]":
    return sorted(set(globals()) | set(_LAZY))

__all__ = [
    "__version__",
    "ObjectSpec",
    "ProgramSpec",
    "MapSpec",
    "DataSectionSpec",
    "VariableSpec",
    "ExternSpec",
    "Relocation",
    "RelocationKind",
    "Btf",
    "BtfExt",
    "Instruction",
    "relocate_object",
    "load_target_btf",
    "CoreExplanation",
    "open_object",
    "OpenObject",
    "Object",
    "Program",
    "Link",
    "attach_program",
    "Map",
    "GlobalData",
    "RingBuffer",
    "RecordBatch",
    "PerfBuffer",
    "ProgType",
    "AttachType",
    "MapType",
    "PurebpfError",
    "ParseError",
    "ElfError",
    "BtfError",
    "BtfExtError",
    "InstructionError",
    "NotFoundError",
    "RelocationError",
    "CoreRelocationError",
    "NotSupportedError",
    "KernelError",
    "VerifierError",
    "BtfLoadError",
    "AttachError",
    "MapKeyError",
    "StateError",
]
