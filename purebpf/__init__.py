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

__all__ = [
    "__version__",
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
