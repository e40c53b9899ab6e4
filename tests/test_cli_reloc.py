"""``purebpf reloc`` and ``purebpf disasm --relocated`` checked against bpftool's view of the BTF.

For every byte-offset relocation of a direct member (access ``0:N``), the
member's name is read from the *local* object's BTF and its offset in the
*target* from the target BTF, both through ``bpftool -j btf dump`` -- so the
expected value never comes from purebpf.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "fixtures" / "core" / "obj"
BPFTOOL = shutil.which("bpftool") or ("/usr/sbin/bpftool" if Path("/usr/sbin/bpftool").exists() else None)
VMLINUX = Path("/sys/kernel/btf/vmlinux")

CASES = [
    (CORE / "fields.bpf.o", CORE / "target_v1.o"),
    (CORE / "fields.bpf.o", CORE / "target_v2.o"),
    (ROOT / "fixtures" / "obj" / "core_kernel.bpf.o", VMLINUX),
]


def purebpf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "purebpf", *args], capture_output=True, text=True)


def bpftool_types(path: Path) -> List[Dict[str, Any]]:
    if BPFTOOL is None:
        pytest.skip("oracle tool bpftool is not installed")
    out = subprocess.run([BPFTOOL, "-j", "btf", "dump", "file", str(path)], capture_output=True, check=True).stdout
    types: List[Dict[str, Any]] = json.loads(out.decode("utf-8", "surrogateescape"))["types"]
    return types


def essential(name: str) -> str:
    m = re.match(r"^(.*?[^_])___[^_].*$", name)
    return m.group(1) if m else name


def member_offset(types: List[Dict[str, Any]], struct: str, member: str) -> Optional[int]:
    """Byte offset of ``member`` in the target struct named ``struct`` (None if absent / bitfield)."""
    for t in types:
        if t["kind"] == "STRUCT" and t["name"] == struct:
            for m in t["members"]:
                if m["name"] == member and m["bits_offset"] % 8 == 0 and not m.get("bitfield_size"):
                    return int(m["bits_offset"]) // 8
    return None


@pytest.mark.parametrize("obj,target", CASES, ids=lambda p: p.name)
def test_reloc_json_offsets_match_bpftool(obj: Path, target: Path) -> None:
    if not target.exists():
        pytest.skip("kernel feature missing: /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF)")
    proc = purebpf("reloc", "--json", "--target-btf", str(target), str(obj))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    local = bpftool_types(obj)
    remote = bpftool_types(target)
    by_id = {t["id"]: t for t in local}
    checked = 0
    for prog in doc["programs"].values():
        assert prog["errors"] == []
        for r in prog["relocations"]:
            if r["kind_name"] != "byte_off" or not re.fullmatch(r"0:\d+", r["access_str"]):
                continue
            root = by_id[r["local_type_id"]]
            while root["kind"] in ("TYPEDEF", "CONST", "VOLATILE"):
                root = by_id[root["type_id"]]
            if root["kind"] != "STRUCT":
                continue
            member = root["members"][int(r["access_str"].split(":")[1])]
            expected = member_offset(remote, essential(root["name"]), member["name"])
            if expected is None:
                continue
            if r["outcome"] == "patched":
                assert r["new_value"] == expected, (r["access"], r["new_value"], expected)
                checked += 1
    assert checked > 0, "no direct member offsets to compare"


def test_reloc_text_explains_candidates_and_instructions() -> None:
    proc = purebpf("reloc", "--target-btf", str(CORE / "target_v2.o"), str(CORE / "fields.bpf.o"))
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "candidates:" in text and "before:" in text and "after:" in text
    assert re.search(r"value:\s+\S+.* -> ", text)


def test_disasm_relocated_shows_patched_immediates() -> None:
    target = CORE / "target_v2.o"
    obj = CORE / "fields.bpf.o"
    doc = json.loads(purebpf("reloc", "--json", "--target-btf", str(target), str(obj)).stdout)
    text = purebpf("disasm", "--relocated", "--no-source", "--target-btf", str(target), str(obj)).stdout
    changed = 0
    for name, prog in doc["programs"].items():
        block = text.split(f"{name}:  section", 1)[1].split("\n\n", 1)[0]
        for r in prog["relocations"]:
            if r["outcome"] != "patched" or r["orig_value"] == r["new_value"]:
                continue
            line = re.search(rf"^\s*{r['slot']}: .*$", block, re.M)
            assert line is not None
            assert f"-> {r['new_value']}" in line.group(0)
            changed += 1
    assert changed > 0, "target_v2 should move some fields"


def test_reloc_failure_names_what_is_missing(tmp_path: Path) -> None:
    """Relocating against a BTF that lacks the types poisons or errors, and says so."""
    proc = purebpf("reloc", "--json", "--target-btf", str(CORE / "target_v1.o"),
                   str(ROOT / "fixtures" / "obj" / "core_kernel.bpf.o"))
    doc = json.loads(proc.stdout)
    outcomes = {r["outcome"] for p in doc["programs"].values() for r in p["relocations"]}
    errors = [e for p in doc["programs"].values() for e in p["errors"]]
    assert outcomes & {"poisoned", "error"}
    if errors:
        assert proc.returncode == 1
        assert any("task_struct" in e for e in errors)
