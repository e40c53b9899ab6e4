"""ObjectSpec from ELF objects, checked against independent oracles.

- sections, symbols, relocations: ``llvm-readelf-19 --elf-output-style=JSON``
- programs, instructions, maps, global data: libbpf.so.1 through ctypes
  (``bpf_object__open_file`` -- open only, nothing is loaded)
- big-endian objects: the same source compiled for bpfel must give the same
  programs, relocations and maps

Objects: every committed fixture (fixtures/obj/*.o) plus a few sources in
this file compiled with clang-19 into a temporary directory, which exercise
externs, kfuncs, callbacks, map-in-map and prog-array initial values.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

from conftest import fixture_objects
from purebpf.errors import NotFoundError
from purebpf.insn import encode
from purebpf.spec import ObjectSpec, ProgramSpec, RelocationKind

CLANG = "clang-19"
READELF = "llvm-readelf-19"

EXTRA_SOURCE = r"""
#include "vmlinux.h"
#include <bpf_helpers.h>
#include <bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u32);
	__type(value, u64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} rb SEC(".maps");

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, u32);
	__type(value, u32);
} inner1 SEC(".maps"), inner2 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 3);
	__type(key, u32);
	__array(values, struct inner);
} outer SEC(".maps") = { .values = { &inner1, 0, &inner2 } };

int tail_a(void *ctx);
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__uint(key_size, sizeof(u32));
	__array(values, int (void *));
} jmp SEC(".maps") = { .values = { [1] = (void *)&tail_a } };

struct {
	__uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
	__uint(max_entries, 16);
	__type(value, u32);
	__uint(map_extra, 3);
} bloom SEC(".maps");

volatile const int my_const = 42;
const char msg[] = "hello %d";
int my_data = 7;
u64 my_bss;
u64 other_bss[4];
int custom_data SEC(".data.custom") = 5;

extern int LINUX_KERNEL_VERSION __kconfig;
extern bool CONFIG_BPF_SYSCALL __kconfig __weak;
extern u64 CONFIG_HZ __kconfig;
extern const struct rq runqueues __ksym;
extern const void bpf_prog_active __ksym;
extern struct task_struct *bpf_task_acquire(struct task_struct *p) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;

static __noinline int sub1(int x)
{
	return x * my_data + my_const;
}

__noinline int global_sub(int x)
{
	return sub1(x) + 1;
}

static int cb(u32 idx, void *ctx)
{
	my_bss += idx;
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	u32 key = prev->pid;
	u64 one = 1, *v;
	struct task_struct *t;

	v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&counts, &key, &one, BPF_ANY);
	bpf_loop(4, cb, NULL, 0);
	other_bss[2] = LINUX_KERNEL_VERSION + CONFIG_BPF_SYSCALL + CONFIG_HZ;
	t = bpf_task_acquire(next);
	if (t)
		bpf_task_release(t);
	bpf_printk("%lx %lx", &runqueues, &bpf_prog_active);
	return global_sub(key) + custom_data;
}

SEC("xdp")
int xdp_prog(struct xdp_md *ctx)
{
	bpf_trace_printk(msg, sizeof(msg), my_const);
	bpf_tail_call(ctx, &jmp, 1);
	return sub1(ctx->ingress_ifindex) ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int tail_a(void *ctx)
{
	void *m = bpf_map_lookup_elem(&outer, &(u32){0});
	u32 k = 0;
	if (m) bpf_map_lookup_elem(m, &k);
	return XDP_PASS;
}

SEC("kprobe/do_sys_open")
int BPF_KPROBE(kp, int dfd)
{
	u32 *p = bpf_ringbuf_reserve(&rb, 4, 0);
	if (p) { *p = dfd + my_data; bpf_ringbuf_submit(p, 0); }
	bpf_map_push_elem(&bloom, &(u32){1}, 0);
	return 0;
}
"""

EXTRA_VERSION_SOURCE = r"""
#include <linux/bpf.h>
#include <bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
unsigned int _version SEC("version") = 0x060c00;
SEC("socket")
int sock(struct __sk_buff *skb) { return skb->len; }
"""


NOBTF_SOURCE = r"""
#include <linux/bpf.h>
#include <bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
int counter = 3;
const volatile int limit = 10;
unsigned long long hits;
static __attribute__((noinline)) int bump(int x) { counter += x; return counter < limit; }
SEC("socket")
int nobtf(struct __sk_buff *skb) { hits++; return bump(skb->len); }
"""


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"oracle tool {name} not installed")
    return path


@pytest.fixture(scope="session")
def extra_dir(tmp_path_factory: Any) -> Path:
    """Compile EXTRA_SOURCE for both byte orders into a temporary directory."""
    clang = _tool(CLANG)
    out = tmp_path_factory.mktemp("elfobjs")
    header = out / "vmlinux.h"
    with open(header, "w") as f:
        subprocess.run([_tool("bpftool"), "btf", "dump", "file", "/sys/kernel/btf/vmlinux",
                        "format", "c"], stdout=f, check=True)
    for stem, source in (("extra", EXTRA_SOURCE), ("version", EXTRA_VERSION_SOURCE),
                         ("nobtf", NOBTF_SOURCE)):
        (out / f"{stem}.bpf.c").write_text(source)
        debug = [] if stem == "nobtf" else ["-g"]  # without -g clang emits no .BTF
        for target, suffix in (("bpf", "bpf.o"), ("bpfeb", "bpfeb.o")):
            subprocess.run([clang, *debug, "-O2", "-target", target, "-D__TARGET_ARCH_x86",
                            "-I/usr/include/bpf", f"-I{out}", "-c", str(out / f"{stem}.bpf.c"),
                            "-o", str(out / f"{stem}.{suffix}")], check=True)
    return out


EXTRA_OBJECTS = ["extra.bpf.o", "extra.bpfeb.o", "version.bpf.o", "version.bpfeb.o",
                 "nobtf.bpf.o", "nobtf.bpfeb.o"]
ALL_OBJECTS = [str(p) for p in fixture_objects()] + [f"extra:{n}" for n in EXTRA_OBJECTS]


def _ids(value: str) -> str:
    return Path(value.split(":", 1)[-1]).name


LITTLE_OBJECTS = [v for v in ALL_OBJECTS if not v.endswith(".bpfeb.o")]
TWINS = [v for v in LITTLE_OBJECTS
         if v.replace(".bpf.o", ".bpfeb.o") in ALL_OBJECTS and v.endswith(".bpf.o")]


def _resolve(value: str, extra_dir: Path) -> Path:
    if value.startswith("extra:"):
        return extra_dir / value.split(":", 1)[1]
    return Path(value)


@pytest.fixture(params=ALL_OBJECTS, ids=_ids)
def obj_path(request: Any, extra_dir: Path) -> Path:
    return _resolve(request.param, extra_dir)


@pytest.fixture(params=LITTLE_OBJECTS, ids=_ids)
def le_path(request: Any, extra_dir: Path) -> Path:
    """Little-endian objects: libbpf 1.1 opens host-endian objects only."""
    return _resolve(request.param, extra_dir)


@pytest.fixture(params=TWINS, ids=_ids)
def twin_paths(request: Any, extra_dir: Path) -> Tuple[Path, Path]:
    """(bpfel object, bpfeb object) built from the same source."""
    return (_resolve(request.param, extra_dir),
            _resolve(request.param.replace(".bpf.o", ".bpfeb.o"), extra_dir))


def _is_big(path: Path) -> bool:
    return path.name.endswith(".bpfeb.o")


# ---------------------------------------------------------------- readelf ---

def _readelf(path: Path, *flags: str) -> Dict[str, Any]:
    out = subprocess.run([_tool(READELF), "--elf-output-style=JSON", *flags, str(path)],
                         capture_output=True, text=True, check=True).stdout
    data: Dict[str, Any] = json.loads(out)[0]
    return data


def test_sections_match_readelf(obj_path: Path) -> None:
    spec = ObjectSpec.from_file(obj_path)
    oracle = [s["Section"] for s in _readelf(obj_path, "-S")["Sections"]]
    assert len(spec.sections) == len(oracle)
    for ours, theirs in zip(spec.sections, oracle):
        assert ours.index == theirs["Index"]
        assert ours.name == theirs["Name"]["Name"]
        assert ours.type == theirs["Type"]["Name"]
        assert ours.flags == theirs["Flags"]["Value"]
        assert ours.size == theirs["Size"]
        assert ours.offset == theirs["Offset"]
        assert ours.link == theirs["Link"]
        assert ours.info == theirs["Info"]
        assert ours.entsize == theirs["EntrySize"]


def test_symbols_match_readelf(obj_path: Path) -> None:
    spec = ObjectSpec.from_file(obj_path)
    oracle = [s["Symbol"] for s in _readelf(obj_path, "-s")["Symbols"]]
    assert len(spec.symbols) == len(oracle)
    types = {"None": "STT_NOTYPE", "Object": "STT_OBJECT", "Function": "STT_FUNC",
             "Section": "STT_SECTION", "File": "STT_FILE"}
    binds = {"Local": "STB_LOCAL", "Global": "STB_GLOBAL", "Weak": "STB_WEAK"}
    for ours, theirs in zip(spec.symbols, oracle):
        if ours.type == "STT_SECTION":
            assert theirs["Name"]["Name"] == ours.section_name
        else:
            assert ours.name == theirs["Name"]["Name"]
        assert ours.value == theirs["Value"]
        assert ours.size == theirs["Size"]
        assert ours.type == types[theirs["Type"]["Name"]]
        assert ours.bind == binds[theirs["Binding"]["Name"]]
        assert ours.section_index == theirs["Section"]["Value"]


def test_relocations_match_readelf(obj_path: Path) -> None:
    """Every relocation of a program section is classified, at the right instruction."""
    spec = ObjectSpec.from_file(obj_path)
    data = _readelf(obj_path, "-S", "-r")
    sections = {s["Section"]["Index"]: s["Section"] for s in data["Sections"]}
    funcs = spec.programs + spec.subprograms
    checked = 0
    for block in data["Relocations"]:
        rel_sec = sections[block["SectionIndex"]]
        target = sections[rel_sec["Info"]]
        if not target["Flags"]["Value"] & 0x4:  # SHF_EXECINSTR
            continue
        for entry in block["Relocs"]:
            rel = entry["Relocation"]
            off = rel["Offset"]
            owner = [p for p in funcs if p.section == target["Name"]["Name"]
                     and p.section_offset <= off < p.section_offset + p.size]
            assert len(owner) == 1, f"no function owns relocation at {off:#x}"
            prog = owner[0]
            slot = (off - prog.section_offset) // 8
            matches = [r for r in prog.relocations if r.slot == slot]
            assert len(matches) == 1
            r = matches[0]
            assert r.symbol == rel["Symbol"]["Name"]
            assert prog.slot_of(r.insn_index) == slot
            insn = prog.instructions[r.insn_index]
            # R_BPF_64_64 relocates an ld_imm64, R_BPF_64_32 a call.
            if rel["Type"]["Name"] == "R_BPF_64_64":
                assert insn.is_ld_imm64
            elif rel["Type"]["Name"] == "R_BPF_64_32":
                assert insn.is_call
            checked += 1
    assert checked == sum(len(p.relocations) for p in funcs)


# ------------------------------------------------------------------ libbpf ---

class _Libbpf:
    """The handful of libbpf.so.1 entry points the tests use (open only)."""

    def __init__(self) -> None:
        path = ctypes.util.find_library("bpf") or "libbpf.so.1"
        try:
            lib = ctypes.CDLL(path, use_errno=True)
        except OSError:
            pytest.skip("oracle library libbpf.so.1 not installed")
        P, S, U, I = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint32, ctypes.c_int
        sigs = {
            "libbpf_set_print": (P, [P]),
            "bpf_object__open_file": (P, [S, P]),
            "bpf_object__close": (None, [P]),
            "bpf_object__next_program": (P, [P, P]),
            "bpf_object__next_map": (P, [P, P]),
            "bpf_object__kversion": (ctypes.c_uint, [P]),
            "bpf_program__name": (S, [P]),
            "bpf_program__section_name": (S, [P]),
            "bpf_program__type": (I, [P]),
            "bpf_program__expected_attach_type": (I, [P]),
            "bpf_program__insn_cnt": (ctypes.c_size_t, [P]),
            "bpf_program__insns": (P, [P]),
            "bpf_map__name": (S, [P]),
            "bpf_map__type": (I, [P]),
            "bpf_map__key_size": (U, [P]),
            "bpf_map__value_size": (U, [P]),
            "bpf_map__max_entries": (U, [P]),
            "bpf_map__map_flags": (U, [P]),
            "bpf_map__numa_node": (U, [P]),
            "bpf_map__map_extra": (ctypes.c_uint64, [P]),
            "bpf_map__btf_key_type_id": (U, [P]),
            "bpf_map__btf_value_type_id": (U, [P]),
            "bpf_map__inner_map": (P, [P]),
            "bpf_map__is_internal": (ctypes.c_bool, [P]),
            "bpf_map__initial_value": (P, [P, ctypes.POINTER(ctypes.c_size_t)]),
        }
        for name, (res, args) in sigs.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = res, args
        lib.libbpf_set_print(None)
        self.lib = lib

    def open(self, path: Path) -> Iterator[int]:
        obj = self.lib.bpf_object__open_file(str(path).encode(), None)
        if not obj:
            pytest.fail(f"libbpf cannot open {path} (errno {ctypes.get_errno()})")
        return obj  # type: ignore[no-any-return]

    def programs(self, obj: int) -> List[Dict[str, Any]]:
        out, prog = [], None
        while True:
            prog = self.lib.bpf_object__next_program(obj, prog)
            if not prog:
                return out
            cnt = self.lib.bpf_program__insn_cnt(prog)
            raw = ctypes.string_at(self.lib.bpf_program__insns(prog), cnt * 8)
            out.append(dict(name=self.lib.bpf_program__name(prog).decode(),
                            section=self.lib.bpf_program__section_name(prog).decode(),
                            type=self.lib.bpf_program__type(prog),
                            attach=self.lib.bpf_program__expected_attach_type(prog),
                            insn_cnt=cnt, insns=raw))

    def map_info(self, m: int) -> Dict[str, Any]:
        lib = self.lib
        size = ctypes.c_size_t(0)
        ptr = lib.bpf_map__initial_value(m, ctypes.byref(size))
        inner = lib.bpf_map__inner_map(m)
        return dict(name=lib.bpf_map__name(m).decode(), type=lib.bpf_map__type(m),
                    key_size=lib.bpf_map__key_size(m), value_size=lib.bpf_map__value_size(m),
                    max_entries=lib.bpf_map__max_entries(m), flags=lib.bpf_map__map_flags(m),
                    numa_node=lib.bpf_map__numa_node(m), map_extra=lib.bpf_map__map_extra(m),
                    key_type_id=lib.bpf_map__btf_key_type_id(m),
                    value_type_id=lib.bpf_map__btf_value_type_id(m),
                    internal=bool(lib.bpf_map__is_internal(m)),
                    initial=ctypes.string_at(ptr, size.value) if ptr else None,
                    inner=self.map_info(inner) if inner else None)

    def maps(self, obj: int) -> List[Dict[str, Any]]:
        out, m = [], None
        while True:
            m = self.lib.bpf_object__next_map(obj, m)
            if not m:
                return out
            out.append(self.map_info(m))


@pytest.fixture(scope="session")
def libbpf() -> _Libbpf:
    return _Libbpf()


@pytest.fixture
def libbpf_view(le_path: Path, libbpf: _Libbpf) -> Iterator[Tuple[ObjectSpec, Dict[str, Any]]]:
    spec = ObjectSpec.from_file(le_path)
    obj = libbpf.open(le_path)
    try:
        view = dict(programs=libbpf.programs(obj), maps=libbpf.maps(obj),
                    kversion=libbpf.lib.bpf_object__kversion(obj))
    finally:
        libbpf.lib.bpf_object__close(obj)
    yield spec, view


def _normalise_libbpf_insns(raw: bytes, prog: ProgramSpec) -> bytes:
    """Undo what libbpf 1.1 changes at open time, and only that.

    At open, libbpf rewrites kfunc calls' ``src_reg`` from BPF_PSEUDO_CALL (1)
    to BPF_PSEUDO_KFUNC_CALL (2) in ``bpf_object__collect_relos``... when it
    does, restore the byte so the comparison sees clang's instruction.
    """
    data = bytearray(raw)
    for r in prog.relocations:
        if r.kind == RelocationKind.EXTERN_KFUNC:
            pos = prog.slot_of(r.insn_index) * 8
            ours = encode([prog.instructions[r.insn_index]])
            if data[pos] == ours[0]:
                data[pos + 1] = ours[1]  # regs byte (src_reg)
    return bytes(data)


def test_programs_match_libbpf(libbpf_view: Tuple[ObjectSpec, Dict[str, Any]]) -> None:
    spec, view = libbpf_view
    theirs = view["programs"]
    assert [p["name"] for p in theirs] == [p.name for p in spec.programs]
    for ours, t in zip(spec.programs, theirs):
        # libbpf drops the "?" (no autoload) prefix from the section name it reports.
        assert ours.section == ("?" if not ours.autoload else "") + t["section"]
        assert ours.autoload == (not ours.section.startswith("?"))
        assert sum(i.slots for i in ours.instructions) == t["insn_cnt"]
        assert encode(ours.instructions) == _normalise_libbpf_insns(t["insns"], ours)
        if t["type"] != 0:  # libbpf 1.1 knows this section name
            assert int(ours.prog_type) == t["type"], ours.section
            if ours.expected_attach_type is not None:
                assert int(ours.expected_attach_type) == t["attach"], ours.section
    if spec.kernel_version is not None:  # else libbpf 1.1 fills in the running kernel's
        assert spec.kernel_version == view["kversion"]


def test_maps_match_libbpf(libbpf_view: Tuple[ObjectSpec, Dict[str, Any]]) -> None:
    spec, view = libbpf_view
    user = [m for m in view["maps"] if not m["internal"]]
    # libbpf 1.1 predates .struct_ops.link (libbpf 1.3): it ignores that section.
    maps = [m for m in spec.maps if m.section != ".struct_ops.link"]
    assert [m["name"] for m in user] == [m.name for m in maps]
    for ours, t in zip(maps, user):
        if ours.section.startswith(".struct_ops"):
            # libbpf 1.1 sets a struct_ops map's value type only at load time (to a
            # kernel BTF id); the spec keeps the object's struct type.
            assert t["value_type_id"] == 0
            assert spec.btf is not None and spec.btf[ours.value_type_id].kind.name == "STRUCT"
            t = dict(t, value_type_id=ours.value_type_id)
        _compare_map(ours, t)


def _compare_map(ours: Any, t: Dict[str, Any]) -> None:
    assert int(ours.type) == t["type"], ours.name
    assert ours.key_size == t["key_size"], ours.name
    assert ours.value_size == t["value_size"], ours.name
    assert ours.max_entries == t["max_entries"], ours.name
    assert ours.flags == t["flags"], ours.name
    assert ours.numa_node == t["numa_node"], ours.name
    assert ours.map_extra == t["map_extra"], ours.name
    assert ours.key_type_id == t["key_type_id"], ours.name
    assert ours.value_type_id == t["value_type_id"], ours.name
    assert (ours.inner_map is None) == (t["inner"] is None), ours.name
    if ours.inner_map is not None:
        _compare_map(ours.inner_map, t["inner"])


def test_data_sections_match_libbpf_internal_maps(
        libbpf_view: Tuple[ObjectSpec, Dict[str, Any]]) -> None:
    """libbpf makes one internal array map per data section (and .kconfig)."""
    spec, view = libbpf_view
    internal = [m for m in view["maps"] if m["internal"]]
    ours = [s for s in spec.data_sections if s.kind not in ("ksyms", "arena")]
    assert len(internal) == len(ours)
    for t in internal:
        # libbpf names them "<obj prefix><section>" truncated to 15 characters.
        suffix = t["name"][t["name"].index("."):]
        match = [s for s in ours if s.name == suffix] or [
            s for s in ours if s.name.startswith(suffix)]
        assert len(match) == 1, t["name"]
        sec = match[0]
        assert sec.size == t["value_size"], sec.name
        if sec.kind in ("data", "rodata") and t["initial"] is not None:
            assert sec.data == t["initial"][:sec.size], sec.name


# ------------------------------------------------------ big-endian twins ---

def _shape(spec: ObjectSpec) -> Any:
    """What must not depend on byte order (code generation may differ slightly)."""
    progs = [(p.name, p.section, p.prog_type, p.linkage, sorted(p.calls),
              sorted((r.kind.value, r.symbol, r.target, r.offset, r.variable or "")
                     for r in p.relocations),
              len(p.func_info))
             for p in spec.programs + spec.subprograms]
    return (spec.license, spec.kernel_version, progs, spec.maps,
            [(d.name, d.kind, d.size, d.variables) for d in spec.data_sections],
            spec.externs)


def test_big_endian_twin_matches(twin_paths: Tuple[Path, Path]) -> None:
    """The bpfeb build of a source reads into the same spec as its bpfel build."""
    little, big = twin_paths
    le, be = ObjectSpec.from_file(little), ObjectSpec.from_file(big)
    assert (le.byteorder, be.byteorder) == ("little", "big")
    assert _shape(le) == _shape(be)


# ------------------------------------------------------------- own rules ---

def test_same_bytes_same_spec(obj_path: Path) -> None:
    data = obj_path.read_bytes()
    a = ObjectSpec.from_bytes(data, name="x")
    b = ObjectSpec.from_bytes(bytes(data), name="x")
    assert a == b
    assert a is not b
    assert ObjectSpec.from_file(obj_path).programs == a.programs


def test_btf_ext_records_rebased(obj_path: Path) -> None:
    """func_info of each function starts at its first instruction and names it."""
    spec = ObjectSpec.from_file(obj_path)
    if spec.btf_ext is None:  # objects built without -g have nothing to rebase
        assert all(not p.func_info for p in spec.programs + spec.subprograms)
        return
    assert spec.btf is not None
    funcs = spec.programs + spec.subprograms
    # Every record inside a function is attached to it (records of code that
    # belongs to no function symbol, e.g. dropped by the linker, are not).
    inside = sum(1 for sec, recs in spec.btf_ext.line_info.items() for r in recs
                 if any(p.section == sec and p.section_offset <= r.insn_off
                        < p.section_offset + p.size for p in funcs))
    assert inside == sum(len(p.line_info) for p in funcs)
    for prog in spec.programs + spec.subprograms:
        slots = sum(i.slots for i in prog.instructions)
        assert len(prog.func_info) == 1, prog.name
        assert prog.func_info[0].insn_off == 0
        assert prog.btf_func_id == prog.func_info[0].type_id
        assert spec.btf[prog.btf_func_id].name == prog.name
        assert prog.line_info and prog.line_info[0].insn_off == 0
        for rec in prog.line_info + prog.core_relos:
            assert 0 <= rec.insn_index < slots
            prog.insn_at_slot(rec.insn_index)  # lands on an instruction start


def test_lookups(obj_path: Path) -> None:
    spec = ObjectSpec.from_file(obj_path)
    for p in spec.programs + spec.subprograms:
        assert spec.program(p.name) is p
    for m in spec.maps:
        assert spec.map(m.name) is m
    for d in spec.data_sections:
        assert spec.data_section(d.name) is d
        for v in d.variables:
            if sum(x.name == v.name for s in spec.data_sections for x in s.variables) == 1:
                assert spec.variable(v.name) == (d, v)
    from purebpf.insn import slot_offsets

    for p in spec.programs + spec.subprograms:
        slots = slot_offsets(list(p.instructions))
        assert [p.slot_of(i) for i in range(len(p.instructions))] == slots
        assert [p.insn_at_slot(s) for s in slots] == list(range(len(slots)))
        assert p.size == (slots[-1] + p.instructions[-1].slots) * 8 if slots else p.size == 0
    with pytest.raises(NotFoundError) as exc:
        spec.program("no such program")
    assert isinstance(exc.value, LookupError)


# --------------------------------------------- the hand-written extra object ---

@pytest.fixture(params=["extra.bpf.o", "extra.bpfeb.o"])
def extra(request: Any, extra_dir: Path) -> ObjectSpec:
    return ObjectSpec.from_file(extra_dir / request.param)


def test_extra_relocation_kinds(extra: ObjectSpec) -> None:
    kinds = {(r.kind, r.target) for p in extra.programs + extra.subprograms
             for r in p.relocations}
    assert (RelocationKind.MAP, "counts") in kinds
    assert (RelocationKind.SUBPROG_CALL, "global_sub") in kinds
    assert (RelocationKind.SUBPROG_CALL, "sub1") in kinds
    assert (RelocationKind.FUNC_POINTER, "cb") in kinds
    assert (RelocationKind.EXTERN_KCONFIG, "LINUX_KERNEL_VERSION") in kinds
    assert (RelocationKind.EXTERN_KSYM_VAR, "runqueues") in kinds
    assert (RelocationKind.EXTERN_KFUNC, "bpf_task_acquire") in kinds
    assert (RelocationKind.GLOBAL_DATA, ".data.custom") in kinds
    on_switch = extra.program("on_switch")
    assert set(on_switch.calls) == {"cb", "global_sub"}
    assert extra.program("global_sub").calls == ("sub1",)
    data = [r for p in extra.programs + extra.subprograms for r in p.relocations
            if r.kind == RelocationKind.GLOBAL_DATA]
    for r in data:
        sec = extra.data_section(r.target)
        var = sec.variable_at(r.offset)
        assert var is not None and var.name == r.variable


def test_extra_externs(extra: ObjectSpec) -> None:
    by_name = {e.name: e for e in extra.externs}
    assert by_name["LINUX_KERNEL_VERSION"].kind == "kconfig"
    assert by_name["CONFIG_BPF_SYSCALL"].weak
    assert not by_name["LINUX_KERNEL_VERSION"].weak
    assert by_name["runqueues"].kind == "ksym_var" and not by_name["runqueues"].typeless
    assert by_name["bpf_prog_active"].typeless
    assert by_name["bpf_task_acquire"].kind == "kfunc"
    # libbpf's .kconfig layout: u64 first (align 8), then int, then bool.
    assert [(e.name, e.offset) for e in extra.externs if e.kind == "kconfig"] == [
        ("CONFIG_HZ", 0), ("LINUX_KERNEL_VERSION", 8), ("CONFIG_BPF_SYSCALL", 12)]
    assert extra.data_section(".kconfig").size == 13


def test_extra_initial_values(extra: ObjectSpec) -> None:
    outer = extra.map("outer")
    assert outer.initial_values == ((0, "inner1"), (2, "inner2"))
    assert outer.inner_map is not None and outer.inner_map.name == "outer.inner"
    assert outer.inner_map.max_entries == 4
    assert extra.map("jmp").initial_values == ((1, "tail_a"),)


def test_extra_globals(extra: ObjectSpec) -> None:
    sec, var = extra.variable("my_const")
    assert sec.name == ".rodata" and sec.readonly
    order = "little" if extra.byteorder == "little" else "big"
    assert int.from_bytes(sec.data[var.offset:var.offset + var.size], order) == 42
    sec, var = extra.variable("other_bss")
    assert sec.kind == "bss" and var.size == 32 and sec.data == bytes(sec.size)
    sec, var = extra.variable("msg")
    assert sec.data[var.offset:var.offset + var.size] == b"hello %d\0"


def test_version_section(extra_dir: Path) -> None:
    for name in ("version.bpf.o", "version.bpfeb.o"):
        spec = ObjectSpec.from_file(extra_dir / name)
        assert spec.kernel_version == 0x060C00
        assert spec.programs[0].kernel_version == 0x060C00
        assert spec.license == "GPL"



def test_variables_match_readelf_symbols(obj_path: Path) -> None:
    """Fixed-up variable offsets and sizes agree with the ELF symbols llvm-readelf lists."""
    spec = ObjectSpec.from_file(obj_path)
    data = _readelf(obj_path, "-s")
    symbols = [s["Symbol"] for s in data["Symbols"]]
    checked = 0
    for sec in spec.data_sections:
        if sec.kind in ("kconfig", "ksyms"):
            continue
        index = next(s.index for s in spec.sections if s.name == sec.name)
        by_name = {s["Name"]["Name"]: s for s in symbols
                   if s["Section"]["Value"] == index and s["Type"]["Name"] == "Object"}
        for var in sec.variables:
            sym = by_name.get(var.name)
            if sym is None:
                assert var.linkage == "static"  # e.g. a function-local static without a symbol
                continue
            assert (var.offset, var.size) == (sym["Value"], sym["Size"]), var.name
            assert var.offset + var.size <= sec.size
            checked += 1
        # The section size is the ELF section's (clang's DATASEC says 0).
        assert sec.size == next(s.size for s in spec.sections if s.name == sec.name)
    if any(s.kind in ("data", "rodata", "bss") and s.variables for s in spec.data_sections):
        assert checked > 0


def test_object_without_btf(extra_dir: Path) -> None:
    """No .BTF: variables come from the ELF symbols, programs and relocations still work."""
    for name in ("nobtf.bpf.o", "nobtf.bpfeb.o"):
        spec = ObjectSpec.from_file(extra_dir / name)
        assert spec.btf is None and spec.btf_ext is None
        prog = spec.program("nobtf")
        assert prog.btf_func_id is None and prog.func_info == ()
        assert prog.calls == ("bump",)
        sec, var = spec.variable("counter")
        assert sec.name == ".data" and var.type_id == 0 and var.size == 4
        assert spec.variable("limit")[0].name == ".rodata"
        assert spec.variable("hits")[0].kind == "bss"
        kinds = sorted(r.kind.value for r in prog.relocations + spec.program("bump").relocations)
        assert kinds.count("global_data") >= 3


ARENA_SOURCE = r"""
#include <linux/bpf.h>
#include <bpf_helpers.h>
struct { __uint(type, 33 /* BPF_MAP_TYPE_ARENA */); __uint(map_flags, BPF_F_MMAPABLE);
	 __uint(max_entries, 10); } arena SEC(".maps");
int __attribute__((address_space(1))) counter SEC(".addr_space.1") = 5;
SEC("syscall") int prog(void *ctx) { counter++; return 0; }
char LICENSE[] SEC("license") = "GPL";
"""


def test_arena_globals(tmp_path: Path) -> None:
    """__arena globals (.addr_space.1): a data section of kind "arena", GLOBAL_DATA relocations."""
    src = tmp_path / "arena.c"
    src.write_text(ARENA_SOURCE)
    obj = tmp_path / "arena.o"
    subprocess.run([_tool(CLANG), "-g", "-O2", "-target", "bpf", "-I/usr/include/bpf", "-c",
                    str(src), "-o", str(obj)], check=True)
    spec = ObjectSpec.from_file(obj)
    sec, var = spec.variable("counter")
    assert (sec.name, sec.kind, var.offset, var.size) == (".addr_space.1", "arena", 0, 4)
    assert int.from_bytes(sec.data[:4], "little") == 5
    (reloc,) = spec.program("prog").relocations
    assert (reloc.kind, reloc.target, reloc.variable) == (
        RelocationKind.GLOBAL_DATA, ".addr_space.1", "counter")
    rels = _readelf(obj, "-r")["Relocations"]
    names = [r["Relocation"]["Symbol"]["Name"] for block in rels for r in block["Relocs"]]
    assert "counter" in names
