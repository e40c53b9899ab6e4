"""The purebpf exception tree.

Every error purebpf raises derives from :class:`PurebpfError`.  Foreign
exceptions are translated at two edges only (pyelftools / Construct / struct
into :class:`ParseError`; errno into :class:`KernelError`), always chained with
``raise ... from original`` so the cause is never lost.

Layout::

    PurebpfError
    ├── ParseError                 bytes that are not what they claim to be
    │   ├── ElfError               the ELF container (file, section, offset)
    │   ├── BtfError               .BTF / raw BTF (file, section, offset)
    │   ├── BtfExtError            .BTF.ext records
    │   └── InstructionError       undecodable instruction bytes
    ├── NotFoundError (LookupError)   program, map, type, symbol, variable
    ├── RelocationError            an ELF relocation purebpf cannot apply
    ├── CoreRelocationError        a CO-RE relocation that cannot be resolved
    ├── NotSupportedError          a feature the kernel or purebpf lacks
    └── KernelError (OSError)      a bpf()/perf_event_open refusal, errno kept
        ├── VerifierError          BPF_PROG_LOAD refused: program name + whole log
        ├── BtfLoadError           BPF_BTF_LOAD refused: the whole BTF log
        └── AttachError            attaching a program to a target failed
    MapKeyError (KeyError)         lookup/delete of a key a map does not hold
    StateError                     an operation in the wrong phase (after close,
                                   rodata after load, ...)
"""

from __future__ import annotations

import os
from typing import Optional

__all__ = [
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


class PurebpfError(Exception):
    """Root of every exception purebpf raises."""


class ParseError(PurebpfError):
    """Malformed input bytes.

    ``file`` names the file (or ``"<bytes>"``), ``section`` the ELF section or
    BTF part (``"header"``, ``"types"``, ``"strings"``, ``".BTF.ext func_info"``),
    ``offset`` the byte offset *within that section* where the problem was
    found, and ``reason`` what was expected there.
    """

    def __init__(
        self,
        reason: str,
        *,
        file: Optional[str] = None,
        section: Optional[str] = None,
        offset: Optional[int] = None,
    ) -> None:
        self.reason = reason
        self.file = file
        self.section = section
        self.offset = offset
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.file is not None:
            where.append(str(self.file))
        if self.section is not None:
            where.append(f"section {self.section}")
        if self.offset is not None:
            where.append(f"offset {self.offset:#x}")
        prefix = ", ".join(where)
        return f"{prefix}: {self.reason}" if prefix else self.reason

    def with_location(
        self,
        *,
        file: Optional[str] = None,
        section: Optional[str] = None,
        offset: Optional[int] = None,
    ) -> "ParseError":
        """Fill in location fields that are still unknown, in place, and return self.

        Lower layers (the BTF decoder, say) know the offset; upper layers (the
        ELF reader) know the file and section.  Each adds what it knows.
        """
        if self.file is None and file is not None:
            self.file = file
        if self.section is None and section is not None:
            self.section = section
        if self.offset is None and offset is not None:
            self.offset = offset
        self.args = (self._format(),)
        return self

    def __str__(self) -> str:
        return self._format()


class ElfError(ParseError):
    """The ELF container is malformed or is not a BPF object."""


class BtfError(ParseError):
    """BTF type information (``.BTF`` or a raw BTF file) is malformed."""


class BtfExtError(ParseError):
    """``.BTF.ext`` (func_info, line_info, core_relo records) is malformed."""


class InstructionError(ParseError):
    """Bytes that do not decode to eBPF instructions."""


class NotFoundError(PurebpfError, LookupError):
    """A named thing (program, map, type, symbol, variable) does not exist.

    ``what`` is the kind of thing (``"program"``, ``"map"``, ``"type"``...),
    ``name`` the name looked up; ``candidates`` optionally lists close names.
    """

    def __init__(self, what: str, name: object, *, candidates: "Optional[list[str]]" = None,
                 detail: Optional[str] = None) -> None:
        self.what = what
        self.name = name
        self.candidates = list(candidates or [])
        msg = f"no {what} named {name!r}" if isinstance(name, str) else f"no {what} {name!r}"
        if detail:
            msg += f" ({detail})"
        if self.candidates:
            msg += "; known: " + ", ".join(self.candidates[:20])
            if len(self.candidates) > 20:
                msg += f", ... ({len(self.candidates)} in all)"
        super().__init__(msg)

    def __str__(self) -> str:  # LookupError/KeyError quoting is unhelpful
        return str(self.args[0])


class RelocationError(PurebpfError):
    """An ELF relocation that cannot be resolved (unknown symbol, bad target)."""


class CoreRelocationError(PurebpfError):
    """A CO-RE relocation that cannot be resolved against the target BTF."""


class NotSupportedError(PurebpfError):
    """A feature that the running kernel (or purebpf) does not support.

    ``feature`` names it; ``since`` is the kernel version that introduced it,
    when known.
    """

    def __init__(self, feature: str, *, since: Optional[str] = None, detail: Optional[str] = None) -> None:
        self.feature = feature
        self.since = since
        msg = f"not supported: {feature}"
        if since:
            msg += f" (needs Linux {since} or newer)"
        if detail:
            msg += f": {detail}"
        super().__init__(msg)


class KernelError(PurebpfError, OSError):
    """The kernel refused a bpf() or perf_event_open() call.

    Keeps ``errno``, the command name (``"BPF_PROG_LOAD"``) and a human hint.
    """

    def __init__(self, errno_: int, command: str, *, hint: Optional[str] = None,
                 detail: Optional[str] = None) -> None:
        self.command = command
        self.hint = hint
        self.detail = detail
        text = f"{command}: {os.strerror(errno_)}"
        if detail:
            text += f" ({detail})"
        if hint:
            text += f"; hint: {hint}"
        OSError.__init__(self, errno_, text)

    def __str__(self) -> str:
        return str(self.strerror)


class VerifierError(KernelError):
    """The verifier rejected a program (BPF_PROG_LOAD).

    ``program`` names it, ``log`` is the whole verifier log, and ``summary``
    a short account of the failing instruction with its C source line.
    """

    def __init__(self, errno_: int, program: str, log: str, *, summary: Optional[str] = None,
                 hint: Optional[str] = None, truncated: bool = False) -> None:
        self.program = program
        self.log = log
        self.summary = summary
        self.truncated = truncated
        detail = f"program {program!r}"
        if summary:
            detail += f": {summary}"
        super().__init__(errno_, "BPF_PROG_LOAD", hint=hint, detail=detail)


class BtfLoadError(KernelError):
    """The kernel rejected the object's BTF (BPF_BTF_LOAD); ``log`` is the BTF log."""

    def __init__(self, errno_: int, log: str, *, hint: Optional[str] = None,
                 summary: Optional[str] = None) -> None:
        self.log = log
        self.summary = summary
        super().__init__(errno_, "BPF_BTF_LOAD", hint=hint, detail=summary)


class AttachError(KernelError):
    """Attaching a program failed; ``target`` names what it was attached to."""

    def __init__(self, errno_: int, command: str, target: str, *, hint: Optional[str] = None,
                 detail: Optional[str] = None) -> None:
        self.target = target
        text = f"attach to {target}"
        if detail:
            text += f": {detail}"
        super().__init__(errno_, command, hint=hint, detail=text)


class MapKeyError(PurebpfError, KeyError):
    """A key the map does not hold (ENOENT on lookup/delete), so maps feel like dicts."""

    def __init__(self, map_name: str, key: object) -> None:
        self.map_name = map_name
        self.key = key
        super().__init__(f"map {map_name!r} has no key {key!r}")

    def __str__(self) -> str:
        return str(self.args[0])


class StateError(PurebpfError):
    """An operation that the object's current phase does not allow.

    For example: using a closed map, setting a ``.rodata`` variable after
    load, or attaching a program that was not loaded.
    """
