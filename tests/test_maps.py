"""Live maps (purebpf.maps.Map) on the real kernel.

Every map of fixtures/obj/maps.bpf.o is created from its MapSpec and the
kernel's own answer (BPF_OBJ_GET_INFO_BY_FD, element lookups) is the oracle:
values written are read back through separate system calls, per-CPU sizes
come from /sys/devices/system/cpu/possible parsed here, program and map ids
from the kernel's info of the other object.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import struct
import sys
import uuid
from pathlib import Path
from typing import Dict, Iterator, List, Set

import pytest

from purebpf.errors import KernelError, MapKeyError, NotSupportedError, StateError
from purebpf.maps import Map, adjust_ringbuf_size, kernel_map_name
from purebpf.spec import MapSpec, ObjectSpec
from purebpf.uapi import MapFlags, MapType, MapUpdateFlags

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parent.parent
MAPS_OBJ = ROOT / "fixtures" / "obj" / "maps.bpf.o"

if os.geteuid() != 0:
    pytest.skip("needs root", allow_module_level=True)

#: Local-storage maps that the kernel only creates with BTF key/value ids.
NEEDS_BTF = {"task_store", "sk_store"}


def possible_cpus() -> int:
    text = Path("/sys/devices/system/cpu/possible").read_text().strip()
    n = 0
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        n += int(hi or lo) - int(lo) + 1
    return n


def open_fds() -> Set[str]:
    return set(os.listdir("/proc/self/fd"))


def kernel_map_ids() -> Set[int]:
    from purebpf.syscall import map_get_next_id

    ids: Set[int] = set()
    cur = 0
    while True:
        nxt = map_get_next_id(cur)
        if nxt is None:
            return ids
        ids.add(nxt)
        cur = nxt


def still_alive(ids: Set[int]) -> Set[int]:
    """Which of ``ids`` the kernel still lists.

    Other processes on the machine (bpftool, other test runs) may hold a
    map for a moment through BPF_MAP_GET_FD_BY_ID while they walk all ids,
    so a map that lingers is looked at again a few times before it counts.
    """
    import time

    alive = ids & kernel_map_ids()
    for _ in range(50):
        if not alive:
            break
        time.sleep(0.02)
        alive &= kernel_map_ids()
    return alive


@pytest.fixture(scope="module")
def spec() -> ObjectSpec:
    return ObjectSpec.from_file(MAPS_OBJ)


@pytest.fixture(scope="module")
def btf_fd(spec: ObjectSpec) -> Iterator[int]:
    """The object's BTF as the loader sends it (loader.btf_fixup), loaded once."""
    from purebpf.loader.btf_fixup import kernel_btf_bytes
    from purebpf.syscall import btf_load

    fd, _log = btf_load(kernel_btf_bytes(spec))
    with fd:
        yield int(fd)


@pytest.fixture
def bpffs_dir() -> Iterator[Path]:
    path = Path("/sys/fs/bpf") / f"purebpf-test-{uuid.uuid4().hex[:12]}"
    path.mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def make(spec: ObjectSpec, name: str, btf_fd: "int | None" = None) -> Map:
    return Map.create(spec.map(name), btf_fd=btf_fd)


def u32(v: int) -> bytes:
    return struct.pack("=I", v)


def u64(v: int) -> bytes:
    return struct.pack("=Q", v)


# -- creation ----------------------------------------------------------------


def _all_names() -> List[str]:
    return [m.name for m in ObjectSpec.from_file(MAPS_OBJ).maps]


@pytest.mark.parametrize("name", _all_names())
@pytest.mark.parametrize("with_btf", [False, True], ids=["nobtf", "btf"])
def test_create_matches_kernel_info(spec: ObjectSpec, btf_fd: int, name: str,
                                    with_btf: bool) -> None:
    ms = spec.map(name)
    if name in NEEDS_BTF and not with_btf:
        with pytest.raises(KernelError) as exc:
            Map.create(ms)
        assert exc.value.errno == errno.EINVAL
        return
    with Map.create(ms, btf_fd=btf_fd if with_btf else None) as m:
        info = m.info()
        assert info.type == ms.type
        assert info.key_size == ms.key_size
        assert info.value_size == ms.value_size
        assert info.map_flags == ms.flags
        assert info.map_extra == ms.map_extra
        assert info.name == ms.name[:15]
        assert m.id == info.id > 0
        if ms.type == MapType.PERF_EVENT_ARRAY and ms.max_entries == 0:
            assert info.max_entries == possible_cpus()
        elif ms.type == MapType.RINGBUF:
            assert info.max_entries == ms.max_entries == 256 * 1024
        else:
            assert info.max_entries == ms.max_entries
        # fd-valued maps, queue and stack take no BTF (libbpf leaves it out; the
        # kernel refuses it for a prog array, and Map.create retries without it)
        if with_btf and ms.type not in (MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS,
                                        MapType.PERF_EVENT_ARRAY, MapType.QUEUE,
                                        MapType.STACK, MapType.PROG_ARRAY) \
                and (ms.key_type_id or ms.value_type_id):
            assert info.btf_id > 0
            assert info.btf_key_type_id == ms.key_type_id
            assert info.btf_value_type_id == ms.value_type_id
        else:
            assert info.btf_key_type_id == 0 and info.btf_value_type_id == 0


def test_names_and_ringbuf_sizes() -> None:
    assert kernel_map_name("lru_hash_nocommon") == "lru_hash_nocomm"
    assert kernel_map_name("a-b c") == "a_b_c"
    page = os.sysconf("SC_PAGE_SIZE")
    assert adjust_ringbuf_size(page * 4) == page * 4
    assert adjust_ringbuf_size(page * 3) == page * 4
    assert adjust_ringbuf_size(1) == page
    assert adjust_ringbuf_size(0) == 0


def test_ringbuf_size_rounded_by_kernel_rules(spec: ObjectSpec) -> None:
    page = os.sysconf("SC_PAGE_SIZE")
    odd = MapSpec(name="rb_odd", type=MapType.RINGBUF, key_size=0, value_size=0,
                  max_entries=page * 3 + 5)
    with Map.create(odd) as m:
        assert m.info().max_entries == page * 4
        with pytest.raises(NotSupportedError):
            list(m.keys())


# -- hash, array, lru, lpm ---------------------------------------------------------


def test_hash_ops(spec: ObjectSpec) -> None:
    with make(spec, "flows") as m:
        key = struct.pack("=IIHHB3x", 0x0A000001, 0x0A000002, 1234, 80, 6)
        value = struct.pack("=QQ", 10, 1500)
        assert m.lookup(key) is None
        assert key not in m
        m[key] = value
        assert m[key] == value
        assert key in m
        with pytest.raises(KernelError) as exc:
            m.update(key, value, MapUpdateFlags.NOEXIST)
        assert exc.value.errno == errno.EEXIST
        other = bytes(16)
        with pytest.raises(KernelError) as exc:
            m.update(other, value, MapUpdateFlags.EXIST)
        assert exc.value.errno == errno.ENOENT
        assert list(m.keys()) == [key]
        assert list(m.items()) == [(key, value)]
        assert len(m) == 1
        del m[key]
        assert m.lookup(key) is None
        with pytest.raises(MapKeyError) as kerr:
            m[key]
        assert isinstance(kerr.value, KeyError)
        with pytest.raises(KeyError):
            del m[key]
        assert m.lookup_and_delete(key) is None
        m[key] = value
        assert m.lookup_and_delete(key) == value
        assert len(m) == 0


def test_array_ops_and_bounds(spec: ObjectSpec) -> None:
    with make(spec, "sized_array") as m:
        assert len(m) == 16
        assert m[3] == bytes(8)
        m[3] = 0x1122334455667788
        assert m[u32(3)] == u64(0x1122334455667788)
        m[ctypes.c_uint32(4)] = ctypes.c_uint64(9)
        assert m[4] == u64(9)
        assert list(m.keys()) == [u32(i) for i in range(16)]
        with pytest.raises(KernelError) as exc:
            m[16] = 1
        assert exc.value.errno == errno.E2BIG
        assert "beyond max_entries 16" in str(exc.value)
        assert m.lookup(16) is None
        with pytest.raises(ValueError, match="4 bytes"):
            m[b"\0\0"] = 1
        with pytest.raises(ValueError, match="8 bytes"):
            m[1] = b"\x01"
        with pytest.raises(OverflowError):
            m[1] = 1 << 64
        with pytest.raises(TypeError):
            m[1] = 1.5
        with pytest.raises(KernelError) as exc:
            m.delete(1)  # array elements cannot be deleted
        assert exc.value.errno == errno.EINVAL


def test_lru_hash(spec: ObjectSpec) -> None:
    with make(spec, "lru_hash_nocommon") as m:
        for i in range(10):
            m[u64(i)] = u32(i * 3)
        assert {k: v for k, v in m.items()} == {u64(i): u32(i * 3) for i in range(10)}


def test_lpm_trie_longest_prefix(spec: ObjectSpec) -> None:
    with make(spec, "routes") as m:
        def key(plen: int, addr: str) -> bytes:
            return struct.pack("=I", plen) + bytes(int(x) for x in addr.split("."))
        m[key(8, "10.0.0.0")] = u32(8)
        m[key(24, "10.1.2.0")] = u32(24)
        assert m[key(32, "10.1.2.3")] == u32(24)
        assert m[key(32, "10.9.9.9")] == u32(8)
        assert m.lookup(key(32, "11.0.0.1")) is None
        assert sorted(m.keys()) == sorted([key(8, "10.0.0.0"), key(24, "10.1.2.0")])
        del m[key(24, "10.1.2.0")]
        assert m[key(32, "10.1.2.3")] == u32(8)


# -- per-CPU -------------------------------------------------------------------------


def test_percpu_values(spec: ObjectSpec) -> None:
    ncpu = possible_cpus()
    with make(spec, "percpu_array") as m:
        assert m.num_cpus == ncpu
        vals = [u64(100 + i) for i in range(ncpu)]
        m[2] = vals
        assert m[2] == vals
        m[3] = 7  # one value for every CPU
        assert m[3] == [u64(7)] * ncpu
        with pytest.raises(ValueError, match="one per possible CPU"):
            m[2] = vals + [u64(0)]
    with make(spec, "percpu_hash") as m:  # value_size 16: no padding
        vals = [struct.pack("=QQ", i, i * 2) for i in range(ncpu)]
        m[5] = vals
        assert m[5] == vals
        assert list(m.items()) == [(u32(5), vals)]
    with make(spec, "lru_percpu_hash") as m:
        m[1] = [u64(i) for i in range(ncpu)]
        assert m.lookup(1) == [u64(i) for i in range(ncpu)]


def test_percpu_padding_to_8_bytes() -> None:
    ncpu = possible_cpus()
    small = MapSpec(name="pc_small", type=MapType.PERCPU_ARRAY, key_size=4, value_size=4,
                    max_entries=2)
    with Map.create(small) as m:
        m[0] = [u32(0xA0 + i) for i in range(ncpu)]
        assert m[0] == [u32(0xA0 + i) for i in range(ncpu)]
        batch = m.lookup_batch()
        assert batch[0] == (u32(0), [u32(0xA0 + i) for i in range(ncpu)])


# -- key-less maps ---------------------------------------------------------------------


def test_queue_and_stack(spec: ObjectSpec) -> None:
    with make(spec, "fifo") as q, make(spec, "lifo") as s:
        for i in range(3):
            q.push(i)
            s.push(i)
        assert q.peek() == u64(0)
        assert s.peek() == u64(2)
        assert [q.pop() for _ in range(3)] == [u64(0), u64(1), u64(2)]
        assert [s.pop() for _ in range(3)] == [u64(2), u64(1), u64(0)]
        assert q.pop() is None and s.peek() is None
        for i in range(32):
            q.push(i)
        with pytest.raises(KernelError) as exc:
            q.push(99)
        assert exc.value.errno == errno.E2BIG
        q.push(99, MapUpdateFlags.EXIST)  # overwrite the oldest
        assert q.pop() == u64(1)
        with pytest.raises(ValueError, match="no keys"):
            q.lookup(0)
        with pytest.raises(NotSupportedError):
            list(q.keys())


def test_bloom_filter(spec: ObjectSpec) -> None:
    with make(spec, "seen_ports") as m:
        m.push(80)
        m.push(443)
        assert m.contains(80) and m.contains(443)
        absent = [m.contains(p) for p in range(10000, 10040)]
        assert not all(absent)
        with pytest.raises(NotSupportedError):
            m.pop()


# -- fd-valued maps ---------------------------------------------------------------------


def _load_xdp_return(value: int) -> "object":
    """A two-instruction XDP program (r0 = value; exit), loaded for prog-array tests."""
    from purebpf.syscall import prog_load
    from purebpf.uapi import ProgType

    insns = struct.pack("<BBhi", 0xB7, 0, 0, value) + struct.pack("<BBhi", 0x95, 0, 0, 0)
    fd, _log = prog_load(ProgType.XDP, insns, "GPL", name="tail")
    return fd


def test_prog_array(spec: ObjectSpec) -> None:
    from purebpf.syscall import prog_info

    prog = _load_xdp_return(2)
    try:
        with make(spec, "jump_table") as m:
            m[0] = prog
            prog_id = prog_info(prog).id  # type: ignore[arg-type]
            assert m[0] == u32(prog_id)
            assert m.lookup(1) is None
            with pytest.raises(KernelError) as exc:
                m[4] = prog
            assert exc.value.errno == errno.E2BIG
            del m[0]
            assert m.lookup(0) is None
    finally:
        prog.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize("outer_name", ["outer_array", "outer_hash"])
def test_map_in_map(spec: ObjectSpec, outer_name: str) -> None:
    with make(spec, outer_name) as outer, make(spec, "inner_a") as inner:
        inner[0] = 77
        outer.set_inner(1, inner)
        assert outer.inner_id(1) == inner.id
        with Map.from_id(outer.inner_id(1) or 0) as again:
            assert again[0] == u64(77)
            assert again.info() == inner.info()
        wrong = MapSpec(name="wrong_inner", type=MapType.HASH, key_size=4, value_size=8,
                        max_entries=1)
        with Map.create(wrong) as bad:
            with pytest.raises(KernelError) as exc:
                outer.set_inner(2, bad)
            assert exc.value.errno == errno.EINVAL
        with pytest.raises(NotSupportedError):
            inner.set_inner(0, outer)


def test_perf_event_array_sized_to_cpus(spec: ObjectSpec) -> None:
    with make(spec, "events_perf") as m:
        assert m.max_entries == possible_cpus() == m.info().max_entries
        with pytest.raises(KernelError):  # perf event slots are not readable from user space
            m.lookup(0)


# -- local storage ------------------------------------------------------------------------


def test_task_storage_by_pidfd(spec: ObjectSpec, btf_fd: int) -> None:
    pidfd = os.pidfd_open(os.getpid())
    try:
        with make(spec, "task_store", btf_fd) as m:
            value = struct.pack("=QI4x", 12, 3)
            m[pidfd] = value
            assert m[pidfd] == value
            del m[pidfd]
            assert m.lookup(pidfd) is None
    finally:
        os.close(pidfd)


# -- iteration --------------------------------------------------------------------------


def test_iteration_while_deleting_everything(spec: ObjectSpec) -> None:
    with make(spec, "lru_hash") as m:
        for i in range(100):
            m[i] = i
        seen = []
        for key in m.keys():
            seen.append(key)
            del m[key]
        assert sorted(seen) == sorted(u32(i) for i in range(100))
        assert len(seen) == len(set(seen))
        assert list(m.keys()) == []


def test_iteration_while_deleting_others(spec: ObjectSpec) -> None:
    with make(spec, "flows") as m:
        keys = [i.to_bytes(16, "little") for i in range(64)]
        for k in keys:
            m[k] = bytes(16)
        seen: List[bytes] = []
        deleted: Set[bytes] = set()
        for n, key in enumerate(m.keys()):
            assert key not in deleted  # never a key that is already gone
            seen.append(key)
            for k in keys:  # delete one key not yet seen
                if k not in seen and k not in deleted:
                    del m[k]
                    deleted.add(k)
                    break
            if n % 3 == 0:  # and every third time the current one (kernel restarts)
                del m[key]
                deleted.add(key)
        assert len(seen) == len(set(seen))
        assert set(seen) | deleted == set(keys)
        assert set(m.keys()) == set(keys) - deleted
        assert len(set(seen) - deleted) > 10


# -- batch ---------------------------------------------------------------------------------


def test_batch_hash(spec: ObjectSpec) -> None:
    with make(spec, "lru_hash") as m:
        keys = [u32(i) for i in range(50)]
        vals = [u64(i * 10) for i in range(50)]
        assert m.update_batch(keys, vals) == 50
        got = dict(m.lookup_batch(count=7))
        assert got == dict(zip(keys, vals))
        assert m.delete_batch(keys[:10]) == 10
        assert set(m.keys()) == set(keys[10:])
        drained = dict(m.lookup_and_delete_batch(count=16))
        assert drained == dict(zip(keys[10:], vals[10:]))
        assert list(m.keys()) == []


def test_batch_array_and_percpu(spec: ObjectSpec) -> None:
    ncpu = possible_cpus()
    with make(spec, "sized_array") as m:
        m.update_batch([1, 2], [11, 22])
        got = dict(m.lookup_batch(count=5))
        assert len(got) == 16 and got[u32(1)] == u64(11) and got[u32(2)] == u64(22)
        with pytest.raises(NotSupportedError):
            m.delete_batch([1])
    with make(spec, "percpu_hash") as m:
        vals = [[struct.pack("=QQ", k, c) for c in range(ncpu)] for k in range(3)]
        m.update_batch([0, 1, 2], vals)
        assert dict(m.lookup_batch()) == {u32(k): vals[k] for k in range(3)}
    with make(spec, "fifo") as q:
        with pytest.raises(NotSupportedError):
            q.lookup_batch()


# -- freeze, pin, ids, close --------------------------------------------------------------


def test_freeze(spec: ObjectSpec) -> None:
    with make(spec, "sized_array") as m:
        m[0] = 5
        m.freeze()
        with pytest.raises(KernelError) as exc:
            m[0] = 6
        assert exc.value.errno == errno.EPERM
        assert m[0] == u64(5)


def test_pin_from_pin_from_id(spec: ObjectSpec, bpffs_dir: Path) -> None:
    path = bpffs_dir / "flows"
    with make(spec, "pinned_config") as m:
        m[1] = 42
        m.pin(path)
        assert path.exists() and m.pin_path == str(path)
        with Map.from_pin(path) as again:
            assert again.id == m.id
            assert again.info() == m.info()
            assert again[1] == u64(42)
            assert again.type == MapType.ARRAY and again.flags == MapFlags.RDONLY_PROG
        with Map.from_id(m.id, name="cfg") as by_id:
            assert by_id.name == "cfg" and by_id[1] == u64(42)
        m.unpin()
        assert not path.exists()
        with pytest.raises(StateError):
            m.unpin()
    with pytest.raises(KernelError) as exc:
        Map.from_pin(path)
    assert exc.value.errno == errno.ENOENT


def test_use_after_close(spec: ObjectSpec) -> None:
    m = make(spec, "sized_array")
    m.close()
    m.close()
    assert m.closed
    for op in (lambda: m[0], lambda: m.update(0, 1), lambda: list(m.keys()),
               lambda: m.info(), lambda: m.freeze(), lambda: m.fileno()):
        with pytest.raises(StateError):
            op()


def test_no_leaks(spec: ObjectSpec, btf_fd: int) -> None:
    fds_before = open_fds()
    created: Set[int] = set()
    for ms in spec.maps:
        with Map.create(ms, btf_fd=btf_fd) as m:
            created.add(m.id)
            if ms.type in (MapType.ARRAY, MapType.HASH):
                m.update(0 if ms.key_size == 4 else bytes(ms.key_size), bytes(ms.value_size))
                list(m.items())
    # failures half-way leave nothing behind either
    with pytest.raises(KernelError):
        Map.create(MapSpec(name="bad", type=MapType.HASH, key_size=0, value_size=8,
                           max_entries=1))
    with pytest.raises(KernelError):
        Map.create(spec.map("task_store"))
    assert open_fds() == fds_before
    assert created and not still_alive(created)  # every map created here is gone


def test_map_in_map_without_inner_definition_is_refused() -> None:
    outer = MapSpec(name="lonely", type=MapType.ARRAY_OF_MAPS, key_size=4, value_size=4,
                    max_entries=2)
    with pytest.raises(NotSupportedError, match="inner"):
        Map.create(outer)


def test_repr_and_sys_byteorder(spec: ObjectSpec) -> None:
    with make(spec, "sized_array") as m:
        assert "sized_array" in repr(m) and "ARRAY" in repr(m)
        m[0] = 1
        assert m[0] == (1).to_bytes(8, sys.byteorder)
    assert "closed" in repr(m)


def test_from_pin_of_a_program_is_refused(bpffs_dir: Path) -> None:
    prog = _load_xdp_return(1)
    path = bpffs_dir / "prog"
    try:
        from purebpf.syscall import obj_pin

        obj_pin(prog, str(path))  # type: ignore[arg-type]
        fds = open_fds()
        with pytest.raises(LookupError, match="not a map"):
            Map.from_pin(path)
        assert open_fds() == fds
    finally:
        prog.close()  # type: ignore[attr-defined]


def test_kernel_names_are_cut_like_libbpf(spec: ObjectSpec) -> None:
    with Map.create(spec.map("sized_array"), name_override="a name/with:odd*chars") as m:
        assert m.info().name == "a_name_with_odd"


def test_batch_grows_chunk_for_full_buckets() -> None:
    # 64 keys in a 64-bucket hash share some bucket (all distinct has odds
    # 64!/64**64), and a bucket is returned whole: count=1 meets ENOSPC
    from purebpf.syscall import tracing

    small = MapSpec(name="tiny_hash", type=MapType.HASH, key_size=4, value_size=4,
                    max_entries=64)
    errors: List[int] = []
    with Map.create(small) as m:
        for i in range(64):
            m[i] = i + 1
        with tracing(lambda rec: errors.append(rec.errno or 0)):
            got = dict(m.lookup_batch(count=1))
        assert errno.ENOSPC in errors
        assert got == {u32(i): u32(i + 1) for i in range(64)}
        assert bool(m) and len(m) == 64
    with Map.create(MapSpec(name="q", type=MapType.QUEUE, key_size=0, value_size=4,
                            max_entries=2)) as q:
        assert bool(q)


def test_sk_storage_by_socket_fd(spec: ObjectSpec, btf_fd: int) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, \
            make(spec, "sk_store", btf_fd) as m:
        m[sock.fileno()] = 4096
        assert m[sock.fileno()] == u64(4096)
        assert sock.fileno() in m
        del m[sock.fileno()]
        assert m.lookup(sock.fileno()) is None


def test_batch_support_follows_the_kernel(spec: ObjectSpec) -> None:
    with make(spec, "routes") as m:  # the LPM trie: batch lookup, update, delete
        k = struct.pack("=I4B", 16, 192, 168, 0, 0)
        assert m.update_batch([k], [u32(1)]) == 1
        assert m.lookup_batch() == [(k, u32(1))]
        with pytest.raises(NotSupportedError) as exc:
            m.lookup_and_delete_batch()
        assert isinstance(exc.value.__cause__, KernelError)
        assert m.delete_batch([k]) == 1
    with make(spec, "jump_table") as m:
        with pytest.raises(NotSupportedError):
            m.lookup_batch()
