"""Reading BPF ELF objects (``*.bpf.o``) into :class:`purebpf.spec.ObjectSpec`.

Modules, in pipeline order:

- :mod:`.container`   -- ELF header checks, sections, symbols, relocation entries
- :mod:`.programs`    -- functions of executable sections, decoded to instructions
- :mod:`.maps`        -- ``.maps`` (BTF-defined) and legacy ``maps`` definitions
- :mod:`.globals`     -- data sections, their variables, and externs
- :mod:`.relocations` -- classification of program relocations
- :mod:`.reader`      -- the pipeline that assembles the ObjectSpec
- :mod:`.section_defs` -- section name -> program type table

Nothing is imported here eagerly, so ``import purebpf.elf`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["read_object"]


def __getattr__(name: str) -> Any:
    if name == "read_object":
        from purebpf.elf.reader import read_object

        return read_object
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
