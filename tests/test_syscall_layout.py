"""The ctypes layouts of purebpf.syscall against two independent oracles.

1. gcc: ``offsetof``/``sizeof`` of every field that Debian's
   ``<linux/bpf.h>`` / ``<linux/perf_event.h>`` (Linux 6.1 headers) declare,
   compiled and run.
2. The running kernel's own BTF (/sys/kernel/btf/vmlinux, read with
   purebpf.btf): every field, including those newer than the header.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple, Type

import pytest

from purebpf.btf import Btf
from purebpf.btf.types import Struct, Union
from purebpf.syscall import attrs, info, perf

Leaf = Tuple[str, int, int, bool]  # path, byte offset, byte size, is-bitfield

#: (ctypes class, C type, prefix of its members inside that C type)
STRUCTS: List[Tuple[type, str, str]] = [
    *[(cls, "union bpf_attr", prefix) for cls, prefix in attrs.ATTR_VARIANTS],
    (info.BpfProgInfo, "struct bpf_prog_info", ""),
    (info.BpfMapInfo, "struct bpf_map_info", ""),
    (info.BpfBtfInfo, "struct bpf_btf_info", ""),
    (info.BpfLinkInfo, "struct bpf_link_info", ""),
    (perf.PerfEventAttr, "struct perf_event_attr", ""),
]


def leaves(cls: type, prefix: str = "", base: int = 0) -> Iterator[Leaf]:
    """Every named scalar/array field of a ctypes structure, flattened to a C member path."""
    anonymous = getattr(cls, "_anonymous_", ())
    for spec in cls._fields_:  # type: ignore[attr-defined]
        name, ctype = spec[0], spec[1]
        descr = getattr(cls, name)
        offset = base + descr.offset
        if name in anonymous:
            yield from leaves(ctype, prefix, offset)
            continue
        if name.startswith("_"):
            continue  # padding / reserved bits
        if len(spec) == 3:
            yield prefix + name, offset, ctypes.sizeof(ctype), True
        elif isinstance(ctype, type) and issubclass(ctype, (ctypes.Structure, ctypes.Union)):
            yield from leaves(ctype, prefix + name + ".", offset)
        else:
            yield prefix + name, offset, ctypes.sizeof(ctype), False


def all_leaves() -> List[Tuple[str, str, int, int, bool]]:
    out = []
    for cls, ctype, prefix in STRUCTS:
        for path, off, size, bit in leaves(cls):
            out.append((ctype, prefix + path, off, size, bit))
    return out


def test_leaf_walk_sees_every_variant() -> None:
    paths = {(c, p) for c, p, _, _, _ in all_leaves()}
    for needle in [("union bpf_attr", "prog_load_placeholder")]:
        assert needle not in paths
    assert ("union bpf_attr", "log_true_size") in paths
    assert ("union bpf_attr", "link_create.tracing.cookie") in paths
    assert ("union bpf_attr", "test.batch_size") in paths
    assert ("struct bpf_link_info", "perf_event.kprobe.func_name") in paths
    assert len(paths) > 300


# -- gcc oracle ---------------------------------------------------------------------

def _gcc_offsets(tmp_path: Path) -> Dict[Tuple[str, str], Tuple[int, int]]:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc not installed")
    lines = []
    for ctype, path, _off, _size, bit in all_leaves():
        if bit:
            continue
        lines.append(
            f'  printf("%s|%s|%zu|%zu\\n", "{ctype}", "{path}", offsetof({ctype}, {path}), '
            f"sizeof((({ctype} *)0)->{path}));"
        )
    head = "#include <stddef.h>\n#include <stdio.h>\n#include <linux/bpf.h>\n#include <linux/perf_event.h>\n"
    head += "int main(void) {\n"
    first_line = head.count("\n") + 1
    body = list(lines)
    src = tmp_path / "probe.c"
    exe = tmp_path / "probe"
    for _attempt in range(3):
        src.write_text(head + "\n".join(body) + "\n  return 0;\n}\n")
        res = subprocess.run([gcc, "-o", str(exe), str(src)], capture_output=True, text=True)
        if res.returncode == 0:
            break
        bad = set()
        for m in re.finditer(r"probe\.c:(\d+):\d+: error:", res.stderr):
            bad.add(int(m.group(1)) - first_line)
        assert bad, res.stderr[:2000]
        body = [line for i, line in enumerate(body) if i not in bad]
    else:
        pytest.fail("probe did not compile")
    run = subprocess.run([str(exe)], capture_output=True, text=True, check=True)
    out: Dict[Tuple[str, str], Tuple[int, int]] = {}
    for line in run.stdout.splitlines():
        ctype, path, off, size = line.split("|")
        out[(ctype, path)] = (int(off), int(size))
    return out


def test_layouts_match_gcc_and_uapi_header(tmp_path: Path) -> None:
    c = _gcc_offsets(tmp_path)
    checked = 0
    for ctype, path, off, size, bit in all_leaves():
        if bit or (ctype, path) not in c:
            continue
        assert c[(ctype, path)] == (off, size), f"{ctype} {path}: gcc {c[(ctype, path)]} vs ours {(off, size)}"
        checked += 1
    # the 6.1 header knows the large majority of the fields
    assert checked > 200, checked
    # fields every header since 5.x has must be among them
    for must in ["log_buf", "fd_array", "link_create.perf_event.bpf_cookie", "test.ctx_out",
                 "batch.elem_flags", "btf_log_level"]:
        assert ("union bpf_attr", must) in c


# -- kernel BTF oracle -------------------------------------------------------------

@pytest.fixture(scope="module")
def vmlinux() -> Btf:
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        pytest.skip("kernel feature missing: /sys/kernel/btf/vmlinux")
    return Btf.load_vmlinux()


def _btf_member(btf: Btf, type_id: int, name: str) -> Optional[Tuple[int, int, int]]:
    """(bit offset, member type id, bitfield size) of ``name`` in a struct/union,
    looking through anonymous members."""
    t = btf[btf.skip_modifiers(type_id)]
    assert isinstance(t, (Struct, Union)), t
    for m in t.members:
        if m.name == name:
            return m.bit_offset, m.type, m.bitfield_size
    for m in t.members:
        if m.name == "":
            found = _btf_member(btf, m.type, name)
            if found is not None:
                return m.bit_offset + found[0], found[1], found[2]
    return None


def _btf_path(btf: Btf, root: int, path: str) -> Tuple[int, int, int]:
    bit = 0
    tid = root
    bits = 0
    for part in path.split("."):
        found = _btf_member(btf, tid, part)
        assert found is not None, f"kernel BTF has no member {path!r} ({part!r})"
        bit += found[0]
        tid = found[1]
        bits = found[2]
    return bit, tid, bits


def test_layouts_match_kernel_btf(vmlinux: Btf) -> None:
    roots: Dict[str, int] = {}
    for ctype in {c for _, c, _ in STRUCTS}:
        kind_name, name = ctype.split(" ")
        t = vmlinux.find(name)
        roots[ctype] = t.id
    checked = 0
    for ctype, path, off, size, bit in all_leaves():
        bitoff, tid, bits = _btf_path(vmlinux, roots[ctype], path)
        if bit:
            continue
        assert bits == 0, path
        assert bitoff % 8 == 0, path
        assert (bitoff // 8, vmlinux.size_of(tid)) == (off, size), \
            f"{ctype} {path}: kernel BTF {(bitoff // 8, vmlinux.size_of(tid))} vs ours {(off, size)}"
        checked += 1
    assert checked > 300


@pytest.mark.parametrize("cls,name", [
    (info.BpfProgInfo, "bpf_prog_info"),
    (info.BpfMapInfo, "bpf_map_info"),
    (info.BpfBtfInfo, "bpf_btf_info"),
    (info.BpfLinkInfo, "bpf_link_info"),
    (perf.PerfEventAttr, "perf_event_attr"),
])
def test_struct_sizes_match_kernel(vmlinux: Btf, cls: Type[ctypes.Structure], name: str) -> None:
    t = vmlinux.find(name)
    assert ctypes.sizeof(cls) == vmlinux.size_of(t.id)


def test_attr_variants_fit_in_union(vmlinux: Btf) -> None:
    union_size = vmlinux.size_of(vmlinux.find("bpf_attr").id)
    for cls, _prefix in attrs.ATTR_VARIANTS:
        assert ctypes.sizeof(cls) <= union_size, cls.__name__
    # the largest variant (prog_load) ends where the kernel's union ends
    assert max(ctypes.sizeof(c) for c, _ in attrs.ATTR_VARIANTS) == union_size


def test_bitfields_match_kernel_btf(vmlinux: Btf) -> None:
    """gpl_compatible and perf_event_attr's flag bits sit at the kernel's bit positions."""
    checked = 0
    for cls, ctype, prefix in STRUCTS:
        root = vmlinux.find(ctype.split(" ")[1]).id
        for spec in cls._fields_:  # type: ignore[attr-defined]
            if len(spec) != 3 or spec[0].startswith("_"):
                continue
            name, ctyp, nbits = spec
            descr = getattr(cls, name)
            # before Python 3.14 ctypes encodes a bitfield in descr.size as
            # (bit count << 16) | bit offset within the storage unit
            in_unit = getattr(descr, "bit_offset", descr.size & 0xFFFF)
            count = getattr(descr, "bit_size", descr.size >> 16)
            ours_bit = descr.offset * 8 + in_unit
            bitoff, _tid, bits = _btf_path(vmlinux, root, name)
            assert bitoff == ours_bit, (ctype, name)
            assert count == nbits and bits in (0, nbits), (ctype, name)
            checked += 1
    assert checked >= 38  # gpl_compatible + the 37 perf_event_attr flag fields
