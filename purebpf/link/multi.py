"""Multi-probes: one link placing a program at many functions at once.

* ``SEC("uprobe.multi/PATH:PATTERN")``, ``uretprobe.multi``, ``uprobe.session``
  (Linux 6.6 / 6.13): ``BPF_LINK_CREATE`` with ``BPF_TRACE_UPROBE_MULTI`` (or
  ``BPF_TRACE_UPROBE_SESSION``) and ``attr.uprobe_multi`` = the file's path,
  an array of *file offsets* (one per function), optional per-offset
  cookies, ``BPF_F_UPROBE_MULTI_RETURN`` (1) for return probes and a pid
  filter (0: every process).  ``PATTERN`` is a shell-style glob (``*``,
  ``?``) matched against the function symbols of the file's ``.symtab`` and
  ``.dynsym``, as libbpf's ``bpf_program__attach_uprobe_multi`` does; each
  match becomes a file offset (see :func:`~purebpf.link.uprobe.resolve_symbol_offset`)
  and duplicates -- a function in both tables, aliases -- are probed once.
* ``SEC("kprobe.multi/PATTERN")``, ``kretprobe.multi``, ``kprobe.session``
  (Linux 5.18 / 6.10): ``BPF_TRACE_KPROBE_MULTI`` (or ``BPF_TRACE_KPROBE_SESSION``)
  with ``attr.kprobe_multi.syms`` = kernel function names and
  ``BPF_F_KPROBE_MULTI_RETURN`` (1).  A glob is matched against tracefs's
  ``available_filter_functions`` (the functions fprobe can attach to), or
  ``/proc/kallsyms`` text symbols when that file cannot be read.  The
  kernel implements these links with fprobe (``CONFIG_FPROBE``); without it
  ``BPF_LINK_CREATE`` fails with EOPNOTSUPP, which is reported as such.
"""

from __future__ import annotations

import errno
import os
import re
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

from purebpf.errors import AttachError, KernelError
from purebpf.link._common import check_type
from purebpf.link._link import Link, attach_error
from purebpf.uapi import AttachType, ProgType

if TYPE_CHECKING:  # pragma: no cover
    from purebpf.program import Program

__all__ = ["attach_uprobe_multi", "attach_kprobe_multi", "glob_to_regex", "resolve_function_offsets",
           "resolve_kernel_functions", "UPROBE_MULTI_RETURN", "KPROBE_MULTI_RETURN"]

#: ``BPF_F_UPROBE_MULTI_RETURN``: run at function return
UPROBE_MULTI_RETURN = 1
#: ``BPF_F_KPROBE_MULTI_RETURN``
KPROBE_MULTI_RETURN = 1

#: symbol types of functions; pyelftools names ``STT_GNU_IFUNC`` (10) ``STT_LOOS``
_FUNCTION_TYPES = ("STT_FUNC", "STT_LOOS", "STT_GNU_IFUNC")

FPROBE_MISSING_HINT = ("the kernel cannot make kprobe-multi links (no CONFIG_FPROBE, which needs "
                       "ftrace); attach single kprobes instead where the kernel has kprobes")


def glob_to_regex(pattern: str) -> "re.Pattern[str]":
    """A shell-style glob with ``*`` and ``?`` (libbpf's ``glob_match``) as a regex."""
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern]
    return re.compile("".join(parts) + r"\Z", re.DOTALL)


def _is_glob(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


def resolve_function_offsets(binary: str, pattern: str) -> Dict[str, int]:
    """Function symbols of ELF file ``binary`` matching glob ``pattern`` -> file offset.

    Defined ``STT_FUNC`` and ``STT_GNU_IFUNC`` symbols of ``.symtab`` then
    ``.dynsym``; a name found in both keeps its first offset.  Raises
    :class:`~purebpf.errors.AttachError` when the file cannot be read or
    nothing matches.
    """
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    from purebpf.link.uprobe import elf_symbol_errors

    match = glob_to_regex(pattern).match
    found: Dict[str, int] = {}
    with elf_symbol_errors(binary), open(binary, "rb") as f:
        elf = ELFFile(f)
        sections = [elf.get_section(i) for i in range(elf.num_sections())]
        for secname in (".symtab", ".dynsym"):
            table = elf.get_section_by_name(secname)
            if not isinstance(table, SymbolTableSection):
                continue
            for sym in table.iter_symbols():
                name = sym.name
                if not name or name in found or not match(name):
                    continue
                if sym["st_info"]["type"] not in _FUNCTION_TYPES:
                    continue
                shndx = sym["st_shndx"]
                if not isinstance(shndx, int) or shndx == 0 or shndx >= len(sections):
                    continue  # undefined (an import) or special
                sec = sections[shndx]
                offset = int(sym["st_value"]) - int(sec["sh_addr"]) + int(sec["sh_offset"])
                if sym["st_value"] and offset >= 0:
                    found[name.split("@", 1)[0]] = offset
    if not found:
        raise AttachError(errno.ENOENT, "attach", f"{binary}:{pattern}",
                          hint=f"no function of {binary} matches {pattern!r}")
    return found


def _unique_offsets(functions: Dict[str, int]) -> Tuple[List[str], List[int]]:
    """Names and offsets, one per distinct offset (aliases are probed once), by offset."""
    by_offset: Dict[int, str] = {}
    for name, offset in functions.items():
        by_offset.setdefault(offset, name)
    offsets = sorted(by_offset)
    return [by_offset[o] for o in offsets], offsets


def _section_kind(program: "Program") -> str:
    section = program.spec.section.lstrip("?") if program.spec is not None else ""
    return section.split("/", 1)[0]


def _expects(program: "Program", attach_type: AttachType) -> bool:
    eat = program.expected_attach_type
    return eat is not None and int(eat) == int(attach_type)


def attach_uprobe_multi(program: "Program", binary: Optional[str] = None, pattern: Optional[str] = None, *,
                        symbols: Sequence[str] = (), offsets: Sequence[int] = (),
                        cookies: Sequence[int] = (), ref_ctr_offsets: Sequence[int] = (),
                        pid: int = -1, retprobe: Optional[bool] = None,
                        session: Optional[bool] = None) -> Link:
    """Attach ``program`` at many functions of ``binary`` with one uprobe-multi link.

    The functions are ``pattern`` (a glob over the file's function
    symbols), ``symbols`` (exact names) or raw file ``offsets``; by default
    ``PATH:PATTERN`` comes from the section (``uprobe.multi/PATH:PATTERN``).
    ``cookies`` (one per function, in the order given -- sorted by file
    offset for a pattern) are read back with ``bpf_get_attach_cookie``.
    ``pid`` >= 0 fires only in that process.
    """
    kind_name = _section_kind(program)
    if retprobe is None:
        retprobe = kind_name.startswith("uretprobe")
    if session is None:
        session = _expects(program, AttachType.TRACE_UPROBE_SESSION)
    if binary is None:
        target_text = program.attach_target or ""
        if ":" not in target_text:
            raise AttachError(errno.EINVAL, "attach", target_text or "uprobe.multi",
                              detail=f"program {program.name!r}: no binary given "
                                     "(section uprobe.multi/PATH:PATTERN, or binary= and pattern=)")
        binary, sec_pattern = target_text.split(":", 1)
        if pattern is None and not symbols and not offsets:
            pattern = sec_pattern
    kind = "uprobe.session" if session else "uretprobe.multi" if retprobe else "uprobe.multi"
    what = pattern or (",".join(symbols) if symbols else ",".join(hex(o) for o in offsets))
    target = f"{binary}:{what}"
    check_type(program, (ProgType.KPROBE,), kind, target)
    if not os.path.isabs(binary) and os.sep not in binary:
        import shutil

        binary = shutil.which(binary) or binary
    names: List[str] = []
    if pattern is not None:
        names, file_offsets = _unique_offsets(resolve_function_offsets(binary, pattern))
    elif symbols:
        from purebpf.link.uprobe import resolve_symbol_offset
        from purebpf.errors import NotFoundError

        file_offsets = []
        for name in symbols:
            try:
                file_offsets.append(resolve_symbol_offset(binary, name))
            except NotFoundError as exc:
                raise AttachError(errno.ENOENT, "attach", f"{binary}:{name}", hint=f"no symbol {name!r} in {binary}",
                                  detail=f"{kind} program {program.name!r}") from exc
        names = list(symbols)
    elif offsets:
        file_offsets = list(offsets)
    else:
        raise AttachError(errno.EINVAL, "attach", target, detail=f"{kind} program {program.name!r}: "
                          "give a pattern, symbols or offsets")
    for label, values in (("cookies", cookies), ("ref_ctr_offsets", ref_ctr_offsets)):
        if values and len(values) != len(file_offsets):
            raise AttachError(errno.EINVAL, "attach", target,
                              detail=f"{len(values)} {label} for {len(file_offsets)} functions")
    if pid >= 0 and not os.path.exists(f"/proc/{pid}"):
        raise AttachError(errno.ESRCH, "attach", f"{target} pid {pid}", hint=f"no process with pid {pid}",
                          detail=f"{kind} program {program.name!r}")
    from purebpf.syscall import commands

    attach_type = AttachType.TRACE_UPROBE_SESSION if session else AttachType.TRACE_UPROBE_MULTI
    try:
        fd = commands.link_create(program.fd, 0, attach_type, uprobe_multi_path=binary,
                                  uprobe_multi_offsets=file_offsets,
                                  uprobe_multi_ref_ctr_offsets=ref_ctr_offsets,
                                  uprobe_multi_cookies=cookies, uprobe_multi_pid=max(pid, 0),
                                  uprobe_multi_flags=UPROBE_MULTI_RETURN if retprobe else 0)
    except KernelError as exc:
        hint = None
        if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP) and session:
            hint = "uprobe sessions need Linux 6.13"
        elif exc.errno == errno.ESRCH:
            hint = f"no process with pid {pid}"
        raise attach_error(exc, target, hint=hint, detail=f"{kind} program {program.name!r}") from exc
    return Link(fd, kind=kind, target=target, program=program, functions=names)


def resolve_kernel_functions(pattern: str) -> List[str]:
    """Kernel functions matching glob ``pattern``: from tracefs's
    ``available_filter_functions`` (what fprobe can attach to), else the
    text symbols of ``/proc/kallsyms``; sorted, without module suffixes."""
    match = glob_to_regex(pattern).match
    names: List[str] = []
    for path in ("/sys/kernel/tracing/available_filter_functions",
                 "/sys/kernel/debug/tracing/available_filter_functions"):
        try:
            with open(path) as f:
                names = [line.split()[0] for line in f if line.strip()]
            break
        except OSError:
            continue
    if not names:
        try:
            with open("/proc/kallsyms") as f:
                names = [parts[2] for parts in (line.split() for line in f)
                         if len(parts) >= 3 and parts[1] in ("t", "T")]
        except OSError as exc:
            raise AttachError(exc.errno or errno.EIO, "open", "/proc/kallsyms",
                              detail="cannot list kernel functions to match a kprobe.multi pattern") from exc
    found = sorted({n for n in names if match(n)})
    if not found:
        raise AttachError(errno.ENOENT, "attach", pattern, hint=f"no kernel function matches {pattern!r}")
    return found


def attach_kprobe_multi(program: "Program", pattern: Optional[str] = None, *, symbols: Sequence[str] = (),
                        cookies: Sequence[int] = (), retprobe: Optional[bool] = None,
                        session: Optional[bool] = None) -> Link:
    """Attach ``program`` to many kernel functions with one kprobe-multi link.

    ``pattern`` (a glob; default from ``kprobe.multi/PATTERN``) or exact
    ``symbols``; ``cookies`` one per function in the order given (sorted by
    name for a pattern).
    """
    kind_name = _section_kind(program)
    if retprobe is None:
        retprobe = kind_name.startswith("kretprobe")
    if session is None:
        session = _expects(program, AttachType.TRACE_KPROBE_SESSION)
    if pattern is None and not symbols:
        pattern = program.attach_target or None
        if pattern is None:
            raise AttachError(errno.EINVAL, "attach", "kprobe.multi",
                              detail=f"program {program.name!r}: no function pattern given")
    kind = "kprobe.session" if session else "kretprobe.multi" if retprobe else "kprobe.multi"
    target = pattern if pattern is not None else ",".join(symbols)
    check_type(program, (ProgType.KPROBE,), kind, target)
    if symbols:
        names = list(symbols)
    else:
        assert pattern is not None
        names = resolve_kernel_functions(pattern) if _is_glob(pattern) else [pattern]
    if cookies and len(cookies) != len(names):
        raise AttachError(errno.EINVAL, "attach", target,
                          detail=f"{len(cookies)} cookies for {len(names)} functions")
    from purebpf.syscall import commands

    attach_type = AttachType.TRACE_KPROBE_SESSION if session else AttachType.TRACE_KPROBE_MULTI
    try:
        fd = commands.link_create(program.fd, 0, attach_type, kprobe_multi_syms=names,
                                  kprobe_multi_cookies=cookies,
                                  kprobe_multi_flags=KPROBE_MULTI_RETURN if retprobe else 0)
    except KernelError as exc:
        hint = None
        if exc.errno == errno.EOPNOTSUPP:
            hint = FPROBE_MISSING_HINT
        elif exc.errno in (errno.ENOENT, errno.ESRCH):
            hint = "a function is not in the kernel or cannot be traced"
        raise attach_error(exc, target, hint=hint, detail=f"{kind} program {program.name!r}") from exc
    return Link(fd, kind=kind, target=target, program=program, functions=names)
