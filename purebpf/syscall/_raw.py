"""The choke point: the one place purebpf enters the kernel.

``bpf(2)`` has no libc wrapper, so it is called through ``syscall(2)`` with
the architecture's number (``__NR_bpf``), the command, a pointer to the
``union bpf_attr`` variant and its size.  A negative return becomes a
:class:`~purebpf.errors.KernelError` that keeps ``errno``, names the
command (``BPF_MAP_CREATE``) and carries a hint.
"""

from __future__ import annotations

import ctypes
import errno as E
import os
import time
from typing import Any, Dict, Optional, Tuple

from purebpf.errors import KernelError
from purebpf.syscall import trace as _trace
from purebpf.uapi import BpfCmd

__all__ = ["bpf", "sys_call", "SYS_BPF", "SYS_PERF_EVENT_OPEN", "command_name", "errno_hint"]

#: (__NR_bpf, __NR_perf_event_open) per ``uname -m``
_SYSCALL_NUMBERS: Dict[str, Tuple[int, int]] = {
    "x86_64": (321, 298),
    "aarch64": (280, 241),
    "arm64": (280, 241),
    "riscv64": (280, 241),
    "loongarch64": (280, 241),
    "s390x": (351, 331),
    "ppc64le": (361, 319),
    "ppc64": (361, 319),
    "i386": (357, 336),
    "i686": (357, 336),
    "armv7l": (386, 364),
    "mips64": (5315, 5292),
}

_machine = os.uname().machine
SYS_BPF, SYS_PERF_EVENT_OPEN = _SYSCALL_NUMBERS.get(_machine, (-1, -1))

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


def command_name(cmd: int) -> str:
    """``BPF_MAP_CREATE`` for 0, ``BPF_PROG_LOAD`` for 5... (uapi spelling)."""
    try:
        return "BPF_" + BpfCmd(cmd).name
    except ValueError:
        return f"BPF_CMD_{cmd}"


_PERM_HINT = "needs root or CAP_BPF (+CAP_PERFMON, CAP_NET_ADMIN for some types)"

_HINTS: Dict[Tuple[str, int], str] = {
    ("BPF_MAP_CREATE", E.EINVAL): "map attributes rejected: check map_type, key_size/value_size "
                                  "(zero or not allowed for this type), max_entries, map_flags, "
                                  "inner_map_fd and the BTF ids",
    ("BPF_MAP_CREATE", E.E2BIG): "a size is too large (key_size/value_size/max_entries) or the attr "
                                 "has unknown non-zero fields for this kernel",
    ("BPF_MAP_CREATE", E.ENOMEM): "not enough memory for the map (max_entries * value_size); "
                                  "check RLIMIT_MEMLOCK / memcg limits",
    ("BPF_MAP_UPDATE_ELEM", E.E2BIG): "the map is full (max_entries reached)",
    ("BPF_MAP_UPDATE_ELEM", E.EEXIST): "key already present and flags=NOEXIST",
    ("BPF_MAP_UPDATE_ELEM", E.ENOENT): "key not present and flags=EXIST",
    ("BPF_MAP_UPDATE_ELEM", E.EINVAL): "bad flags, or the value is not valid for this map type",
    ("BPF_MAP_UPDATE_ELEM", E.EPERM): "the map is frozen or read-only from user space",
    ("BPF_MAP_LOOKUP_ELEM", E.EINVAL): "bad flags or key size for this map type",
    ("BPF_PROG_LOAD", E.EINVAL): "attributes or program rejected: check prog_type, "
                                 "expected_attach_type, attach_btf_id, prog_flags and the verifier log",
    ("BPF_PROG_LOAD", E.E2BIG): "too many instructions, or the attr has unknown non-zero fields",
    ("BPF_PROG_LOAD", E.EACCES): "the verifier rejected the program: see the log",
    ("BPF_PROG_LOAD", E.ENOSPC): "the verifier log buffer is too small; retry with a larger log_size",
    ("BPF_BTF_LOAD", E.EINVAL): "the BTF was rejected: see the BTF log (log_level=1)",
    ("BPF_BTF_LOAD", E.E2BIG): "BTF too large, or the attr has unknown non-zero fields",
    ("BPF_BTF_LOAD", E.ENOSPC): "the BTF log buffer is too small",
    ("BPF_OBJ_PIN", E.EEXIST): "the pin path already exists",
    ("BPF_OBJ_PIN", E.ENOENT): "the parent directory does not exist",
    ("BPF_OBJ_PIN", E.EPERM): "the path is not on a bpf filesystem (mount -t bpf bpf /sys/fs/bpf)",
    ("BPF_OBJ_GET", E.ENOENT): "nothing pinned at this path",
    ("BPF_OBJ_GET", E.EPERM): "the path is not on a bpf filesystem, or permissions",
    ("BPF_PROG_TEST_RUN", E.ENOTSUPP if hasattr(E, "ENOTSUPP") else 524):
        "this program type has no test_run support",
    ("BPF_PROG_TEST_RUN", E.EINVAL): "data/ctx sizes or flags not accepted for this program type",
    ("BPF_LINK_CREATE", E.EINVAL): "attach_type does not match the program's expected_attach_type, "
                                   "or a bad target",
}

_GENERIC_HINTS: Dict[int, str] = {
    E.EPERM: _PERM_HINT,
    E.EBADF: "a file descriptor in the attributes is not open or not the right kind of object",
    E.EFAULT: "a pointer in the attributes is invalid (internal error)",
    E.E2BIG: "an attribute value is too large, or the kernel does not know a non-zero field",
    E.ENOSPC: "log buffer too small",
    E.ENOENT: "no such object",
    E.EOPNOTSUPP: "not supported by this kernel or map/program type",
    524: "not supported by this kernel or map/program type (ENOTSUPP)",
    E.ENOSYS: "the kernel has no bpf() system call (CONFIG_BPF_SYSCALL off)",
}


def errno_hint(command: str, err: int) -> Optional[str]:
    """A short human explanation of ``err`` for ``command``, or None."""
    hint = _HINTS.get((command, err))
    if err == E.EPERM:
        base = f"{hint}; or {_PERM_HINT}" if hint else _PERM_HINT
        if os.geteuid() == 0:
            base += ("; this process is root, so a security policy refused it "
                     "(kernel lockdown forbids tracing/LSM programs and reading kernel memory, "
                     "or an LSM such as SELinux/AppArmor)")
        return base
    return hint or _GENERIC_HINTS.get(err)


def sys_call(number: int, *args: Any) -> Tuple[int, int]:
    """``syscall(number, *args)`` -> (return value, errno); errno is 0 on success.

    Arguments must already be ctypes values (the call is variadic).
    """
    ret = int(_syscall(ctypes.c_long(number), *args))
    if ret < 0:
        return ret, ctypes.get_errno() or E.EINVAL
    return ret, 0


# syscall(__NR_bpf, int cmd, union bpf_attr *attr, unsigned int size) with a
# fixed prototype: plain ints go straight through, no per-call wrappers.
_bpf_syscall = ctypes.CFUNCTYPE(ctypes.c_long, ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint,
                                use_errno=True)(("syscall", _libc))


def bpf(cmd: int, attr: ctypes.Structure, *, extra: Optional[Dict[str, Any]] = None,
        raise_on_error: bool = True) -> int:
    """``bpf(cmd, &attr, sizeof(attr))``: the raw call.

    Returns the kernel's (non-negative) result.  On failure raises
    :class:`~purebpf.errors.KernelError` with errno, the command name and a
    hint -- or, with ``raise_on_error=False``, returns ``-errno``.  ``extra``
    adds already-decoded values (a pin path, a BTF size) to the transcript.
    An unknown architecture has ``SYS_BPF = -1``, which the kernel answers
    with ENOSYS.
    """
    if not _trace._hooks:
        ret = int(_bpf_syscall(SYS_BPF, int(cmd), ctypes.addressof(attr), ctypes.sizeof(attr)))
        if ret >= 0:
            return ret
        err = ctypes.get_errno() or E.EINVAL
    else:
        start = time.perf_counter_ns()
        ret = int(_bpf_syscall(SYS_BPF, int(cmd), ctypes.addressof(attr), ctypes.sizeof(attr)))
        err = (ctypes.get_errno() or E.EINVAL) if ret < 0 else 0
        duration = time.perf_counter_ns() - start
        attrs = _trace.decode_attr(attr)
        if extra:
            attrs.update(extra)
        _trace.emit(_trace.TraceRecord(command_name(cmd), attrs, None if err else ret,
                                       err or None, duration))
        if not err:
            return ret
    if not raise_on_error:
        return -err
    name = command_name(cmd)
    hint = errno_hint(name, err)
    if err == E.E2BIG:
        hint = e2big_hint(attr, hint)
    raise KernelError(err, name, hint=hint)


def e2big_hint(attr: ctypes.Structure, hint: Optional[str]) -> Optional[str]:
    """E2BIG also means "non-zero bytes this kernel does not know": name the
    last attribute that is set, the likeliest culprit on an older kernel."""
    from purebpf.syscall._hints import last_set_field

    field = last_set_field(attr)
    if field is None:
        return hint
    extra = f"if this kernel is older than the attribute {field}, it refuses it with E2BIG"
    return f"{hint}; {extra}" if hint else extra
