"""``purebpf load``: the command line over the loader, checked with bpftool (root only)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from purebpf.cli._load import parse_assignment

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parent.parent
OBJ = ROOT / "fixtures" / "obj"


def purebpf(*args: str) -> "subprocess.CompletedProcess[str]":
    return subprocess.run([sys.executable, "-m", "purebpf", *args], capture_output=True, text=True,
                          cwd=str(ROOT))


def bpftool(*args: str) -> Any:
    tool = shutil.which("bpftool")
    if tool is None:
        pytest.fail("bpftool missing")
    out = subprocess.run([tool, *args, "-j"], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


@pytest.fixture(autouse=True)
def _root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")


@pytest.fixture(autouse=True)
def _remove_pins_by_name() -> Iterator[None]:
    """Maps declared with LIBBPF_PIN_BY_NAME are pinned under /sys/fs/bpf by a
    load, as libbpf and `bpftool prog loadall` do; remove the ones a test made."""
    root = "/sys/fs/bpf"
    before = set(os.listdir(root)) if os.path.isdir(root) else set()
    yield
    if os.path.isdir(root):
        for name in set(os.listdir(root)) - before:
            path = os.path.join(root, name)
            if os.path.isfile(path):
                os.unlink(path)


@pytest.fixture
def pin_dir() -> Iterator[str]:
    path = f"/sys/fs/bpf/purebpf-cli-{uuid.uuid4().hex[:12]}"
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_parse_assignment() -> None:
    assert parse_assignment("x=0x10") == ("x", 16)
    assert parse_assignment("flag=true") == ("flag", True)
    assert parse_assignment("name=abc") == ("name", b"abc")
    with pytest.raises(ValueError):
        parse_assignment("novalue")


def test_pins_confirmed_by_bpftool(pin_dir: str) -> None:
    """Printed ids are the kernel's: bpftool shows the pinned programs with them."""
    proc = purebpf("load", str(OBJ / "globals.bpf.o"), "--pin-dir", pin_dir, "--json")
    assert proc.returncode == 0, proc.stderr
    desc: Dict[str, List[Dict[str, Any]]] = json.loads(proc.stdout)
    names = {p["name"] for p in desc["programs"]}
    assert names == {"count_packets", "report_static"}
    for p in desc["programs"]:
        shown = bpftool("prog", "show", "pinned", os.path.join(pin_dir, p["name"]))
        assert shown["id"] == p["id"]
        assert shown["name"] == p["name"][:15]
        assert shown["type"] == p["type"] == "xdp"
        assert shown["bytes_xlated"] == 8 * p["xlated_insns"]
    for m in desc["maps"]:
        shown = bpftool("map", "show", "pinned", os.path.join(pin_dir, m["name"].replace(".", "_")))
        assert shown["id"] == m["id"] and shown["name"] == m["name"][:15]
        assert shown["type"] == m["type"]


def test_text_output_lists_programs_and_maps(pin_dir: str) -> None:
    proc = purebpf("load", str(OBJ / "linked.bpf.o"), "--pin-dir", pin_dir)
    assert proc.returncode == 0, proc.stderr
    progs = re.findall(r"^prog (\S+): type (\S+) id (\d+) xlated_insns (\d+)$", proc.stdout, re.M)
    assert {p[0] for p in progs} == {"xdp_from_a", "xdp_from_b"}
    for name, ptype, pid, count in progs:
        shown = bpftool("prog", "show", "id", pid)
        assert shown["name"] == name and shown["type"] == ptype
        assert shown["bytes_xlated"] == 8 * int(count)
    maps = re.findall(r"^map (\S+): type (\S+) id (\d+)$", proc.stdout, re.M)
    assert {m[0] for m in maps} == {"shared_map", "linked.bss", "linked.data"}


def test_without_pin_dir_nothing_survives() -> None:
    proc = purebpf("load", str(OBJ / "linked.bpf.o"), "--json")
    assert proc.returncode == 0, proc.stderr
    desc = json.loads(proc.stdout)
    ids = {p["id"] for p in desc["programs"]}
    # the process has exited: its programs are gone (bpftool lists what exists)
    alive = {p["id"] for p in bpftool("prog", "show")}
    assert not ids & alive


def test_set_changes_rodata(pin_dir: str) -> None:
    from purebpf.spec import ObjectSpec

    sec, var = ObjectSpec.from_file(OBJ / "globals.bpf.o").variable("cfg_verdict")
    default = int.from_bytes(sec.data[var.offset:var.offset + var.size], "little")
    wanted = 3 if default != 3 else 1
    proc = purebpf("load", str(OBJ / "globals.bpf.o"), "--set", f"cfg_verdict={wanted}", "--pin-dir", pin_dir)
    assert proc.returncode == 0, proc.stderr
    shown = bpftool("map", "dump", "pinned", os.path.join(pin_dir, "globals_rodata"))
    raw = bytes(int(b, 16) for b in shown[0]["value"])
    assert int.from_bytes(raw[var.offset:var.offset + var.size], "little") == wanted
    formatted = shown[0]["formatted"]["value"][".rodata"]
    assert {"cfg_verdict": wanted} in formatted


def test_trace_shows_the_calls() -> None:
    proc = purebpf("load", str(OBJ / "globals.bpf.o"), "--trace")
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr
    assert re.search(r"^BPF_BTF_LOAD .*-> fd \d+$", err, re.M)
    assert re.search(r'^BPF_MAP_CREATE map_type=ARRAY .*name="globals.bss".*-> fd \d+$', err, re.M)
    assert re.search(r'^BPF_PROG_LOAD prog_type=XDP .*name="count_packets".*-> fd \d+$', err, re.M)
    # order: BTF before maps before programs
    assert err.index("BPF_BTF_LOAD btf_size") < err.index("BPF_MAP_CREATE") < err.index(
        'BPF_PROG_LOAD prog_type=XDP')


def test_verifier_rejection_exit_1(tmp_path: Path) -> None:
    src = tmp_path / "bad.bpf.c"
    src.write_text(textwrap.dedent("""\
        #include <linux/bpf.h>
        #include <bpf/bpf_helpers.h>
        char LICENSE[] SEC("license") = "GPL";
        int table[4];
        SEC("xdp")
        int bad_index(struct xdp_md *ctx)
        {
            int idx = ctx->rx_queue_index;
            return table[idx];
        }
    """))
    obj = tmp_path / "bad.bpf.o"
    subprocess.run(["clang-19", "-g", "-O2", "-target", "bpf", "-c", str(src), "-o", str(obj)], check=True)
    proc = purebpf("load", str(obj))
    assert proc.returncode == 1
    assert "bad_index" in proc.stderr and "return table[idx];" in proc.stderr
    assert len(proc.stderr.splitlines()) <= 3  # the short message, not the whole log


@pytest.mark.parametrize("obj", ["maps.bpf.o", "sections_net.bpf.o", "struct_ops.bpf.o"])
def test_every_map_and_program_type_named_as_bpftool_does(obj: str, pin_dir: str) -> None:
    """Ids, names and type names of many map and program types, checked one
    by one with bpftool while the objects are pinned."""
    proc = purebpf("load", str(OBJ / obj), "--pin-dir", pin_dir, "--json")
    assert proc.returncode == 0, proc.stderr
    desc = json.loads(proc.stdout)
    assert desc["maps"] and desc["programs"]
    for m in desc["maps"]:
        shown = bpftool("map", "show", "id", str(m["id"]))
        assert (shown["name"], shown["type"]) == (m["name"][:15], m["type"])
    for p in desc["programs"]:
        shown = bpftool("prog", "show", "id", str(p["id"]))
        # bpftool prints the full function name from BTF when the kernel's is cut
        assert shown["name"] in (p["name"], p["name"][:15])
        assert shown["type"] == p["type"]
        assert shown["bytes_xlated"] == 8 * p["xlated_insns"]
