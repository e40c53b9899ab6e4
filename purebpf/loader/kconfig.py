"""Values of ``extern ... __kconfig`` variables: the ``.kconfig`` map contents.

A BPF program may declare ``extern int CONFIG_HZ __kconfig;`` to read the
kernel's build configuration, or ``extern unsigned int LINUX_KERNEL_VERSION
__kconfig;`` for the running kernel's version.  The loader fills a
read-only array map with those values, laid out as the object's
:class:`~purebpf.spec.ExternSpec` offsets say (libbpf's layout), before the
programs that read it are loaded.

Sources, as in libbpf (``bpf_object__resolve_externs``):

* ``CONFIG_*`` from ``/boot/config-$(uname -r)`` or else ``/proc/config.gz``
  (lines ``CONFIG_X=y|m|n|"string"|number``); ``# CONFIG_X is not set`` lines
  are ignored, so such options count as missing;
* ``LINUX_KERNEL_VERSION`` = ``KERNEL_VERSION(a, b, c)`` from ``uname`` (with
  libbpf's Ubuntu ``/proc/version_signature`` and Debian ``uname -v`` quirks);
* ``LINUX_HAS_BPF_COOKIE`` / ``LINUX_HAS_SYSCALL_WRAPPER`` from the kernel.

Values are encoded by the C type of the extern (``find_kcfg_type``): ``bool``
(y=1, n=0, m refused), ``enum libbpf_tristate`` (n=0, y=1, m=2), ``char`` (the
letter, or a number), integers of 1/2/4/8 bytes (range-checked), and ``char
[N]`` strings (NUL-terminated, truncated to N-1).  A missing non-weak value
raises ``NotFoundError("kconfig value", name)``; a missing weak one stays 0.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
from typing import TYPE_CHECKING, Dict, Mapping, Optional, Tuple

from purebpf.errors import NotFoundError, ParseError

if TYPE_CHECKING:  # pragma: no cover
    from purebpf.btf import Btf
    from purebpf.spec import ExternSpec, ObjectSpec

__all__ = [
    "kernel_version",
    "kernel_version_code",
    "config_paths",
    "read_kernel_config",
    "parse_kernel_config",
    "kconfig_type",
    "encode_kconfig_value",
    "kconfig_data",
]

log = logging.getLogger(__name__)

#: kinds of ``.kconfig`` externs (libbpf ``enum kcfg_type``)
KCFG_UNKNOWN, KCFG_CHAR, KCFG_BOOL, KCFG_INT, KCFG_TRISTATE, KCFG_CHAR_ARR = (
    "unknown", "char", "bool", "int", "tristate", "char_array")


def kernel_version_code(major: int, minor: int, patch: int) -> int:
    """``KERNEL_VERSION(a, b, c)`` as libbpf defines it (patch capped at 255)."""
    return (major << 16) + (minor << 8) + min(patch, 255)


_VERSION = re.compile(r"\s*(\d+)\.(\d+)\.(\d+)")


def kernel_version(*, release: Optional[str] = None, version: Optional[str] = None,
                   signature_path: str = "/proc/version_signature") -> int:
    """The running kernel's version code, like libbpf's ``get_kernel_version``.

    Ubuntu kernels: the third word of /proc/version_signature; Debian: the
    ``Debian X.Y.Z`` in ``uname -v``; else ``uname -r``.  0 if none parses.
    ``release``/``version`` replace ``uname`` (for tests).
    """
    try:
        with open(signature_path, encoding="utf-8", errors="replace") as f:
            words = f.read().split()
        if len(words) >= 3:
            m = _VERSION.match(words[2])
            if m:
                return kernel_version_code(*(int(g) for g in m.groups()))
    except OSError:
        pass
    if release is None or version is None:
        uts = os.uname()
        release = uts.release if release is None else release
        version = uts.version if version is None else version
    pos = version.find("Debian ")
    if pos >= 0:
        m = _VERSION.match(version, pos + len("Debian "))
        if m:
            return kernel_version_code(*(int(g) for g in m.groups()))
    m = _VERSION.match(release)
    if m:
        return kernel_version_code(*(int(g) for g in m.groups()))
    return 0


def config_paths() -> Tuple[str, ...]:
    """Where the kernel configuration is looked for, in libbpf's order."""
    return (f"/boot/config-{os.uname().release}", "/proc/config.gz")


def parse_kernel_config(text: str, *, source: str = "<config>") -> Dict[str, str]:
    """``CONFIG_NAME -> raw value`` (``y``, ``m``, ``n``, ``"quoted"``, ``123``).

    Only ``CONFIG_*=value`` lines count; a line with ``=`` but no value is an
    error, as in libbpf.  The first occurrence of a name wins.
    """
    out: Dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.startswith("CONFIG_"):
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise ParseError(f"line {lineno}: {line!r} has no '='", file=source)
        if not value:
            raise ParseError(f"line {lineno}: {name} has no value", file=source)
        out.setdefault(name, value)
    return out


def read_kernel_config(path: Optional[str] = None) -> Dict[str, str]:
    """Read and parse the kernel configuration (gzip or plain text).

    Without ``path``, the first readable of :func:`config_paths`.  Raises
    NotFoundError("kernel config", ...) when there is none.
    """
    candidates = (path,) if path else config_paths()
    for p in candidates:
        try:
            with open(p, "rb") as f:
                raw = f.read()
        except OSError:
            continue
        if raw[:2] == b"\x1f\x8b":
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError) as exc:
                raise ParseError(f"bad gzip data: {exc}", file=p) from exc
        return parse_kernel_config(raw.decode("utf-8", "replace"), source=p)
    raise NotFoundError("kernel config", " or ".join(candidates))


# --------------------------------------------------------------------------- types

def kconfig_type(btf: "Btf", type_id: int) -> Tuple[str, bool]:
    """libbpf ``find_kcfg_type``: (kind, is_signed) of the C type ``type_id``
    (typedefs and qualifiers skipped)."""
    from purebpf.btf.types import Array, Enum, Enum64, Int, IntEncoding

    t = btf[btf.skip_modifiers(type_id)]
    if isinstance(t, Int):
        if t.encoding & IntEncoding.BOOL:
            return (KCFG_BOOL if t.size == 1 else KCFG_UNKNOWN), False
        signed = bool(t.encoding & IntEncoding.SIGNED)
        if t.size == 1:
            return KCFG_CHAR, signed
        if t.size not in (2, 4, 8):
            return KCFG_UNKNOWN, signed
        return KCFG_INT, signed
    if isinstance(t, (Enum, Enum64)):
        if isinstance(t, Enum) and t.size != 4:
            return KCFG_UNKNOWN, False
        return (KCFG_TRISTATE if t.name == "libbpf_tristate" else KCFG_UNKNOWN), False
    if isinstance(t, Array):
        if t.nelems == 0 or kconfig_type(btf, t.type)[0] != KCFG_CHAR:
            return KCFG_UNKNOWN, False
        return KCFG_CHAR_ARR, False
    return KCFG_UNKNOWN, False


def _bad(name: str, value: str, why: str) -> ParseError:
    return ParseError(f"extern (kcfg) {name!r}: value {value!r} {why}", section=".kconfig")


def encode_kconfig_value(name: str, kind: str, signed: bool, size: int, value: str) -> bytes:
    """Encode one raw config value for an extern of ``kind``/``size`` (libbpf
    ``set_kcfg_value_tri/str/num``); little-endian.  Raises ParseError when
    the value does not fit the extern's type."""
    first = value[:1]
    if first in ("y", "n", "m"):
        if kind == KCFG_BOOL:
            if first == "m":
                raise _bad(name, value, "implies tristate or char type")
            return bytes([first == "y"])
        if kind == KCFG_TRISTATE:
            return {"n": 0, "y": 1, "m": 2}[first].to_bytes(size, "little")
        if kind == KCFG_CHAR:
            return first.encode()
        raise _bad(name, value, "implies bool, tristate, or char type")
    if first == '"':
        if kind != KCFG_CHAR_ARR:
            raise _bad(name, value, "implies char array type")
        if len(value) < 2 or not value.endswith('"'):
            raise _bad(name, value, "is not a valid string")
        data = value[1:-1].encode()
        if len(data) >= size:
            log.warning("extern (kcfg) %r: string of %d bytes truncated to %d", name, len(data),
                        size - 1)
            data = data[:size - 1]
        return data + b"\0" * (size - len(data))
    try:
        num = _parse_u64(value)
    except ValueError:
        raise _bad(name, value, "is not a number") from None
    if kind not in (KCFG_INT, KCFG_CHAR):
        raise _bad(name, value, "implies integer type")
    if kind == KCFG_INT and size < 8:
        bits = size * 8
        ok = ((num + (1 << (bits - 1))) & ((1 << 64) - 1)) < (1 << bits) if signed \
            else num >> bits == 0
        if not ok:
            raise _bad(name, value, f"would overflow a {size}-byte integer")
    if size not in (1, 2, 4, 8):
        raise _bad(name, value, f"cannot be stored in {size} bytes")
    return (num & ((1 << (size * 8)) - 1)).to_bytes(size, "little")


def _parse_u64(text: str) -> int:
    """C ``strtoull(text, &end, 0)`` that must consume everything: decimal,
    ``0x`` hex or leading-0 octal, optional sign (negatives wrap to u64)."""
    s = text.strip()
    neg = s.startswith("-")
    if s[:1] in "+-":
        s = s[1:]
    if re.fullmatch(r"0[xX][0-9a-fA-F]+", s):
        n = int(s, 16)
    elif re.fullmatch(r"0[0-7]*", s):
        n = int(s, 8)
    elif re.fullmatch(r"[1-9][0-9]*", s):
        n = int(s)
    else:
        raise ValueError(text)
    if n >= 1 << 64:
        n = (1 << 64) - 1
    return (-n) & ((1 << 64) - 1) if neg else n


# --------------------------------------------------------------------------- .kconfig data


_KPROBE_INTERFACES = ("/sys/bus/event_source/devices/kprobe/type",
                      "/sys/kernel/tracing/kprobe_events",
                      "/sys/kernel/debug/tracing/kprobe_events")


def _has_syscall_wrapper() -> bool:
    """Can ``__<arch>_sys_bpf`` be kprobed?  libbpf's FEAT_SYSCALL_WRAPPER probe
    opens a kprobe there; without kprobe support (no kprobe PMU and no
    kprobe_events file) the answer is no, else the symbol must be in kallsyms."""
    if not any(os.path.exists(p) for p in _KPROBE_INTERFACES):
        return False
    machine = os.uname().machine
    prefix = {"x86_64": "__x64_", "aarch64": "__arm64_", "s390x": "__s390x_",
              "riscv64": "__riscv_"}.get(machine, "")
    if not prefix:
        return False
    want = f" {prefix}sys_bpf"
    try:
        with open("/proc/kallsyms", encoding="utf-8", errors="replace") as f:
            for line in f:
                if want in line and line.split()[2:3] == [want[1:]]:
                    return True
    except OSError:
        return False
    return False


def _virtual_value(name: str, virtuals: Optional[Mapping[str, str]]) -> Optional[str]:
    if virtuals is not None and name in virtuals:
        return virtuals[name]
    if name == "LINUX_KERNEL_VERSION":
        code = kernel_version()
        return str(code) if code else None
    if name == "LINUX_HAS_BPF_COOKIE":  # bpf_get_attach_cookie: Linux 5.15
        return "y" if kernel_version() >= kernel_version_code(5, 15, 0) else "n"
    if name == "LINUX_HAS_SYSCALL_WRAPPER":
        return "y" if _has_syscall_wrapper() else "n"
    return None


def kconfig_data(spec: "ObjectSpec", *, config: Optional[Mapping[str, str]] = None,
                 overrides: Optional[Mapping[str, str]] = None,
                 virtuals: Optional[Mapping[str, str]] = None) -> bytes:
    """The initial value of the object's ``.kconfig`` map (``b""`` if none).

    ``config`` is the parsed kernel configuration (read with
    :func:`read_kernel_config` only when a ``CONFIG_*`` extern needs it);
    ``overrides`` takes precedence (libbpf's ``kconfig`` open option);
    ``virtuals`` replaces the computed ``LINUX_*`` values.  Raises
    ``NotFoundError("kconfig value", name)`` for a missing non-weak value.
    """
    externs = [e for e in spec.externs if e.kind == "kconfig"]
    if not externs:
        return b""
    try:
        size = spec.data_section(".kconfig").size
    except NotFoundError:
        size = 0
    size = max([size] + [e.offset + e.size for e in externs])
    data = bytearray(size)
    if config is None and any(e.name.startswith("CONFIG_") for e in externs):
        try:
            config = read_kernel_config()
        except NotFoundError:
            config = {}
    for ext in externs:
        raw = _value_for(ext, config, overrides, virtuals)
        if raw is None:
            if not ext.weak:
                raise NotFoundError("kconfig value", ext.name)
            log.debug("extern (kcfg) %s (weak): not resolved, defaulting to zero", ext.name)
            continue
        if spec.btf is None:
            raise NotFoundError("BTF", spec.name, detail=f"needed for kconfig extern {ext.name}")
        kind, signed = kconfig_type(spec.btf, _var_type(spec.btf, ext.type_id))
        encoded = encode_kconfig_value(ext.name, kind, signed, ext.size, raw)
        data[ext.offset:ext.offset + len(encoded)] = encoded
    return bytes(data)


def _var_type(btf: "Btf", var_id: int) -> int:
    """The C type of the BTF VAR ``var_id`` (or ``var_id`` itself if it is no VAR)."""
    from purebpf.btf.types import Var

    var = btf[var_id]
    return var.type if isinstance(var, Var) else var_id


def _value_for(ext: "ExternSpec", config: Optional[Mapping[str, str]],
               overrides: Optional[Mapping[str, str]],
               virtuals: Optional[Mapping[str, str]]) -> Optional[str]:
    if overrides is not None and ext.name in overrides:
        return overrides[ext.name]
    if ext.name.startswith("LINUX_"):
        value = _virtual_value(ext.name, virtuals)
        if value is None and ext.name not in ("LINUX_KERNEL_VERSION",):
            raise NotFoundError("kconfig value", ext.name,
                                detail="unrecognized LINUX_* virtual extern")
        return value
    if not ext.name.startswith("CONFIG_"):
        raise NotFoundError("kconfig value", ext.name, detail="unrecognized extern")
    return config.get(ext.name) if config is not None else None
