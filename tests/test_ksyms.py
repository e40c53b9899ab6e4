"""purebpf.loader.ksyms: kernel symbol addresses and BTF ids.

Oracles: /proc/kallsyms read with awk, and ``bpftool btf dump file
/sys/kernel/btf/vmlinux`` for BTF ids of kfuncs and kernel variables.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Dict

import pytest

from purebpf.errors import NotFoundError, RelocationError
from purebpf.loader.ksyms import KernelResolver, KsymResolver, read_kallsyms
from purebpf.spec import ExternSpec, ObjectSpec

ROOT = Path(__file__).resolve().parent.parent
OBJ = ROOT / "fixtures" / "obj"
VMLINUX = Path("/sys/kernel/btf/vmlinux")


def needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")  # kallsyms shows zero addresses otherwise


def awk_address(name: str) -> int:
    out = subprocess.run(["awk", f'$3 == "{name}" {{ print $1; exit }}', "/proc/kallsyms"],
                         check=True, capture_output=True, text=True).stdout.strip()
    assert out, f"{name} not in /proc/kallsyms"
    return int(out, 16)


_BPFTOOL: Dict[str, str] = {}


def bpftool_ids(kind: str, names: "list[str]") -> Dict[str, int]:
    """BTF ids of ``KIND 'name'`` lines in bpftool's raw dump of vmlinux."""
    if not VMLINUX.exists():
        pytest.skip("kernel feature missing: vmlinux BTF (CONFIG_DEBUG_INFO_BTF)")
    if shutil.which("bpftool") is None:
        pytest.skip("oracle tool bpftool is not installed")
    if "text" not in _BPFTOOL:
        _BPFTOOL["text"] = subprocess.run(["bpftool", "btf", "dump", "file", str(VMLINUX)],
                                          check=True, capture_output=True, text=True).stdout
    out = {}
    for name in names:
        m = re.search(rf"^\[(\d+)\] {kind} '{re.escape(name)}'", _BPFTOOL["text"], re.MULTILINE)
        if m:
            out[name] = int(m.group(1))
    return out


def test_kallsyms_addresses_equal_awk() -> None:
    needs_root()
    names = ["__start_BTF", "bpf_prog_put", "_stext", "bpf_map_put"]
    found = read_kallsyms(names)
    assert set(found) == set(names)
    for name in names:
        assert found[name] == awk_address(name)
    assert "purebpf_no_such_symbol" not in read_kallsyms(["purebpf_no_such_symbol"])


def test_whole_kallsyms_read_agrees() -> None:
    needs_root()
    every = read_kallsyms()
    assert len(every) > 10000
    assert every["__start_BTF"] == awk_address("__start_BTF")


def test_fixture_externs_resolve_to_bpftool_ids_and_kallsyms() -> None:
    needs_root()
    spec = ObjectSpec.from_file(str(OBJ / "externs.bpf.o"))
    resolver = KsymResolver()
    kfuncs = [e for e in spec.externs if e.kind == "kfunc"]
    ids = bpftool_ids("FUNC", [e.name for e in kfuncs])
    assert kfuncs
    for ext in kfuncs:
        target = resolver.kfunc(ext)
        assert target is not None and target.btf_id == ids[ext.name]
        assert target.fd_index == 0
    start = spec.extern("__start_BTF")
    ks = resolver.ksym_var(start)
    assert ks is not None and ks.address == awk_address("__start_BTF") and ks.btf_id == 0
    assert resolver.ksym_var(spec.extern("purebpf_no_such_symbol")) is None  # weak


def test_typed_ksym_is_vmlinux_var_id() -> None:
    spec = ObjectSpec.from_file(str(OBJ / "ksym_typed.bpf.o"))
    ids = bpftool_ids("VAR", ["runqueues"])
    if "runqueues" not in ids:
        pytest.skip("kernel feature missing: per-CPU variables in vmlinux BTF")
    resolver = KsymResolver()
    target = resolver.ksym_var(spec.extern("runqueues"))
    assert target is not None and target.btf_id == ids["runqueues"]
    assert resolver.ksym_var(spec.extern("purebpf_no_such_percpu_var")) is None  # weak


def test_unknown_strong_ksym_is_not_found() -> None:
    spec = ObjectSpec.from_file(str(OBJ / "externs.bpf.o"))
    resolver = KsymResolver(kallsyms_path="/proc/kallsyms")
    weak = spec.extern("purebpf_no_such_symbol")
    strong = dataclasses.replace(weak, weak=False)
    with pytest.raises(NotFoundError) as exc:
        resolver.ksym_var(strong)
    assert exc.value.what == "ksym" and exc.value.name == "purebpf_no_such_symbol"
    kfunc = dataclasses.replace(spec.extern("bpf_task_acquire"), name="purebpf_no_such_kfunc")
    with pytest.raises(NotFoundError, match="purebpf_no_such_kfunc"):
        resolver.kfunc(kfunc)
    typed = ExternSpec(name="purebpf_no_such_var", kind="ksym_var", type_id=1, weak=False,
                       section=".ksyms", size=0, offset=0)
    with pytest.raises(NotFoundError, match="purebpf_no_such_var"):
        resolver.ksym_var(typed)


def test_kallsyms_parsing_rules() -> None:
    text = ("ffffffff81000000 T _stext\n"
            "ffffffff81000010 t dup_sym\n"
            "ffffffff81000010 t dup_sym\n"
            "ffffffffc0000000 t mod_fn\t[some_module]\n"
            "ffffffff81000020 T prefix_match_longer\n")
    assert read_kallsyms(["_stext", "mod_fn", "prefix_match"], text=text) == \
        {"_stext": 0xffffffff81000000, "mod_fn": 0xffffffffc0000000}
    assert read_kallsyms(["dup_sym"], text=text) == {"dup_sym": 0xffffffff81000010}
    with pytest.raises(RelocationError, match="ambiguous"):
        read_kallsyms(["amb"], text="0000000000000001 T amb\n0000000000000002 t amb\n")
    assert read_kallsyms(None, text=text)["mod_fn"] == 0xffffffffc0000000
    with pytest.raises(NotFoundError):
        read_kallsyms(["x"], path="/nonexistent/kallsyms")


def test_kernel_resolver_maps() -> None:
    r = KernelResolver({"events": 5}, {".bss": 6})
    assert r.map_fd("events") == 5 and r.data_map_fd(".bss") == 6
    with pytest.raises(NotFoundError, match="nope"):
        r.map_fd("nope")
    with pytest.raises(NotFoundError, match=".data"):
        r.data_map_fd(".data")


def test_type_compatibility_checked_with_local_btf() -> None:
    """With the object's BTF, every fixture ksym/kfunc is compatible with the
    kernel's; a kfunc whose local prototype differs is refused, as libbpf does."""
    if not VMLINUX.exists():
        pytest.skip("kernel feature missing: vmlinux BTF")
    for fixture in ("externs.bpf.o", "ksym_typed.bpf.o"):
        spec = ObjectSpec.from_file(str(OBJ / fixture))
        resolver = KsymResolver(local_btf=spec.btf)
        for ext in spec.externs:
            if ext.kind == "kfunc":
                resolver.kfunc(ext)
            elif ext.kind == "ksym_var":
                resolver.ksym_var(ext)
    spec = ObjectSpec.from_file(str(OBJ / "externs.bpf.o"))
    resolver = KsymResolver(local_btf=spec.btf)
    # bpf_task_acquire's local prototype (one task pointer) under the name of a
    # kfunc that takes no argument
    wrong = dataclasses.replace(spec.extern("bpf_task_acquire"), name="bpf_rcu_read_lock")
    with pytest.raises(RelocationError, match="incompatible"):
        resolver.kfunc(wrong)
