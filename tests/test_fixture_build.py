"""vmlinux.h from purebpf builds the same BPF objects as bpftool's.

Every fixture source is compiled twice with clang -- once against the header
``purebpf btf dump /sys/kernel/btf/vmlinux --format c`` writes, once against
``bpftool btf dump file /sys/kernel/btf/vmlinux format c`` -- and the CO-RE
relocation records of the two objects (read by llvm-objdump, not by purebpf)
must be identical, as must the objects themselves.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "fixtures" / "src").glob("*.bpf.c"))
CLANG = shutil.which("clang-19") or shutil.which("clang")
OBJDUMP = shutil.which("llvm-objdump-19")
BPFTOOL = shutil.which("bpftool") or ("/usr/sbin/bpftool" if Path("/usr/sbin/bpftool").exists() else None)
VMLINUX = Path("/sys/kernel/btf/vmlinux")


@pytest.fixture(scope="module")
def headers(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    if not VMLINUX.exists():
        pytest.skip("kernel feature missing: /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF)")
    for tool, name in ((CLANG, "clang-19"), (OBJDUMP, "llvm-objdump-19"), (BPFTOOL, "bpftool")):
        if tool is None:
            pytest.skip(f"oracle tool {name} is not installed")
    base = tmp_path_factory.mktemp("headers")
    dirs = {"purebpf": base / "purebpf", "bpftool": base / "bpftool"}
    for d in dirs.values():
        d.mkdir()
    ours = subprocess.run([sys.executable, "-m", "purebpf", "btf", "dump", str(VMLINUX), "--format", "c"],
                          capture_output=True, check=True).stdout
    (dirs["purebpf"] / "vmlinux.h").write_bytes(ours)
    theirs = subprocess.run([str(BPFTOOL), "btf", "dump", "file", str(VMLINUX), "format", "c"],
                            capture_output=True, check=True).stdout
    (dirs["bpftool"] / "vmlinux.h").write_bytes(theirs)
    return dirs


def _extra_flags(source: Path) -> List[str]:
    """The per-fixture clang flags from fixtures/build.sh's table."""
    table = (ROOT / "fixtures" / "build.sh").read_text()
    m = re.search(rf"^{re.escape(source.name[:-len('.bpf.c')])}[ \t]+\S+[ \t]*(.*)$", table, re.M)
    return m.group(1).split() if m and m.group(1).strip() else []


def _compile(source: Path, include: Path, out: Path) -> bytes:
    cmd = [str(CLANG), "-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86", "-I", str(include),
           "-I", str(ROOT / "fixtures" / "include"), f"-fdebug-prefix-map={ROOT}=.",
           # the two headers live in different directories; hide that from DWARF
           f"-fdebug-prefix-map={include}=/vmlinux",
           *_extra_flags(source), "-c", str(source), "-o", str(out)]
    subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True)
    return out.read_bytes()


def _core_relocations(obj: Path) -> List[Tuple[str, str]]:
    """CO-RE records as llvm-objdump shows them (``CO-RE <kind> [id] struct x::y (0:1)``)."""
    out = subprocess.run([str(OBJDUMP), "-dr", "--mattr=+alu32", str(obj)], capture_output=True, text=True,
                         check=True).stdout
    records = []
    section = ""
    for line in out.splitlines():
        m = re.match(r"Disassembly of section (.+):", line)
        if m:
            section = m.group(1)
        if "CO-RE" in line:
            records.append((section, line.strip()))
    return records


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_fixture_builds_identically_against_purebpf_header(source: Path, headers: Dict[str, Path],
                                                           tmp_path: Path) -> None:
    ours = tmp_path / "purebpf.o"
    theirs = tmp_path / "bpftool.o"
    _compile(source, headers["purebpf"], ours)
    _compile(source, headers["bpftool"], theirs)
    assert _core_relocations(ours) == _core_relocations(theirs)
    assert ours.read_bytes() == theirs.read_bytes()


def test_core_fixture_has_relocations_to_compare(headers: Dict[str, Path], tmp_path: Path) -> None:
    """The comparison above is not vacuous: a CO-RE fixture yields records."""
    source = ROOT / "fixtures" / "src" / "core_kernel.bpf.c"
    out = tmp_path / "core.o"
    _compile(source, headers["purebpf"], out)
    assert len(_core_relocations(out)) > 10
