"""The load transcript: a hook called after every bpf()/perf_event_open call.

All of purebpf's kernel calls pass through one function
(:func:`purebpf.syscall.bpf`, and :func:`purebpf.syscall.perf_event_open`),
which, when at least one hook is installed, decodes the attributes it sent
and reports a :class:`TraceRecord` after the call returns.  With no hook
installed nothing is decoded or timed: tracing costs one list test.

Example::

    from purebpf.syscall import tracing
    with tracing(lambda rec: print(rec.format())):
        ...   # BPF_MAP_CREATE map_type=HASH key_size=4 ... -> fd 7
"""

from __future__ import annotations

import ctypes
import enum
from contextlib import contextmanager
from typing import Any, Callable, Dict, FrozenSet, Iterator, List, NamedTuple, Optional

__all__ = [
    "TraceRecord",
    "TraceHook",
    "add_trace_hook",
    "remove_trace_hook",
    "tracing",
    "decode_attr",
]


class TraceRecord(NamedTuple):
    """One kernel call: ``command`` (``"BPF_MAP_CREATE"``), decoded ``attrs``,
    ``result`` (the fd or return value; None on failure), ``errno`` (None on
    success) and ``duration_ns`` of the call itself."""

    command: str
    attrs: Dict[str, Any]
    result: Optional[int] = None
    errno: Optional[int] = None
    duration_ns: int = 0

    def format(self) -> str:
        """One line: ``COMMAND key=value ... -> fd 7`` (or ``-> 0``, ``-> error EPERM``)."""
        parts = [self.command]
        for key, value in self.attrs.items():
            parts.append(f"{key}={_format_value(value)}")
        text = " ".join(parts)
        if self.errno is not None:
            import errno as errno_mod

            name = errno_mod.errorcode.get(self.errno, str(self.errno))
            return f"{text} -> error {name}"
        if self.result is not None and self.command in _FD_RETURNING:
            return f"{text} -> fd {self.result}"
        return f"{text} -> {self.result}"


_FD_RETURNING = frozenset({
    "BPF_MAP_CREATE", "BPF_PROG_LOAD", "BPF_OBJ_GET", "BPF_PROG_GET_FD_BY_ID",
    "BPF_MAP_GET_FD_BY_ID", "BPF_BTF_LOAD", "BPF_BTF_GET_FD_BY_ID", "BPF_LINK_CREATE",
    "BPF_LINK_GET_FD_BY_ID", "BPF_RAW_TRACEPOINT_OPEN", "BPF_ENABLE_STATS",
    "BPF_ITER_CREATE", "BPF_TOKEN_CREATE", "PERF_EVENT_OPEN",
})


class Name(str):
    """A symbolic value (enum or flag names): printed without quotes."""


def _format_value(value: Any) -> str:
    """Strings quoted with C-like escapes (one record is always one line)."""
    if isinstance(value, str) and not isinstance(value, Name):
        escaped = value.encode("unicode_escape").decode("ascii").replace('"', '\\"')
        return f'"{escaped}"'
    return str(value)


TraceHook = Callable[[TraceRecord], None]

#: installed hooks; the choke point tests this list's truth value only
_hooks: List[TraceHook] = []


def add_trace_hook(fn: TraceHook) -> TraceHook:
    """Install ``fn``, called with a :class:`TraceRecord` after each call; returns the handle."""
    _hooks.append(fn)
    return fn


def remove_trace_hook(handle: TraceHook) -> None:
    """Remove a hook installed by :func:`add_trace_hook` (no error if already gone)."""
    try:
        _hooks.remove(handle)
    except ValueError:
        pass


@contextmanager
def tracing(fn: TraceHook) -> Iterator[TraceHook]:
    """Context manager form of :func:`add_trace_hook` / :func:`remove_trace_hook`."""
    handle = add_trace_hook(fn)
    try:
        yield handle
    finally:
        remove_trace_hook(handle)


def emit(record: TraceRecord) -> None:
    """Hand ``record`` to every hook; a failing hook is logged, never breaks the call."""
    for hook in list(_hooks):
        try:
            hook(record)
        except Exception:  # a broken hook must not change what the kernel call did
            import logging

            logging.getLogger(__name__).exception("trace hook %r failed", hook)


def _enum_text(cls: type, value: int) -> str:
    return Name(_enum_raw_text(cls, value))


def _enum_raw_text(cls: type, value: int) -> str:
    if issubclass(cls, enum.IntFlag):
        if value == 0:
            return "0"
        names = []
        rest = value
        for member in cls:
            bit = int(member)
            if bit and bit & (bit - 1) == 0 and value & bit and member.name:
                names.append(member.name)
                rest &= ~bit
        if rest:
            names.append(hex(rest))
        return "|".join(names)
    if issubclass(cls, enum.IntEnum):
        try:
            return str(cls(value).name)
        except ValueError:
            return str(value)
    return str(value)


def decode_attr(attr: ctypes.Structure) -> Dict[str, Any]:
    """Decode one ``bpf_attr`` variant into printable values.

    Zero fields are left out, pointer fields are never shown, enum fields
    become their uapi names (``map_type=HASH``), flag fields ``A|B`` and
    ``char[]`` names plain strings.  Unions whose meaning depends on another
    field (``_opaque_``) are left to the caller's ``extra`` values.
    """
    out: Dict[str, Any] = {}
    _decode_into(attr, out)
    return out


def _decode_into(obj: Any, out: Dict[str, Any]) -> None:
    cls = type(obj)
    pointers: FrozenSet[str] = getattr(cls, "_pointers_", frozenset())
    enums = getattr(cls, "_enums_", {})
    renames = getattr(cls, "_renames_", {})
    anonymous = getattr(cls, "_anonymous_", ())
    opaque: FrozenSet[str] = getattr(cls, "_opaque_", frozenset())
    for spec in cls._fields_:
        name = spec[0]
        if name in opaque or (name.startswith("_") and name not in anonymous):
            continue
        if name in anonymous:
            # an anonymous union of scalars is shown under its first member's name
            inner = getattr(obj, name)
            if isinstance(inner, ctypes.Union):
                first = inner._fields_[0][0]
                if isinstance(getattr(inner, first), int):
                    value = getattr(inner, first)
                    if value and first not in pointers:
                        out[renames.get(first, first)] = value
                    continue
            _decode_into(inner, out)
            continue
        if name in pointers:
            continue
        value = getattr(obj, name)
        if isinstance(value, bytes):
            if value:
                out[renames.get(name, name)] = value.decode("utf-8", "replace")
            continue
        if isinstance(value, (ctypes.Structure, ctypes.Union)):
            continue
        if not isinstance(value, int):
            continue
        if value == 0:
            continue
        key = renames.get(name, name)
        if name in enums:
            out[key] = _enum_text(enums[name], value)
        else:
            out[key] = value
