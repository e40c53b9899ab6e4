"""Target BTF for CO-RE: the running kernel (vmlinux + module BTFs) or a given file.

Candidate types are found by *essential name* (the name without a
``___flavor`` suffix) and a compatible kind, as libbpf's
``bpf_core_find_cands``: vmlinux (or the user-given BTF) is searched first; only
if it has no candidate at all are kernel modules searched (their own types
only).  With a user-given BTF, modules are never consulted.

The search is lazy: flavoured names are located by scanning the string
section bytes, and types are looked up through the BTF's name index, so no
relocation ever decodes all of vmlinux.  Loading the kernel's BTF files is the
only I/O of the CO-RE package and lives in :func:`load_target_btf`.
"""

from __future__ import annotations

import logging
import os
import weakref
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from purebpf.btf import Btf
from purebpf.btf.types import BtfKind, BtfType
from purebpf.core_reloc._walk import SpecError, essential, kind_core_compat
from purebpf.errors import PurebpfError

__all__ = ["TargetBtf", "Candidate", "load_target_btf"]

SYSFS_BTF = "/sys/kernel/btf"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    """A target type whose essential name and kind fit a local type."""

    source: str    # "vmlinux", a module name, or the BTF file's name
    btf: "Btf"
    type_id: int


class TargetBtf:
    """One main BTF plus, optionally, split module BTFs loaded on demand."""

    def __init__(self, main: "Btf", *, name: str = "vmlinux",
                 modules: Sequence[str] = (), module_dir: str = SYSFS_BTF,
                 override: bool = True) -> None:
        self.main = main
        self.main_name = name
        self.override = override
        self._module_names = tuple(modules)
        self._module_dir = module_dir
        self._modules: Optional[List[Tuple[str, "Btf"]]] = None
        self._cache: Dict[Tuple[str, int], Tuple[Candidate, ...]] = {}

    @classmethod
    def from_btf(cls, btf: "Btf", name: Optional[str] = None) -> "TargetBtf":
        """Wrap a single BTF (no modules searched), like libbpf's btf_custom_path."""
        return cls(btf, name=name or os.path.basename(str(btf.name)) or "target", override=True)

    # -- modules ------------------------------------------------------------
    def modules(self) -> List[Tuple[str, "Btf"]]:
        """Module BTFs (split on the main BTF), parsed on first use."""
        if self._modules is None:
            from purebpf.btf import Btf

            loaded: List[Tuple[str, "Btf"]] = []
            for mod in self._module_names:
                path = os.path.join(self._module_dir, mod)
                try:
                    loaded.append((mod, Btf.from_file(path, base=self.main)))
                except PurebpfError as exc:
                    # A module whose BTF cannot be read simply offers no candidates.
                    log.warning("ignoring BTF of kernel module %s: %s", mod, exc)
            self._modules = loaded
        return self._modules

    # -- candidate search -----------------------------------------------------
    def candidates(self, local_type: BtfType) -> Tuple[Candidate, ...]:
        """All target types with the local type's essential name and a compatible kind."""
        ess = essential(local_type.name)
        kind_class = BtfKind.ENUM if local_type.kind == BtfKind.ENUM64 else local_type.kind
        key = (ess, int(kind_class))
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        found = _search(self.main_name, self.main, ess, local_type, own_only=False)
        if not found and not self.override:
            for mod_name, mod_btf in self.modules():
                found.extend(_search(mod_name, mod_btf, ess, local_type, own_only=True))
        result = tuple(found)
        self._cache[key] = result
        return result


def _string_section(btf: "Btf") -> bytes:
    hdr = btf.header
    start = hdr.hdr_len + hdr.str_off
    return bytes(btf.raw[start:start + hdr.str_len])


#: Per-BTF index: essential name -> flavoured names (``task_struct`` ->
#: ``["task_struct___2"]``), built by one scan of the string section for "___".
_FLAVOR_INDEX: "weakref.WeakKeyDictionary[Btf, Dict[str, List[str]]]" = weakref.WeakKeyDictionary()


def flavor_index(btf: "Btf") -> Dict[str, List[str]]:
    """Every own string of ``btf`` that carries a ``___flavor``, grouped by essential name.

    vmlinux has only a few dozen such strings among ~100k, so a single
    ``bytes.find`` pass (C speed) is cheaper than any per-name scan.
    """
    cached = _FLAVOR_INDEX.get(btf)
    if cached is not None:
        return cached
    strings = _string_section(btf)
    index: Dict[str, List[str]] = {}
    pos = strings.find(b"___")
    while pos >= 0:
        begin = strings.rfind(b"\0", 0, pos) + 1
        end = strings.find(b"\0", pos)
        if end < 0:
            end = len(strings)
        name = strings[begin:end].decode("utf-8", "replace")
        ess = essential(name)
        if ess != name and name not in index.get(ess, ()):
            index.setdefault(ess, []).append(name)
        pos = strings.find(b"___", end)
    _FLAVOR_INDEX[btf] = index
    return index


def names_with_essential(btf: "Btf", ess: str) -> List[str]:
    """Names in ``btf`` whose essential name is ``ess``: ``ess`` itself and its flavours."""
    return [ess] + flavor_index(btf).get(ess, [])


def _search(source: str, btf: "Btf", ess: str, local_type: BtfType, *, own_only: bool) -> List[Candidate]:
    if not ess:
        return []
    ids: List[int] = []
    own = btf.ids()
    try:
        for name in names_with_essential(btf, ess):
            ids.extend(btf.find_by_name(name))
    except PurebpfError as exc:
        raise SpecError(f"target BTF {source}: cannot look up `{ess}`: {exc}") from exc
    out: List[Candidate] = []
    for tid in sorted(set(ids)):
        if own_only and tid not in own:
            continue
        try:
            t = btf[tid]
        except PurebpfError as exc:
            raise SpecError(f"target BTF {source}: type {tid} cannot be decoded: {exc}") from exc
        if kind_core_compat(t, local_type) and t.name and essential(t.name) == ess:
            out.append(Candidate(source, btf, tid))
    return out


def load_target_btf(path: Optional[str] = None) -> TargetBtf:
    """The target BTF: ``path`` (raw BTF, e.g. a BTFHub archive, or an ELF with
    ``.BTF``) or, by default, the running kernel's vmlinux plus its module BTFs
    from /sys/kernel/btf (modules parsed only if ever needed)."""
    from purebpf.btf import Btf

    if path is not None:
        return TargetBtf(Btf.from_file(path), name=os.path.basename(path), override=True)
    main = Btf.load_vmlinux()
    try:
        mods = sorted(n for n in os.listdir(SYSFS_BTF) if n != "vmlinux")
    except OSError:
        mods = []
    return TargetBtf(main, name="vmlinux", modules=mods, override=False)
