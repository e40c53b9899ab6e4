"""Values of ``extern ... __ksym`` symbols: kernel variables and kfuncs.

Three kinds of ksym extern exist (libbpf ``bpf_object__resolve_externs``):

* a *typeless* variable, ``extern const void sym __ksym;``: its address, read
  from ``/proc/kallsyms`` (``ADDRESS TYPE NAME [module]`` lines; a name with
  two different addresses is ambiguous and refused);
* a *typed* variable, ``extern const struct rq runqueues __ksym;``: the id of
  the BTF VAR of that name in vmlinux, which the verifier uses to type the
  pointer (``BPF_PSEUDO_BTF_ID``);
* a *kfunc*, ``extern struct task_struct *bpf_task_acquire(...) __ksym;``:
  the id of the BTF FUNC of that name in vmlinux (``BPF_PSEUDO_KFUNC_CALL``).

A non-weak extern that cannot be found raises ``NotFoundError("ksym",
name)``; a weak one resolves to ``None`` (address 0 / a zeroed call).
Only vmlinux BTF is searched (module BTF is not used).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, Iterable, Mapping, Optional

from purebpf.errors import NotFoundError, RelocationError
from purebpf.loader.linker import KfuncTarget, KsymTarget, MapFdLookup

if TYPE_CHECKING:  # pragma: no cover
    from purebpf.btf import Btf
    from purebpf.spec import ExternSpec

__all__ = ["read_kallsyms", "KsymResolver", "KernelResolver"]

KALLSYMS = "/proc/kallsyms"


def read_kallsyms(names: Optional[Iterable[str]] = None, *, path: str = KALLSYMS,
                  text: Optional[str] = None) -> Dict[str, int]:
    """``name -> address`` from /proc/kallsyms (or ``text``).

    With ``names``, only those symbols are collected (much faster than the
    whole file), and a wanted name listed twice with different addresses
    raises :class:`RelocationError` (libbpf: "resolution is ambiguous").
    Without ``names`` every symbol is returned, the first address of a
    duplicated (static) name winning.  Without root, kallsyms shows zero
    addresses, which are returned as is.
    """
    if text is None:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError as exc:
            raise NotFoundError("kallsyms file", path, detail=exc.strerror) from exc
    out: Dict[str, int] = {}
    if names is None:
        lines: Iterable[str] = text.splitlines()
        for line in lines:
            _add(out, line, strict=False)
        return out
    wanted = sorted(set(names), key=len, reverse=True)
    if not wanted:
        return out
    pattern = r"^[0-9a-fA-F]+ \S (?:" + "|".join(re.escape(n) for n in wanted) + r")(?=\s|$)"
    for m in re.finditer(pattern, text, re.MULTILINE):
        _add(out, m.group(0))
    return out


def _add(out: Dict[str, int], line: str, *, strict: bool = True) -> None:
    parts = line.split()
    if len(parts) < 3:
        return
    try:
        addr = int(parts[0], 16)
    except ValueError:
        return
    name = parts[2]
    prev = out.get(name)
    if prev is not None and prev != addr:
        if not strict:
            return
        raise RelocationError(f"extern (ksym) {name!r}: resolution is ambiguous: "
                              f"{prev:#x} or {addr:#x}")
    out[name] = addr


def _referenced(btf: "Btf", type_id: int) -> int:
    """The type a VAR or FUNC refers to (its C type / its FUNC_PROTO)."""
    from purebpf.btf.types import Func, Var

    t = btf[type_id]
    if not isinstance(t, (Var, Func)):
        raise RelocationError(f"BTF type {type_id} ({t.kind.name}) is neither VAR nor FUNC")
    return t.type


@dataclass
class KsymResolver:
    """Resolve ksym externs against vmlinux BTF and kallsyms, lazily.

    ``vmlinux`` defaults to ``/sys/kernel/btf/vmlinux`` (loaded on first
    need); ``kallsyms_path`` to /proc/kallsyms.
    """

    vmlinux: "Optional[Btf]" = None
    kallsyms_path: str = KALLSYMS
    #: the object's BTF: when given, typed ksyms and kfuncs are checked for
    #: type compatibility with the kernel's (libbpf ``bpf_core_types_are_compat``)
    local_btf: "Optional[Btf]" = None
    _addresses: Dict[str, int] = field(default_factory=dict)

    def _check_compat(self, ext: "ExternSpec", what: str, local_id: int, targ_id: int) -> None:
        if self.local_btf is None:
            return
        from purebpf.core_reloc._compat import types_are_compat
        from purebpf.core_reloc._walk import SpecError

        try:
            ok, why = types_are_compat(self.local_btf, local_id, self._btf(), targ_id)
        except SpecError as exc:
            raise RelocationError(f"extern ({what}) {ext.name!r}: {exc.reason}") from exc
        if not ok:
            raise RelocationError(f"extern ({what}) {ext.name!r}: incompatible types: local "
                                  f"[{local_id}] vs kernel [{targ_id}]: {why}")

    def _btf(self) -> "Btf":
        if self.vmlinux is None:
            from purebpf.btf import Btf

            self.vmlinux = Btf.load_vmlinux()
        return self.vmlinux

    def address(self, name: str) -> Optional[int]:
        """The kallsyms address of ``name``, or None if it is not listed."""
        if name not in self._addresses:
            found = read_kallsyms([name], path=self.kallsyms_path)
            if name not in found:
                return None
            self._addresses.update(found)
        return self._addresses[name]

    def preload(self, names: Iterable[str]) -> None:
        """Read the addresses of several symbols in one pass over kallsyms."""
        wanted = [n for n in names if n not in self._addresses]
        if wanted:
            self._addresses.update(read_kallsyms(wanted, path=self.kallsyms_path))

    def btf_id(self, name: str, kind: str) -> Optional[int]:
        """Id of the vmlinux BTF type ``name`` of ``kind`` ("VAR" or "FUNC")."""
        from purebpf.btf import BtfKind

        ids = self._btf().find_by_name(name, BtfKind[kind])
        return ids[0] if ids else None

    def ksym_var(self, ext: "ExternSpec") -> Optional[KsymTarget]:
        if ext.typeless:
            addr = self.address(ext.name)
            if addr is None:
                if ext.weak:
                    return None
                raise NotFoundError("ksym", ext.name, detail="not in /proc/kallsyms")
            return KsymTarget(address=addr)
        tid = self.btf_id(ext.name, "VAR")
        if tid is None:
            if ext.weak:
                return None
            raise NotFoundError("ksym", ext.name, detail="no BTF VAR of that name in vmlinux")
        if self.local_btf is not None:
            local = self.local_btf.skip_modifiers(_referenced(self.local_btf, ext.type_id))
            target = self._btf().skip_modifiers(_referenced(self._btf(), tid))
            self._check_compat(ext, "var ksym", local, target)
        return KsymTarget(btf_id=tid)

    def kfunc(self, ext: "ExternSpec") -> Optional[KfuncTarget]:
        tid = self.btf_id(ext.name, "FUNC")
        if tid is None:
            if ext.weak:
                return None
            raise NotFoundError("ksym", ext.name, detail="no kfunc of that name in vmlinux BTF")
        if self.local_btf is not None:
            local = _referenced(self.local_btf, ext.type_id)
            self._check_compat(ext, "func ksym", local, _referenced(self._btf(), tid))
        return KfuncTarget(btf_id=tid)


@dataclass
class KernelResolver(MapFdLookup):
    """The linker's :class:`~purebpf.loader.linker.Resolver` for a real load:
    map fds from the caller, ksyms from the running kernel."""

    maps: Mapping[str, int]
    data_maps: Mapping[str, int]
    ksyms: KsymResolver = field(default_factory=KsymResolver)

    def ksym_var(self, ext: "ExternSpec") -> Optional[KsymTarget]:
        return self.ksyms.ksym_var(ext)

    def kfunc(self, ext: "ExternSpec") -> Optional[KfuncTarget]:
        return self.ksyms.kfunc(ext)
