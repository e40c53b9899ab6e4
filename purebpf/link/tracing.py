"""BTF-typed tracing attachments: ``tp_btf``, ``fentry``, ``fexit``,
``fmod_ret`` and ``lsm``.

These programs name their target at load time (``attach_btf_id``, the BTF id
of the kernel function, hook or ``btf_trace_<tp>`` typedef), so attaching
needs no name: ``BPF_LINK_CREATE`` with ``target_fd = 0`` and the program's
expected attach type (Linux 5.10 +), or on older kernels
``BPF_RAW_TRACEPOINT_OPEN`` with a NULL name.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Optional

from purebpf.errors import AttachError, KernelError
from purebpf.link._common import check_type
from purebpf.link._link import Link, attach_error
from purebpf.uapi import AttachType, ProgType

if TYPE_CHECKING:  # pragma: no cover
    from purebpf.program import Program

__all__ = ["attach_tracing", "attach_lsm"]

_KIND = {
    int(AttachType.TRACE_RAW_TP): "tp_btf",
    int(AttachType.TRACE_FENTRY): "fentry",
    int(AttachType.TRACE_FEXIT): "fexit",
    int(AttachType.MODIFY_RETURN): "fmod_ret",
    int(AttachType.LSM_MAC): "lsm",
}


def _expected_attach_type(program: "Program") -> Optional[int]:
    eat = program.expected_attach_type
    if eat is None and program.spec is not None and program.spec.kind is not None:
        kind_eat = program.spec.kind.expected_attach_type
        eat = int(kind_eat) if kind_eat is not None else None
    return int(eat) if eat is not None else None


def attach_tracing(program: "Program", *, cookie: int = 0) -> Link:
    """Attach a tp_btf / fentry / fexit / fmod_ret / lsm program where its load said."""
    target = program.attach_target or program.name
    check_type(program, (ProgType.TRACING, ProgType.LSM, ProgType.EXT), "BTF tracing", target)
    eat = _expected_attach_type(program)
    kind = _KIND.get(eat, "tracing") if eat is not None else "tracing"
    if eat is None:
        raise AttachError(errno.EINVAL, "BPF_LINK_CREATE", target,
                          detail=f"program {program.name!r}: expected attach type unknown")
    from purebpf.syscall import commands

    try:
        fd = commands.link_create(program.fd, 0, eat, tracing_cookie=cookie)
    except KernelError as exc:
        if exc.errno != errno.EINVAL or cookie:
            raise attach_error(exc, target, detail=f"{kind} program {program.name!r}") from exc
        try:
            fd = commands.raw_tracepoint_open(None, program.fd)
        except KernelError as exc2:
            raise attach_error(exc2, target, detail=f"{kind} program {program.name!r}") from exc2
    return Link(fd, kind=kind, target=target, program=program)


def attach_lsm(program: "Program", *, cookie: int = 0) -> Link:
    """Attach an ``lsm/HOOK`` program (same path as :func:`attach_tracing`)."""
    check_type(program, (ProgType.LSM,), "lsm", program.attach_target or program.name)
    return attach_tracing(program, cookie=cookie)
