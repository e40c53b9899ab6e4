"""The ``purebpf`` command, checked end to end against llvm-readelf, llvm-objdump and bpftool.

Each test runs the real command (``python -m purebpf``) in a subprocess and
compares what it prints with what an independent tool says about the same
object -- never with purebpf's own output.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set, Tuple

import pytest

from conftest import fixture_objects

OBJECTS = fixture_objects()
READELF = shutil.which("llvm-readelf-19")
OBJDUMP = shutil.which("llvm-objdump-19")
BPFTOOL = shutil.which("bpftool") or ("/usr/sbin/bpftool" if Path("/usr/sbin/bpftool").exists() else None)


def purebpf(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "purebpf", *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"purebpf {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def need(tool: object, name: str) -> None:
    if tool is None:
        pytest.skip(f"oracle tool {name} is not installed")


def readelf_sections(path: Path) -> Dict[int, Tuple[str, str]]:
    """Section index -> (name, flags) from ``llvm-readelf -S``."""
    out = subprocess.run([READELF, "-S", "-W", str(path)], capture_output=True, text=True, check=True).stdout
    sections = {}
    for line in out.splitlines():
        m = re.match(r"\s*\[\s*(\d+)\]\s+(\S*)\s+\S+\s+[0-9a-f]+\s+[0-9a-f]+\s+[0-9a-f]+\s+[0-9a-f]+\s+(\S*)", line)
        if m:
            sections[int(m.group(1))] = (m.group(2), m.group(3))
    return sections


def readelf_symbols(path: Path) -> List[Dict[str, str]]:
    out = subprocess.run([READELF, "-s", "-W", str(path)], capture_output=True, text=True, check=True).stdout
    syms = []
    for line in out.splitlines():
        m = re.match(r"\s*\d+:\s+([0-9a-f]+)\s+(\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*(\S*)", line)
        if m:
            syms.append({"value": m.group(1), "size": m.group(2), "type": m.group(3), "bind": m.group(4),
                         "ndx": m.group(6), "name": m.group(7)})
    return syms


def objdump_opcodes(path: Path) -> Dict[str, List[Tuple[int, int]]]:
    """Function name -> [(slot, opcode byte)] from ``llvm-objdump -d``."""
    out = subprocess.run([OBJDUMP, "-d", str(path)], capture_output=True, text=True, check=True).stdout
    funcs: Dict[str, List[Tuple[int, int]]] = {}
    current = None
    for line in out.splitlines():
        m = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if m:
            current = m.group(1)
            funcs[current] = []
            continue
        m = re.match(r"^\s+(\d+):\s+([0-9a-f]{2}) ", line)
        if m and current is not None:
            funcs[current].append((int(m.group(1)), int(m.group(2), 16)))
    return funcs


@pytest.mark.parametrize("obj", OBJECTS, ids=lambda p: p.name)
def test_inspect_json_programs_and_maps_match_readelf(obj: Path) -> None:
    need(READELF, "llvm-readelf-19")
    doc = json.loads(purebpf("inspect", "--json", str(obj)).stdout)
    sections = readelf_sections(obj)
    symbols = readelf_symbols(obj)
    exec_sections = {str(i) for i, (_, flags) in sections.items() if "X" in flags}
    expected_funcs = {(s["name"], sections[int(s["ndx"])][0]) for s in symbols
                      if s["type"] == "FUNC" and s["ndx"] in exec_sections and int(s["size"]) > 0}
    got_funcs = {(p["name"], p["section"]) for p in doc["programs"] + doc["subprograms"]}
    assert got_funcs == expected_funcs
    assert all(p["section"] != ".text" for p in doc["programs"])

    # libbpf makes maps of BTF-defined .maps entries, legacy `maps`, and struct_ops variables.
    map_sections = {".maps", "maps", ".struct_ops", ".struct_ops.link"}
    maps_index = [str(i) for i, (name, _) in sections.items() if name in map_sections]
    expected_maps = {s["name"] for s in symbols if s["ndx"] in maps_index and s["type"] == "OBJECT"}
    got_maps = {m["name"] for m in doc["maps"]}
    assert got_maps == expected_maps

    license_out = subprocess.run([READELF, "-p", "license", str(obj)], capture_output=True, text=True).stdout
    m = re.search(r"\[\s*0\]\s+(.*)", license_out)
    assert doc["license"] == (m.group(1).strip() if m else "")


@pytest.mark.parametrize("obj", OBJECTS, ids=lambda p: p.name)
def test_disasm_lines_match_objdump(obj: Path) -> None:
    need(OBJDUMP, "llvm-objdump-19")
    text = purebpf("disasm", "--no-source", str(obj)).stdout
    ours: Dict[str, List[Tuple[int, int]]] = {}
    current = None
    for line in text.splitlines():
        m = re.match(r"^(\S+):\s+section ", line)
        if m:
            current = m.group(1)
            ours[current] = []
            continue
        m = re.match(r"^\s*(\d+): \(([0-9a-f]{2})\) ", line)
        if m and current is not None:
            ours[current].append((int(m.group(1)), int(m.group(2), 16)))
    # Labels like <.text> mark code with no function symbol (e.g. left by static
    # linking); a BPF loader has no program there, so only symbols count.
    theirs = {name: insns for name, insns in objdump_opcodes(obj).items() if insns and not name.startswith(".")}
    # llvm-objdump numbers slots from the section start; ours from the function start.
    rebased = {name: [(slot - insns[0][0], op) for slot, op in insns] for name, insns in theirs.items()}
    assert ours == rebased


def test_disasm_annotates_maps_globals_and_source_lines() -> None:
    obj = Path(__file__).resolve().parent.parent / "fixtures" / "obj" / "globals.bpf.o"
    need(READELF, "llvm-readelf-19")
    text = purebpf("disasm", str(obj)).stdout
    # Every global variable that a relocation names in llvm-readelf -r shows up annotated.
    relocs = subprocess.run([READELF, "-r", "-W", str(obj)], capture_output=True, text=True, check=True).stdout
    objects = {s["name"] for s in readelf_symbols(obj) if s["type"] == "OBJECT"}
    code_sections = {name for name, flags in readelf_sections(obj).values() if "X" in flags}
    named: Set[str] = set()
    in_code = False
    for line in relocs.splitlines():
        head = re.match(r"Relocation section '\.rela?(.+)'", line)
        if head:
            in_code = head.group(1) in code_sections
            continue
        if not in_code:
            continue
        m = re.match(r"\s*[0-9a-f]+\s+[0-9a-f]+\s+\S+\s+[0-9a-f]+\s+(\S+)", line)
        if m and m.group(1) in objects:
            named.add(m.group(1))
    assert named, "fixture should reference named globals"
    for name in named:
        assert re.search(rf"; .*\b{re.escape(name)}\b", text), f"no annotation naming {name}"
    assert re.search(r"^; .+\[globals\.bpf\.c:\d+\]$", text, re.M), "C source lines from line_info expected"


@pytest.mark.parametrize("obj", OBJECTS[:4], ids=lambda p: p.name)
def test_btf_dump_raw_matches_bpftool(obj: Path) -> None:
    need(BPFTOOL, "bpftool")
    ours = purebpf("btf", "dump", str(obj)).stdout
    theirs = subprocess.run([BPFTOOL, "btf", "dump", "file", str(obj)], capture_output=True, text=True,
                            check=True).stdout
    assert ours == theirs


def test_btf_dump_json_matches_bpftool() -> None:
    need(BPFTOOL, "bpftool")
    obj = OBJECTS[0]
    ours = json.loads(purebpf("btf", "dump", "--format", "json", str(obj)).stdout)
    theirs = json.loads(subprocess.run([BPFTOOL, "-j", "btf", "dump", "file", str(obj)], capture_output=True,
                                       text=True, check=True).stdout)
    assert ours == theirs


def test_bad_object_gives_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bpf.o"
    bad.write_bytes(OBJECTS[0].read_bytes()[:100])
    proc = purebpf("inspect", str(bad), check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("purebpf: error: ")
    assert str(bad) in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_program_is_named() -> None:
    proc = purebpf("disasm", "--prog", "no_such_prog", str(OBJECTS[0]), check=False)
    assert proc.returncode == 1
    assert "no_such_prog" in proc.stderr and "Traceback" not in proc.stderr


def test_console_script_and_module_agree() -> None:
    exe = shutil.which("purebpf")
    if exe is None:
        pytest.skip("the purebpf console script is not on PATH (package not installed)")
    a = subprocess.run([exe, "inspect", "--json", str(OBJECTS[0])], capture_output=True, text=True, check=True).stdout
    b = purebpf("inspect", "--json", str(OBJECTS[0])).stdout
    assert json.loads(a) == json.loads(b)
