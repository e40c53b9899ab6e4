"""purebpf.loader.kconfig: .kconfig extern values.

Oracles: the kernel configuration read independently (``zcat`` + ``grep``),
``uname -r`` arithmetic for LINUX_KERNEL_VERSION, and the C types of the
fixture's externs as written in fixtures/src/externs.bpf.c.
"""

from __future__ import annotations

import gzip
import os
import re
import subprocess
from pathlib import Path
from typing import Dict

import pytest

from purebpf.errors import NotFoundError, ParseError
from purebpf.loader.kconfig import (
    encode_kconfig_value,
    kconfig_data,
    kernel_version,
    kernel_version_code,
    parse_kernel_config,
    read_kernel_config,
)
from purebpf.spec import ObjectSpec

ROOT = Path(__file__).resolve().parent.parent
EXTERNS = ROOT / "fixtures" / "obj" / "externs.bpf.o"


def config_text() -> str:
    """The kernel config as the shell sees it (libbpf's order of sources)."""
    release = subprocess.run(["uname", "-r"], check=True, capture_output=True, text=True).stdout.strip()
    boot = Path(f"/boot/config-{release}")
    if boot.exists():
        return boot.read_text()
    if not Path("/proc/config.gz").exists():
        pytest.skip("kernel feature missing: no /boot/config-$(uname -r) nor /proc/config.gz")
    return subprocess.run(["zcat", "/proc/config.gz"], check=True, capture_output=True,
                          text=True).stdout


def grep_config(name: str) -> str:
    """``grep ^NAME= config`` -> the raw value, or "" when absent."""
    out = subprocess.run(["grep", "-m1", f"^{name}="], input=config_text(), capture_output=True,
                         text=True).stdout.strip()
    return out.partition("=")[2]


def test_read_kernel_config_equals_grep() -> None:
    ours = read_kernel_config()
    text = config_text()
    lines = [line for line in text.splitlines() if line.startswith("CONFIG_")]
    assert len(ours) == len(lines) > 100
    for name in ("CONFIG_BPF", "CONFIG_BPF_SYSCALL", "CONFIG_HZ", "CONFIG_NR_CPUS", "CONFIG_LSM"):
        assert ours.get(name, "") == grep_config(name)


def _values(spec: ObjectSpec, data: bytes) -> Dict[str, bytes]:
    return {e.name: data[e.offset:e.offset + e.size] for e in spec.externs if e.kind == "kconfig"}


def test_externs_fixture_values_match_config_and_uname() -> None:
    spec = ObjectSpec.from_file(str(EXTERNS))
    data = kconfig_data(spec)
    vals = _values(spec, data)
    # bool CONFIG_BPF_SYSCALL: y -> 1, n -> 0
    assert vals["CONFIG_BPF_SYSCALL"] == bytes([grep_config("CONFIG_BPF_SYSCALL") == "y"])
    # enum libbpf_tristate CONFIG_BPF_JIT: n=0, y=1, m=2
    tri = {"y": 1, "m": 2, "n": 0, "": 0}[grep_config("CONFIG_BPF_JIT")]
    assert int.from_bytes(vals["CONFIG_BPF_JIT"], "little") == tri
    # int CONFIG_HZ (weak), unsigned long CONFIG_NR_CPUS (weak)
    for name in ("CONFIG_HZ", "CONFIG_NR_CPUS"):
        raw = grep_config(name)
        assert int.from_bytes(vals[name], "little") == (int(raw, 0) if raw else 0)
    # char CONFIG_LSM[128] (weak): the string, NUL-padded
    lsm = grep_config("CONFIG_LSM").strip('"').encode()
    assert vals["CONFIG_LSM"] == lsm[:127] + b"\0" * (128 - len(lsm[:127]))
    # absent weak option stays zero
    assert vals["CONFIG_PUREBPF_NO_SUCH_OPTION"] == b"\0"
    # LINUX_KERNEL_VERSION from `uname -r`: a.b.c -> a<<16 | b<<8 | min(c, 255)
    release = subprocess.run(["uname", "-r"], check=True, capture_output=True, text=True).stdout
    m = re.match(r"(\d+)\.(\d+)\.(\d+)", release)
    assert m is not None
    a, b, c = (int(g) for g in m.groups())
    version = subprocess.run(["uname", "-v"], check=True, capture_output=True, text=True).stdout
    if "Debian " not in version and not os.path.exists("/proc/version_signature"):
        assert int.from_bytes(vals["LINUX_KERNEL_VERSION"], "little") == \
            (a << 16) + (b << 8) + min(c, 255)
    assert data == kconfig_data(spec)  # deterministic


def test_missing_strong_value_names_it() -> None:
    spec = ObjectSpec.from_file(str(EXTERNS))
    with pytest.raises(NotFoundError) as exc:
        kconfig_data(spec, config={"CONFIG_BPF_JIT": "y"})
    assert exc.value.what == "kconfig value"
    assert exc.value.name == "CONFIG_BPF_SYSCALL"
    assert "CONFIG_BPF_SYSCALL" in str(exc.value)


def test_weak_missing_values_are_zero_and_overrides_win() -> None:
    spec = ObjectSpec.from_file(str(EXTERNS))
    data = kconfig_data(spec, config={"CONFIG_BPF_SYSCALL": "y", "CONFIG_BPF_JIT": "m"},
                        overrides={"CONFIG_HZ": "0x3e8", "CONFIG_LSM": '"bpf"'},
                        virtuals={"LINUX_KERNEL_VERSION": str(kernel_version_code(5, 4, 300)),
                                  "LINUX_HAS_SYSCALL_WRAPPER": "y"})
    vals = _values(spec, data)
    assert vals["CONFIG_BPF_SYSCALL"] == b"\x01"
    assert vals["CONFIG_BPF_JIT"] == (2).to_bytes(4, "little")
    assert vals["CONFIG_HZ"] == (1000).to_bytes(4, "little")
    assert vals["CONFIG_NR_CPUS"] == bytes(8)
    assert vals["CONFIG_LSM"] == b"bpf" + bytes(125)
    assert vals["LINUX_KERNEL_VERSION"] == ((5 << 16) + (4 << 8) + 255).to_bytes(4, "little")
    assert vals["LINUX_HAS_SYSCALL_WRAPPER"] == b"\x01"


@pytest.mark.parametrize("kind,signed,size,value,expected", [
    ("bool", False, 1, "y", b"\x01"),
    ("bool", False, 1, "n", b"\x00"),
    ("tristate", False, 4, "m", b"\x02\0\0\0"),
    ("char", True, 1, "m", b"m"),
    ("char", True, 1, "65", b"A"),
    ("int", True, 4, "-1", b"\xff\xff\xff\xff"),
    ("int", True, 2, "-32768", b"\x00\x80"),
    ("int", False, 2, "0177", b"\x7f\x00"),
    ("int", False, 8, "0xffffffffffffffff", b"\xff" * 8),
    ("char_array", False, 4, '"abcdef"', b"abc\0"),
])
def test_encode_values(kind: str, signed: bool, size: int, value: str, expected: bytes) -> None:
    assert encode_kconfig_value("CONFIG_X", kind, signed, size, value) == expected


@pytest.mark.parametrize("kind,signed,size,value", [
    ("bool", False, 1, "m"),          # module value for a bool
    ("int", False, 4, "y"),           # letter for an int
    ("int", False, 1 + 1, "65536"),   # overflow of u16
    ("int", True, 2, "32768"),        # overflow of s16
    ("int", False, 4, "12abc"),       # not a number
    ("bool", False, 1, "1"),          # number for a bool
    ("int", False, 4, '"str"'),       # string for an int
    ("char_array", False, 8, '"open'),  # unterminated string
])
def test_encode_refuses_mismatches(kind: str, signed: bool, size: int, value: str) -> None:
    with pytest.raises(ParseError, match="CONFIG_X"):
        encode_kconfig_value("CONFIG_X", kind, signed, size, value)


def test_parse_kernel_config_rules(tmp_path: Path) -> None:
    text = "# comment\n# CONFIG_FOO is not set\nCONFIG_A=y\nCONFIG_B=\"x y\"\nCONFIG_A=n\nOTHER=1\n"
    assert parse_kernel_config(text) == {"CONFIG_A": "y", "CONFIG_B": '"x y"'}
    with pytest.raises(ParseError, match="no value"):
        parse_kernel_config("CONFIG_A=\n")
    gz = tmp_path / "config.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    assert read_kernel_config(str(gz)) == {"CONFIG_A": "y", "CONFIG_B": '"x y"'}
    plain = tmp_path / "config"
    plain.write_text(text)
    assert read_kernel_config(str(plain))["CONFIG_A"] == "y"
    with pytest.raises(NotFoundError):
        read_kernel_config(str(tmp_path / "missing"))
    bad = tmp_path / "bad.gz"
    bad.write_bytes(b"\x1f\x8b" + b"garbage")
    with pytest.raises(ParseError):
        read_kernel_config(str(bad))


def test_kernel_version_quirks(tmp_path: Path) -> None:
    none = str(tmp_path / "no_signature")
    assert kernel_version(release="6.18.44-fc", version="#1 SMP", signature_path=none) == \
        (6 << 16) + (18 << 8) + 44
    assert kernel_version(release="4.19.0-20-amd64", version="#1 SMP Debian 4.19.235-1 (2022-03-17)",
                          signature_path=none) == (4 << 16) + (19 << 8) + 235
    sig = tmp_path / "version_signature"
    sig.write_text("Ubuntu 5.15.0-91.101-generic 5.15.131\n")
    assert kernel_version(release="5.15.0-91-generic", version="#101-Ubuntu",
                          signature_path=str(sig)) == (5 << 16) + (15 << 8) + 131
    assert kernel_version(release="garbage", version="", signature_path=none) == 0


def test_unknown_linux_virtual_is_refused() -> None:
    import dataclasses

    spec = ObjectSpec.from_file(str(EXTERNS))
    ext = next(e for e in spec.externs if e.name == "LINUX_HAS_SYSCALL_WRAPPER")
    odd = dataclasses.replace(ext, name="LINUX_NO_SUCH_THING", weak=False)
    spec2 = dataclasses.replace(spec, externs=tuple(odd if e is ext else e for e in spec.externs))
    with pytest.raises(NotFoundError, match="LINUX_NO_SUCH_THING"):
        kconfig_data(spec2, config={"CONFIG_BPF_SYSCALL": "y", "CONFIG_BPF_JIT": "y"})
