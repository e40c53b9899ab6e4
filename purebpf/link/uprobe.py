"""Uprobes and uretprobes: a program run when a process executes an
instruction of a file (``SEC("uprobe/PATH:FUNC+OFF")``).

The kernel places uprobes by *file offset* in an inode.  A symbol is turned
into one with pyelftools: ``st_value - section.sh_addr + section.sh_offset``
(the symbol's section maps its virtual address back to bytes of the file; the
same formula holds for PIE and non-PIE executables and shared libraries),
looked up in ``.symtab`` then ``.dynsym``.  The perf event uses the dynamic
``uprobe`` PMU (``/sys/bus/event_source/devices/uprobe/type``) with
``config1`` = path, ``config2`` = offset, and the return-probe bit given by
``.../format/retprobe`` (``config:0``).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
from typing import TYPE_CHECKING, Iterator, Optional, Tuple

from purebpf.errors import AttachError, KernelError, NotFoundError, NotSupportedError, PurebpfError
from purebpf.link._common import attach_perf_fd, check_type
from purebpf.link._link import Link, attach_error
from purebpf.uapi import ProgType

if TYPE_CHECKING:  # pragma: no cover
    from purebpf.program import Program
    from purebpf.syscall import FD

__all__ = ["attach_uprobe", "resolve_symbol_offset", "elf_symbol_errors", "parse_uprobe_target", "probe_retprobe_bit"]

_TARGET_RE = re.compile(r"^(?P<path>[^:]+):(?P<func>[^+]+)?(?:\+(?P<off>(0x[0-9a-fA-F]+|[0-9]+)))?$")


def parse_uprobe_target(text: str) -> Tuple[str, Optional[str], int]:
    """``"PATH:FUNC+OFF"`` (libbpf's auto-attach syntax) -> (path, func, offset).

    ``FUNC`` may be left out (``"PATH:+0x1234"``: a raw file offset); ``+OFF``
    defaults to 0.
    """
    m = _TARGET_RE.match(text)
    if m is None or (m.group("func") is None and m.group("off") is None):
        raise AttachError(errno.EINVAL, "attach", text, detail="uprobe target must look like PATH:FUNC[+OFFSET]")
    off = m.group("off")
    return m.group("path"), m.group("func"), int(off, 0) if off else 0


@contextlib.contextmanager
def elf_symbol_errors(binary: str) -> Iterator[None]:
    """Reading the symbols of ELF file ``binary``: an unreadable, invalid or
    corrupt file becomes an :class:`~purebpf.errors.AttachError` naming it
    (purebpf's own errors pass through)."""
    from elftools.common.exceptions import ELFError

    try:
        yield
    except PurebpfError:
        raise
    except OSError as exc:
        raise AttachError(exc.errno or errno.EIO, "open", binary, detail=f"cannot read ELF symbols: {exc}") from exc
    except ELFError as exc:
        raise AttachError(errno.ENOEXEC, "open", binary, detail=f"not a valid ELF file: {exc}") from exc
    except Exception as exc:  # pyelftools on a corrupt file: any of its internal errors
        raise AttachError(errno.ENOEXEC, "open", binary,
                          detail=f"corrupt ELF file ({type(exc).__name__}: {exc})") from exc


def resolve_symbol_offset(binary: str, symbol: str) -> int:
    """File offset of function ``symbol`` in ELF file ``binary``.

    Raises :class:`~purebpf.errors.NotFoundError` when the file has no such
    defined symbol, :class:`~purebpf.errors.AttachError` when the file cannot be read.
    """
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    with elf_symbol_errors(binary), open(binary, "rb") as f:
        elf = ELFFile(f)
        for secname in (".symtab", ".dynsym"):
            table = elf.get_section_by_name(secname)
            if not isinstance(table, SymbolTableSection):
                continue
            for sym in table.iter_symbols():
                if sym.name != symbol:
                    continue
                shndx = sym["st_shndx"]
                if not isinstance(shndx, int) or shndx == 0 or sym["st_value"] == 0:
                    continue  # undefined (an import) or special
                sec = elf.get_section(shndx)
                off = int(sym["st_value"]) - int(sec["sh_addr"]) + int(sec["sh_offset"])
                if off < 0:
                    raise AttachError(errno.ENOEXEC, "open", binary,
                                      detail=f"symbol {symbol!r} lies before its section's file offset")
                return off
    raise NotFoundError("symbol", symbol, detail=f"no defined function {symbol!r} in {binary}")


def probe_retprobe_bit(pmu: str = "uprobe") -> int:
    """The ``config`` bit marking a return probe (``format/retprobe``: ``config:N``)."""
    path = f"/sys/bus/event_source/devices/{pmu}/format/retprobe"
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError as exc:
        raise NotSupportedError(f"{pmu} return probes", detail=f"{path}: {exc.strerror}") from exc
    if not text.startswith("config:"):
        raise NotSupportedError(f"{pmu} return probes", detail=f"{path} says {text!r}")
    try:
        return int(text.split(":", 1)[1])
    except ValueError as exc:
        raise NotSupportedError(f"{pmu} return probes", detail=f"{path} says {text!r}") from exc


def open_probe_event(pmu: str, *, config1: int, config2: int, retprobe: bool, pid: int,
                     target: str) -> "FD":
    """perf_event_open on the ``kprobe``/``uprobe`` PMU (libbpf's
    ``perf_event_open_probe``): pid -1 with cpu 0 means every process."""
    from purebpf.syscall.perf import PerfEventAttr, perf_event_open, pmu_type

    ptype = pmu_type(pmu)
    attr = PerfEventAttr()
    attr.type = ptype
    attr.config1 = config1
    attr.config2 = config2
    if retprobe:
        attr.config |= 1 << probe_retprobe_bit(pmu)
    try:
        return perf_event_open(attr, pid if pid >= 0 else -1, 0 if pid < 0 else -1)
    except KernelError as exc:
        hint = None
        if exc.errno == errno.ESRCH:
            hint = f"no process with pid {pid}"
        raise attach_error(exc, target, hint=hint, detail=f"perf_event_open on the {pmu} PMU") from exc


def attach_uprobe(program: "Program", binary: Optional[str] = None, symbol: Optional[str] = None, *,
                  offset: int = 0, pid: int = -1, retprobe: Optional[bool] = None, cookie: int = 0) -> Link:
    """Attach a uprobe (``retprobe=True``: uretprobe) at ``symbol+offset`` of ``binary``
    (or at file offset ``offset`` when ``symbol`` is None); ``pid`` >= 0 fires
    only in that process.  Defaults come from the section name."""
    section_ret = False
    if program.spec is not None:
        section_ret = program.spec.section.lstrip("?").startswith("uretprobe")
    if retprobe is None:
        retprobe = section_ret
    if binary is None:
        if not program.attach_target:
            raise AttachError(errno.EINVAL, "attach", "uprobe",
                              detail=f"program {program.name!r}: no binary given")
        binary, sec_symbol, sec_off = parse_uprobe_target(program.attach_target)
        if symbol is None:
            symbol, offset = sec_symbol, offset or sec_off
    kind = "uretprobe" if retprobe else "uprobe"
    target = f"{binary}:{symbol}" if symbol else f"{binary}:+{offset:#x}"
    if offset and symbol:
        target += f"+{offset:#x}"
    check_type(program, (ProgType.KPROBE,), kind, target)
    if not os.path.isabs(binary) and os.sep not in binary:
        import shutil

        found = shutil.which(binary)
        if found:
            binary = found
    if symbol:
        try:
            file_off = resolve_symbol_offset(binary, symbol) + offset
        except NotFoundError as exc:
            raise AttachError(errno.ENOENT, "attach", target, hint=f"no symbol {symbol!r} in {binary}",
                              detail=f"{kind} program {program.name!r}") from exc
    else:
        file_off = offset
    if pid >= 0 and not os.path.exists(f"/proc/{pid}"):
        raise AttachError(errno.ESRCH, "attach", f"{target} pid {pid}", hint=f"no process with pid {pid}",
                          detail=f"{kind} program {program.name!r}")
    path_buf = ctypes.create_string_buffer(os.fsencode(binary))
    try:
        perf_fd = open_probe_event("uprobe", config1=ctypes.addressof(path_buf), config2=file_off,
                                   retprobe=retprobe, pid=pid, target=target)
    except NotSupportedError as exc:
        raise AttachError(errno.EOPNOTSUPP, "perf_event_open", target,
                          hint="the kernel has no uprobe PMU (CONFIG_UPROBE_EVENTS)") from exc
    finally:
        del path_buf
    return attach_perf_fd(program, perf_fd, kind=kind, target=target, cookie=cookie)
