"""Kprobes and kretprobes: ``SEC("kprobe/FUNC+OFF")``.

Through the dynamic ``kprobe`` perf PMU (``config1`` = function name,
``config2`` = offset, ``config`` bit from ``format/retprobe`` for return
probes).  A kernel built without ``CONFIG_KPROBES`` has no such PMU
(``/sys/bus/event_source/devices/kprobe`` is missing): attaching then raises
an :class:`~purebpf.errors.AttachError` that says so.
"""

from __future__ import annotations

import ctypes
import errno
import re
from typing import TYPE_CHECKING, Optional, Tuple

from purebpf.errors import AttachError, NotSupportedError
from purebpf.link._common import attach_perf_fd, check_type
from purebpf.link._link import Link
from purebpf.link.uprobe import open_probe_event
from purebpf.uapi import ProgType

if TYPE_CHECKING:  # pragma: no cover
    from purebpf.program import Program

__all__ = ["attach_kprobe", "parse_kprobe_target", "KPROBES_MISSING_HINT"]

KPROBES_MISSING_HINT = "the kernel has no kprobes (built with CONFIG_KPROBES=n): no kprobe PMU in " \
                       "/sys/bus/event_source/devices"

_TARGET_RE = re.compile(r"^(?P<func>[^+]+)(?:\+(?P<off>(0x[0-9a-fA-F]+|[0-9]+)))?$")


def parse_kprobe_target(text: str) -> Tuple[str, int]:
    """``"FUNC+OFF"`` -> (func, offset)."""
    m = _TARGET_RE.match(text)
    if m is None:
        raise AttachError(errno.EINVAL, "attach", text, detail="kprobe target must look like FUNC[+OFFSET]")
    off = m.group("off")
    return m.group("func"), int(off, 0) if off else 0


def attach_kprobe(program: "Program", function: Optional[str] = None, *, offset: int = 0,
                  retprobe: Optional[bool] = None, cookie: int = 0) -> Link:
    """Attach a kprobe (``retprobe=True``: kretprobe) at ``function+offset``."""
    if retprobe is None:
        retprobe = program.spec is not None and program.spec.section.lstrip("?").startswith("kretprobe")
    if function is None:
        if not program.attach_target:
            raise AttachError(errno.EINVAL, "attach", "kprobe",
                              detail=f"program {program.name!r}: no kernel function given")
        function, offset = parse_kprobe_target(program.attach_target)
    kind = "kretprobe" if retprobe else "kprobe"
    target = function + (f"+{offset:#x}" if offset else "")
    check_type(program, (ProgType.KPROBE,), kind, target)
    name_buf = ctypes.create_string_buffer(function.encode())
    try:
        perf_fd = open_probe_event("kprobe", config1=ctypes.addressof(name_buf), config2=offset,
                                   retprobe=retprobe, pid=-1, target=target)
    except NotSupportedError as exc:
        raise AttachError(errno.EOPNOTSUPP, "perf_event_open", target, hint=KPROBES_MISSING_HINT,
                          detail=f"{kind} program {program.name!r}") from exc
    finally:
        del name_buf
    return attach_perf_fd(program, perf_fd, kind=kind, target=target, cookie=cookie)
