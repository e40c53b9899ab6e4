"""Raw tracepoints: ``SEC("raw_tp/NAME")``.

A raw tracepoint program receives the tracepoint's raw arguments
(``struct bpf_raw_tracepoint_args``).  ``BPF_RAW_TRACEPOINT_OPEN`` with the
tracepoint name returns a link fd (a ``BPF_LINK_TYPE_RAW_TRACEPOINT`` link).
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Optional

from purebpf.errors import AttachError, KernelError
from purebpf.link._common import check_type
from purebpf.link._link import Link, attach_error
from purebpf.uapi import ProgType

if TYPE_CHECKING:  # pragma: no cover
    from purebpf.program import Program

__all__ = ["attach_raw_tracepoint"]


def attach_raw_tracepoint(program: "Program", name: Optional[str] = None, *, cookie: int = 0) -> Link:
    """Attach to raw tracepoint ``name`` (default: from the section, ``raw_tp/NAME``)."""
    name = name or program.attach_target
    if not name:
        raise AttachError(errno.EINVAL, "BPF_RAW_TRACEPOINT_OPEN", "raw_tracepoint",
                          detail=f"program {program.name!r}: no tracepoint name given")
    check_type(program, (ProgType.RAW_TRACEPOINT, ProgType.RAW_TRACEPOINT_WRITABLE), "raw_tp", name)
    from purebpf.syscall import commands

    try:
        fd = commands.raw_tracepoint_open(name, program.fd, cookie=cookie)
    except KernelError as exc:
        hint = "no such raw tracepoint" if exc.errno == errno.ENOENT else None
        raise attach_error(exc, name, hint=hint, detail=f"raw_tp program {program.name!r}") from exc
    return Link(fd, kind="raw_tp", target=name, program=program)
