"""Pure parts of loading an object into the kernel (no bpf() calls here).

* :mod:`purebpf.loader.btf_fixup` -- the object's BTF as it must be sent to
  BPF_BTF_LOAD (DATASEC sizes/offsets, extern variables, sanitised kinds).
* :mod:`purebpf.loader.linker` -- one program's final instruction stream:
  subprograms appended, calls and ld_imm64 references resolved, func_info and
  line_info rebased.
* :mod:`purebpf.loader.kconfig` -- ``extern ... __kconfig`` values and the
  ``.kconfig`` map contents.
* :mod:`purebpf.loader.ksyms` -- ``extern ... __ksym`` values from
  /proc/kallsyms and vmlinux BTF.

Submodules are imported on demand so that ``import purebpf.loader`` is cheap.
"""

from __future__ import annotations

__all__ = ["btf_fixup", "linker", "kconfig", "ksyms"]
