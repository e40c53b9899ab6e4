"""Map definitions (``.maps``, legacy ``maps``) against libbpf and the sources.

A map-heavy source compiled here with clang-19 covers every attribute of
libbpf's ``parse_btf_map_def``; libbpf.so.1 (open only, through ctypes) is the
oracle for the parsed definitions.  Legacy ``SEC("maps")`` definitions, which
libbpf 1.x refuses, are checked against the C initialisers and the section
bytes as dumped by ``llvm-readelf-19 -x``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Dict, List

import pytest

from purebpf.errors import ElfError
from purebpf.spec import ObjectSpec
from purebpf.uapi import MapFlags, MapType, PinType
from test_elf_reader import _Libbpf, _compare_map

MAPS_SOURCE = r"""
#include <linux/bpf.h>
#include <bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

typedef unsigned int u32;
typedef unsigned long long u64;
struct key { u32 a; u64 b; };
struct val { char name[16]; u64 counters[3]; };
typedef struct val val_t;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 100);
	__type(key, struct key);
	__type(value, val_t);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__uint(numa_node, 0);
} lru SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 8);
	__uint(key_size, 4);
	__uint(value_size, 24);
} sized SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(u32));
	__uint(value_size, sizeof(u32));
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
	__uint(map_flags, BPF_F_MMAPABLE | BPF_F_RDONLY_PROG);
} flagged SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
	__uint(max_entries, 64);
	__type(value, u64);
	__uint(map_extra, 5);
} bloom SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, u64);
} tstore SEC(".maps");

struct inner_hash {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, u32);
	__type(value, u32);
};

struct inner_hash ih1 SEC(".maps"), ih2 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, u32);
	__array(values, struct inner_hash);
} hom SEC(".maps") = { .values = { [3] = &ih2, [0] = &ih1 } };

int tail0(void *ctx);
int tail1(void *ctx);
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, u32);
	__array(values, int (void *));
} progs SEC(".maps") = { .values = { &tail0, [2] = &tail1 } };

SEC("socket")
int tail0(void *ctx) { return 0; }

SEC("socket")
int tail1(void *ctx) { return 1; }

SEC("socket")
int main_prog(struct __sk_buff *skb)
{
	u32 k = 0;
	void *v = bpf_map_lookup_elem(&lru, &k);
	v = bpf_map_lookup_elem(&sized, &k);
	v = bpf_map_lookup_elem(&flagged, &k);
	v = bpf_map_lookup_elem(&hom, &k);
	bpf_tail_call(skb, &progs, 0);
	bpf_perf_event_output(skb, &events, 0, &k, 4);
	bpf_map_push_elem(&bloom, &k, 0);
	return v != 0;
}
"""

LEGACY_SOURCE = r"""
#include <linux/bpf.h>
#include <bpf_helpers.h>
struct bpf_map_def_legacy {
	unsigned int type, key_size, value_size, max_entries, map_flags;
};
char LICENSE[] SEC("license") = "GPL";
struct bpf_map_def_legacy old_hash SEC("maps") = { BPF_MAP_TYPE_HASH, 4, 8, 128, 1 };
struct bpf_map_def_legacy old_array SEC("maps") = { BPF_MAP_TYPE_ARRAY, 4, 16, 4, 0 };
SEC("socket")
int legacy(struct __sk_buff *skb)
{
	unsigned int k = 0;
	return bpf_map_lookup_elem(&old_array, &k) != 0;
}
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: Any) -> Dict[str, Path]:
    clang = shutil.which("clang-19")
    if clang is None:
        pytest.skip("oracle tool clang-19 not installed")
    out = tmp_path_factory.mktemp("maps")
    paths = {}
    for stem, source in (("maps", MAPS_SOURCE), ("legacy", LEGACY_SOURCE)):
        (out / f"{stem}.c").write_text(source)
        for target in ("bpf", "bpfeb"):
            dest = out / f"{stem}.{target}.o"
            subprocess.run([clang, "-g", "-O2", "-target", target, "-I/usr/include/bpf", "-c",
                            str(out / f"{stem}.c"), "-o", str(dest)], check=True)
            paths[f"{stem}.{target}"] = dest
    return paths


@pytest.fixture(scope="module")
def lib() -> _Libbpf:
    return _Libbpf()


def _libbpf_maps(lib: _Libbpf, path: Path) -> List[Dict[str, Any]]:
    obj = lib.open(path)
    try:
        return [m for m in lib.maps(obj) if not m["internal"]]
    finally:
        lib.lib.bpf_object__close(obj)


def test_btf_maps_match_libbpf(built: Dict[str, Path], lib: _Libbpf) -> None:
    spec = ObjectSpec.from_file(built["maps.bpf"])
    theirs = _libbpf_maps(lib, built["maps.bpf"])
    assert [m.name for m in spec.maps] == [t["name"] for t in theirs]
    for ours, t in zip(spec.maps, theirs):
        _compare_map(ours, t)


@pytest.mark.parametrize("target", ["bpf", "bpfeb"])
def test_btf_map_attributes(built: Dict[str, Path], target: str) -> None:
    """Values written in MAPS_SOURCE, read back (both byte orders)."""
    spec = ObjectSpec.from_file(built[f"maps.{target}"])
    assert spec.btf is not None
    lru = spec.map("lru")
    assert lru.type == MapType.LRU_HASH
    assert (lru.key_size, lru.value_size, lru.max_entries) == (16, 40, 100)
    assert lru.flags == MapFlags.NO_COMMON_LRU
    assert lru.pinning == PinType.BY_NAME
    assert spec.btf.type_name(lru.key_type_id) == "struct key"
    assert spec.btf.type_name(lru.value_type_id) == "val_t"
    sized = spec.map("sized")
    assert (sized.key_size, sized.value_size, sized.key_type_id, sized.value_type_id) == \
        (4, 24, 0, 0)
    assert spec.map("flagged").flags == MapFlags.MMAPABLE | MapFlags.RDONLY_PROG
    assert spec.map("bloom").map_extra == 5
    assert spec.map("events").max_entries == 0
    hom = spec.map("hom")
    assert hom.initial_values == ((0, "ih1"), (3, "ih2"))
    assert hom.value_size == 4
    assert hom.inner_map is not None
    assert hom.inner_map.name == "hom.inner" and hom.inner_map.type == MapType.HASH
    assert spec.map("progs").initial_values == ((0, "tail0"), (2, "tail1"))
    for m in spec.maps:
        assert m.btf_var_id is not None and spec.btf[m.btf_var_id].name == m.name
        assert m.section == ".maps"


def _readelf_hex(path: Path, section: str) -> bytes:
    out = subprocess.run(["llvm-readelf-19", "-x", section, str(path)], capture_output=True,
                         text=True, check=True).stdout
    data = b""
    for line in out.splitlines():
        m = re.match(r"\s*0x[0-9a-f]+ ((?:[0-9a-f]{2,8} ){1,4})", line + " ")
        if m:
            data += bytes.fromhex(m.group(1).replace(" ", ""))
    return data


@pytest.mark.parametrize("target", ["bpf", "bpfeb"])
def test_legacy_maps(built: Dict[str, Path], target: str) -> None:
    path = built[f"legacy.{target}"]
    spec = ObjectSpec.from_file(path)
    by_name = {m.name: m for m in spec.maps}
    assert set(by_name) == {"old_hash", "old_array"}
    old_hash, old_array = by_name["old_hash"], by_name["old_array"]
    assert (old_hash.type, old_hash.key_size, old_hash.value_size, old_hash.max_entries,
            old_hash.flags) == (MapType.HASH, 4, 8, 128, 1)
    assert (old_array.type, old_array.key_size, old_array.value_size,
            old_array.max_entries) == (MapType.ARRAY, 4, 16, 4)
    assert old_hash.section == "maps"
    # The definition bytes at each map's offset, as llvm-readelf dumps them.
    raw = _readelf_hex(path, "maps")
    order = "little" if target == "bpf" else "big"
    for m in (old_hash, old_array):
        words = [int.from_bytes(raw[m.section_offset + 4 * i:m.section_offset + 4 * i + 4],
                                order) for i in range(5)]
        assert words == [int(m.type), m.key_size, m.value_size, m.max_entries, m.flags]
    relocs = [r for r in spec.program("legacy").relocations]
    assert [(r.kind.value, r.target) for r in relocs] == [("map", "old_array")]


def test_map_errors_are_elf_errors(built: Dict[str, Path], tmp_path: Path) -> None:
    """A definition member libbpf does not know is rejected (strict rules)."""
    src = tmp_path / "bad.c"
    src.write_text(r"""
#include <linux/bpf.h>
#include <bpf_helpers.h>
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(frobnicate, 3);
} badmap SEC(".maps");
""")
    obj = tmp_path / "bad.o"
    subprocess.run(["clang-19", "-g", "-O2", "-target", "bpf", "-I/usr/include/bpf", "-c",
                    str(src), "-o", str(obj)], check=True)
    with pytest.raises(ElfError) as exc:
        ObjectSpec.from_file(obj)
    assert "frobnicate" in str(exc.value) and "badmap" in str(exc.value)
    assert exc.value.file == str(obj) and exc.value.section == ".maps"
