"""purebpf.syscall against the running kernel (root).

Oracles: the kernel itself (info structs, ids, test runs, errno), bpftool
(pinned objects, program tags, feature probes) and libbpf.so.1 through ctypes
(possible CPUs).  Every test also checks that it leaves no bpf file
descriptor open and that the kernel objects it created are gone afterwards.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import json
import os
import shutil
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple

import pytest

import purebpf.syscall as S
from purebpf.btf.types import BtfKind
from purebpf.errors import BtfLoadError, KernelError, StateError, VerifierError
from purebpf.insn import builders as b
from purebpf.insn import encode
from purebpf.syscall import features as F
from purebpf.syscall.perf import PerfEventAttr, PerfSampleType, PerfSwConfig, PerfType
from purebpf.uapi import AttachType, MapFlags, MapType, MapUpdateFlags, ProgType

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parent.parent

BPF_DW, BPF_W, BPF_B = 0x18, 0x00, 0x10
XDP_PASS = 2


@pytest.fixture(autouse=True)
def _root_and_leaks() -> Iterator[None]:
    """Skip without root; afterwards no new bpf fd may stay open and every map /
    program / BTF object created during the test must be gone from the kernel."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    before = _bpf_fds()
    created: List[Tuple[str, int]] = []

    def hook(rec: S.TraceRecord) -> None:
        if rec.result is not None and rec.command in ("BPF_MAP_CREATE", "BPF_PROG_LOAD", "BPF_BTF_LOAD"):
            kind, obj_id = _fdinfo_id(rec.result)
            if obj_id:
                created.append((kind, obj_id))

    with S.tracing(hook):
        yield
    leaked = _bpf_fds() - before
    assert not leaked, f"bpf fds left open: {sorted(leaked)}"
    for kind, obj_id in created:
        assert _gone(kind, obj_id), f"{kind} id {obj_id} still exists in the kernel"


def _bpf_fds() -> Set[Tuple[int, str]]:
    out = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith("anon_inode:bpf") or target.startswith("anon_inode:[perf_event]"):
            out.add((int(name), target))
    return out


def _fdinfo_id(fd: int) -> Tuple[str, int]:
    try:
        text = Path(f"/proc/self/fdinfo/{fd}").read_text()
    except OSError:
        return "", 0
    for line in text.splitlines():
        for key in ("map_id", "prog_id", "btf_id"):
            if line.startswith(key + ":"):
                return key[:-3], int(line.split()[1])
    return "", 0


def _gone(kind: str, obj_id: int) -> bool:
    """Objects are freed after an RCU grace period / deferred work: poll a bounded
    number of times (generous, for a busy machine).

    Liveness is read by walking ids (BPF_*_GET_NEXT_ID), never by reopening the
    object by id: on this kernel, reopening a prog array while it is being
    freed and closing it again can keep it alive for good.
    """
    next_id = {"map": S.map_get_next_id, "prog": S.prog_get_next_id, "btf": S.btf_get_next_id}[kind]
    for _ in range(3000):
        if next_id(obj_id - 1) != obj_id:
            return True
        time.sleep(0.01)
    return False


@pytest.fixture
def pin_dir() -> Iterator[Path]:
    path = Path("/sys/fs/bpf") / f"purebpf-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    if not Path("/sys/fs/bpf").is_dir():
        pytest.skip("kernel feature missing: bpffs at /sys/fs/bpf")
    path.mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _bpftool(*args: str) -> Any:
    tool = shutil.which("bpftool")
    if tool is None:
        pytest.skip("bpftool not installed")
    res = subprocess.run([tool, "-j", *args], capture_output=True, text=True, check=True)
    return json.loads(res.stdout)


def _all_ids(next_id: Any) -> List[int]:
    ids: List[int] = []
    cur = 0
    while True:
        nxt = next_id(cur)
        if nxt is None:
            return ids
        ids.append(nxt)
        cur = nxt


def u32(v: int) -> bytes:
    return struct.pack("=I", v)


def u64(v: int) -> bytes:
    return struct.pack("=Q", v)


# -- FD ------------------------------------------------------------------------------

def test_fd_ownership() -> None:
    r, w = os.pipe()
    fd = S.FD(r, "pipe")
    assert int(fd) == r and fd.fileno() == r and not fd.closed
    fd.close()
    fd.close()  # idempotent
    assert fd.closed
    with pytest.raises(StateError):
        fd.fileno()
    with pytest.raises(OSError):
        os.fstat(r)  # really closed
    with S.FD(w, "pipe") as wfd:
        with wfd.dup() as copy:
            assert copy.fileno() != w
            assert os.fstat(copy.fileno()).st_ino == os.fstat(w).st_ino
        n = wfd.detach()
        assert wfd.closed and n == w
    os.fstat(w)  # detached, still open
    os.close(w)


def test_fd_warns_when_collected_open() -> None:
    r, w = os.pipe()
    os.close(w)
    fd = S.FD(r, "pipe")
    with pytest.warns(ResourceWarning, match="unclosed pipe"):
        del fd
        import gc

        gc.collect()
    with pytest.raises(OSError):
        os.fstat(r)


def test_map_fd_after_close_is_state_error() -> None:
    fd = S.map_create(MapType.ARRAY, 4, 4, 1)
    fd.close()
    with pytest.raises(StateError):
        S.map_lookup_elem(fd, u32(0), 4)


# -- maps -------------------------------------------------------------------------------

def _check_info(fd: S.FD, map_type: MapType, key: int, value: int, entries: int, flags: int,
                name: str) -> int:
    info = S.map_info(fd)
    assert (info.type, info.key_size, info.value_size, info.max_entries, info.map_flags) == \
        (map_type, key, value, entries, flags)
    assert info.name.decode() == name
    assert info.id in _all_ids(S.map_get_next_id)
    with S.map_get_fd_by_id(info.id) as again:
        assert S.map_info(again).id == info.id
    return int(info.id)


def test_hash_map_operations() -> None:
    with S.map_create(MapType.HASH, 4, 8, 16, name="flows", flags=MapFlags.NO_PREALLOC) as fd:
        _check_info(fd, MapType.HASH, 4, 8, 16, MapFlags.NO_PREALLOC, "flows")
        assert S.map_lookup_elem(fd, u32(1), 8) is None
        assert S.map_get_next_key(fd, None, 4) is None
        S.map_update_elem(fd, u32(1), u64(100))
        S.map_update_elem(fd, u32(2), u64(200), MapUpdateFlags.NOEXIST)
        assert S.map_lookup_elem(fd, u32(1), 8) == u64(100)
        with pytest.raises(KernelError) as ei:
            S.map_update_elem(fd, u32(1), u64(1), MapUpdateFlags.NOEXIST)
        assert ei.value.errno == errno.EEXIST and ei.value.command == "BPF_MAP_UPDATE_ELEM"
        with pytest.raises(KernelError) as ei:
            S.map_update_elem(fd, u32(3), u64(1), MapUpdateFlags.EXIST)
        assert ei.value.errno == errno.ENOENT
        keys = []
        k = S.map_get_next_key(fd, None, 4)
        while k is not None:
            keys.append(k)
            k = S.map_get_next_key(fd, k, 4)
        assert sorted(keys) == [u32(1), u32(2)]
        # a key that is not in the map restarts the walk at the first key
        assert S.map_get_next_key(fd, u32(99), 4) in (u32(1), u32(2))
        assert S.map_lookup_and_delete_elem(fd, u32(2), 8) == u64(200)
        assert S.map_delete_elem(fd, u32(1)) is True
        assert S.map_delete_elem(fd, u32(1)) is False
        assert S.map_get_next_key(fd, None, 4) is None


def test_hash_map_full_is_e2big() -> None:
    with S.map_create(MapType.HASH, 4, 4, 2) as fd:
        S.map_update_elem(fd, u32(1), u32(1))
        S.map_update_elem(fd, u32(2), u32(2))
        with pytest.raises(KernelError) as ei:
            S.map_update_elem(fd, u32(3), u32(3))
        assert ei.value.errno == errno.E2BIG
        assert "full" in (ei.value.hint or "")


def test_array_map_operations_and_freeze() -> None:
    with S.map_create(MapType.ARRAY, 4, 16, 4, name="arr") as fd:
        _check_info(fd, MapType.ARRAY, 4, 16, 4, 0, "arr")
        assert S.map_lookup_elem(fd, u32(3), 16) == bytes(16)  # arrays are zero-filled
        assert S.map_lookup_elem(fd, u32(4), 16) is None  # out of range: ENOENT
        S.map_update_elem(fd, u32(2), b"x" * 16)
        assert S.map_lookup_elem(fd, u32(2), 16) == b"x" * 16
        with pytest.raises(KernelError) as ei:
            S.map_delete_elem(fd, u32(2))
        assert ei.value.errno == errno.EINVAL
        S.map_freeze(fd)
        with pytest.raises(KernelError) as ei:
            S.map_update_elem(fd, u32(2), b"y" * 16)
        assert ei.value.errno == errno.EPERM
        assert S.map_lookup_elem(fd, u32(2), 16) == b"x" * 16


@pytest.mark.parametrize("map_type", [MapType.PERCPU_HASH, MapType.PERCPU_ARRAY, MapType.LRU_PERCPU_HASH])
def test_percpu_values(map_type: MapType) -> None:
    ncpu = F.num_possible_cpus()
    with S.map_create(map_type, 4, 4, 4) as fd:
        _check_info(fd, map_type, 4, 4, 4, 0, "")
        # each CPU's value is rounded up to 8 bytes
        value = b"".join(struct.pack("=II", 10 + cpu, 0) for cpu in range(ncpu))
        S.map_update_elem(fd, u32(1), value)
        got = S.map_lookup_elem(fd, u32(1), 8 * ncpu)
        assert got is not None
        assert [struct.unpack_from("=I", got, 8 * c)[0] for c in range(ncpu)] == [10 + c for c in range(ncpu)]


def test_lru_hash_evicts() -> None:
    with S.map_create(MapType.LRU_HASH, 4, 4, 8) as fd:
        for i in range(64):
            S.map_update_elem(fd, u32(i), u32(i))
        keys = []
        k = S.map_get_next_key(fd, None, 4)
        while k is not None:
            keys.append(k)
            k = S.map_get_next_key(fd, k, 4)
        assert 0 < len(keys) <= 64
        assert S.map_lookup_elem(fd, u32(63), 4) == u32(63)


def test_lpm_trie_longest_prefix() -> None:
    # key: struct bpf_lpm_trie_key { __u32 prefixlen; __u8 data[4]; }
    def key(prefix: int, ip: bytes) -> bytes:
        return u32(prefix) + ip

    with S.map_create(MapType.LPM_TRIE, 8, 4, 16, flags=MapFlags.NO_PREALLOC) as fd:
        _check_info(fd, MapType.LPM_TRIE, 8, 4, 16, MapFlags.NO_PREALLOC, "")
        S.map_update_elem(fd, key(8, bytes([10, 0, 0, 0])), u32(8))
        S.map_update_elem(fd, key(24, bytes([10, 1, 2, 0])), u32(24))
        assert S.map_lookup_elem(fd, key(32, bytes([10, 1, 2, 3])), 4) == u32(24)
        assert S.map_lookup_elem(fd, key(32, bytes([10, 9, 9, 9])), 4) == u32(8)
        assert S.map_lookup_elem(fd, key(32, bytes([11, 0, 0, 1])), 4) is None


@pytest.mark.parametrize("map_type,order", [(MapType.QUEUE, [1, 2, 3]), (MapType.STACK, [3, 2, 1])])
def test_queue_and_stack(map_type: MapType, order: List[int]) -> None:
    with S.map_create(map_type, 0, 4, 8) as fd:
        _check_info(fd, map_type, 0, 4, 8, 0, "")
        for v in (1, 2, 3):
            S.map_update_elem(fd, None, u32(v))
        assert S.map_lookup_elem(fd, None, 4) == u32(order[0])  # peek
        popped = [S.map_lookup_and_delete_elem(fd, None, 4) for _ in range(3)]
        assert popped == [u32(v) for v in order]
        assert S.map_lookup_and_delete_elem(fd, None, 4) is None


def test_bloom_filter() -> None:
    with S.map_create(MapType.BLOOM_FILTER, 0, 4, 64, map_extra=3) as fd:
        info = S.map_info(fd)
        assert info.type == MapType.BLOOM_FILTER and info.map_extra == 3
        S.map_update_elem(fd, None, u32(42))
        assert S.map_lookup_elem(fd, None, 4, value=u32(42)) is not None
        misses = sum(S.map_lookup_elem(fd, None, 4, value=u32(v)) is None for v in range(1000, 1100))
        assert misses > 50  # a 64-entry filter holding one value rejects most others


def _tiny_prog(ret: int = 0, prog_type: ProgType = ProgType.SOCKET_FILTER, name: str = "tiny") -> S.FD:
    fd, _ = S.prog_load(prog_type, encode([b.mov64_imm(0, ret), b.exit_insn()]), "GPL", name=name)
    return fd


def test_prog_array_holds_programs() -> None:
    with S.map_create(MapType.PROG_ARRAY, 4, 4, 4) as pa, _tiny_prog() as prog:
        S.map_update_elem(pa, u32(1), u32(prog.fileno()))
        # user space reads a program slot back as the program's id
        assert S.map_lookup_elem(pa, u32(1), 4) == u32(S.prog_info(prog).id)
        assert S.map_delete_elem(pa, u32(1)) is True


@pytest.mark.parametrize("outer", [MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS])
def test_map_in_map(outer: MapType) -> None:
    with S.map_create(MapType.ARRAY, 4, 8, 2, name="inner") as inner, \
            S.map_create(outer, 4, 4, 4, inner_map_fd=inner, name="outer") as om:
        _check_info(om, outer, 4, 4, 4, 0, "outer")
        S.map_update_elem(om, u32(0), u32(inner.fileno()))
        assert S.map_lookup_elem(om, u32(0), 4) == u32(S.map_info(inner).id)


def test_perf_event_array_with_bpf_output_event() -> None:
    ncpu = F.num_possible_cpus()
    with S.map_create(MapType.PERF_EVENT_ARRAY, 4, 4, ncpu) as pea:
        _check_info(pea, MapType.PERF_EVENT_ARRAY, 4, 4, ncpu, 0, "")
        attr = PerfEventAttr()
        attr.type = PerfType.SOFTWARE
        attr.config = PerfSwConfig.BPF_OUTPUT
        attr.sample_type = PerfSampleType.RAW
        attr.sample_period = 1
        attr.wakeup_events = 1
        with S.perf_event_open(attr, -1, 0) as ev:
            S.map_update_elem(pea, u32(0), u32(ev.fileno()))
            assert S.map_delete_elem(pea, u32(0)) is True


def test_task_storage_keyed_by_pidfd() -> None:
    types = (F._int() + F._t(1, BtfKind.STRUCT, 2, 8) + struct.pack("=III", 5, 1, 0)
             + struct.pack("=III", 7, 1, 32))
    btf_fd, _ = S.btf_load(F._native(F.raw_btf(types, b"\0val\0a\0b\0")))
    with btf_fd, S.map_create(MapType.TASK_STORAGE, 4, 8, 0, flags=MapFlags.NO_PREALLOC, btf_fd=btf_fd,
                              btf_key_type_id=1, btf_value_type_id=2, name="ts") as fd:
        info = S.map_info(fd)
        assert (info.btf_key_type_id, info.btf_value_type_id) == (1, 2)
        assert info.btf_id == S.btf_info(btf_fd).id
        pidfd = os.pidfd_open(os.getpid())
        try:
            S.map_update_elem(fd, u32(pidfd), u64(0x1122334455667788))
            assert S.map_lookup_elem(fd, u32(pidfd), 8) == u64(0x1122334455667788)
            assert S.map_delete_elem(fd, u32(pidfd))
        finally:
            os.close(pidfd)


# map types whose user-space operations need sockets, devices or programs: created
# and checked through BPF_OBJ_GET_INFO_BY_FD.  The kernel adds BPF_F_RDONLY_PROG
# to device maps itself (programs may only redirect through them).
KERNEL_ADDED_FLAGS = {MapType.DEVMAP: MapFlags.RDONLY_PROG, MapType.DEVMAP_HASH: MapFlags.RDONLY_PROG}
CREATE_ONLY = [
    (MapType.STACK_TRACE, 4, 8 * 127, 16, 0),
    (MapType.CGROUP_ARRAY, 4, 4, 4, 0),
    (MapType.DEVMAP, 4, 4, 4, 0),
    (MapType.DEVMAP_HASH, 4, 4, 4, 0),
    (MapType.CPUMAP, 4, 4, 4, 0),
    (MapType.XSKMAP, 4, 4, 4, 0),
    (MapType.SOCKMAP, 4, 4, 4, 0),
    (MapType.SOCKHASH, 4, 4, 4, 0),
    (MapType.REUSEPORT_SOCKARRAY, 4, 4, 4, 0),
    (MapType.CGROUP_STORAGE, 16, 8, 0, 0),
    (MapType.PERCPU_CGROUP_STORAGE, 16, 8, 0, 0),
    (MapType.RINGBUF, 0, 0, 4096 * 4, 0),
    (MapType.USER_RINGBUF, 0, 0, 4096 * 4, 0),
    (MapType.ARENA, 0, 0, 4, MapFlags.MMAPABLE),
]


@pytest.mark.parametrize("spec", CREATE_ONLY, ids=[m.name for m, *_ in CREATE_ONLY])
def test_create_other_map_types(spec: Tuple[MapType, int, int, int, int]) -> None:
    map_type, key, value, entries, flags = spec
    name = map_type.name.lower()[:15]
    with S.map_create(map_type, key, value, entries, flags=flags, name=name) as fd:
        _check_info(fd, map_type, key, value, entries, flags | KERNEL_ADDED_FLAGS.get(map_type, 0), name)


def test_devmap_holds_loopback() -> None:
    with S.map_create(MapType.DEVMAP, 4, 4, 4) as fd:
        lo = struct.unpack("=I", u32(1))[0]
        S.map_update_elem(fd, u32(0), u32(lo))
        assert S.map_lookup_elem(fd, u32(0), 4) == u32(lo)


def test_ringbuf_has_no_user_lookup() -> None:
    with S.map_create(MapType.RINGBUF, 0, 0, 4096) as fd:
        with pytest.raises(KernelError) as ei:
            S.map_lookup_elem(fd, None, 8)
        assert ei.value.errno in (errno.EINVAL, errno.EOPNOTSUPP, 524)
        assert ei.value.command == "BPF_MAP_LOOKUP_ELEM"


def test_map_create_einval_keeps_errno_and_names_command() -> None:
    with pytest.raises(KernelError) as ei:
        S.map_create(MapType.HASH, 0, 4, 1)
    err = ei.value
    assert isinstance(err, OSError)
    assert err.errno == errno.EINVAL
    assert err.command == "BPF_MAP_CREATE"
    assert "key_size" in (err.hint or "")
    assert "BPF_MAP_CREATE" in str(err)


def test_map_name_is_cut_to_15_bytes() -> None:
    with S.map_create(MapType.ARRAY, 4, 4, 1, name="a_very_long_map_name") as fd:
        assert S.map_info(fd).name == b"a_very_long_map"


# -- batch ---------------------------------------------------------------------------------

def test_hash_batch_operations() -> None:
    n = 100
    with S.map_create(MapType.HASH, 4, 8, 128) as fd:
        assert S.map_update_batch(fd, [u32(i) for i in range(n)], [u64(i * 3) for i in range(n)]) == n
        seen: Dict[bytes, bytes] = {}
        token: Optional[bytes] = None
        while True:
            res = S.map_lookup_batch(fd, token, 4, 8, 16)
            keys, values, token = res
            seen.update(zip(keys, values))
            if token is None:
                break
        assert seen == {u32(i): u64(i * 3) for i in range(n)}
        assert S.map_delete_batch(fd, [u32(i) for i in range(50)]) == 50
        got: Dict[bytes, bytes] = {}
        token = None
        while True:
            res = S.map_lookup_and_delete_batch(fd, token, 4, 8, 64)
            got.update(zip(res.keys, res.values))
            token = res.out_batch
            if token is None:
                break
        assert got == {u32(i): u64(i * 3) for i in range(50, n)}
        assert S.map_get_next_key(fd, None, 4) is None


def test_array_lookup_batch_and_error_count() -> None:
    with S.map_create(MapType.ARRAY, 4, 4, 8) as fd:
        S.map_update_batch(fd, [u32(i) for i in range(8)], [u32(i + 1) for i in range(8)])
        res = S.map_lookup_batch(fd, None, 4, 4, 8)
        assert res.keys == [u32(i) for i in range(8)]
        assert res.values == [u32(i + 1) for i in range(8)]
        with pytest.raises(KernelError) as ei:
            S.map_update_batch(fd, [u32(0), u32(99)], [u32(5), u32(5)])
        assert ei.value.command == "BPF_MAP_UPDATE_BATCH"
        assert getattr(ei.value, "count") == 1  # the first element was written
        assert S.map_lookup_elem(fd, u32(0), 4) == u32(5)


# -- pinning --------------------------------------------------------------------------------

def test_pin_and_get(pin_dir: Path) -> None:
    path = pin_dir / "m"
    with S.map_create(MapType.HASH, 4, 4, 8, name="pinned") as fd:
        S.obj_pin(fd, str(path))
        assert path.exists()
        shown = _bpftool("map", "show", "pinned", str(path))
        assert shown["id"] == S.map_info(fd).id and shown["name"] == "pinned"
        S.map_update_elem(fd, u32(7), u32(70))
    with S.obj_get(str(path)) as again:  # the pin keeps the map alive
        assert S.map_info(again).name == b"pinned"
        assert S.map_lookup_elem(again, u32(7), 4) == u32(70)
    with S.obj_get(str(path), MapFlags.RDONLY) as ro:
        with pytest.raises(KernelError) as ei:
            S.map_update_elem(ro, u32(1), u32(1))
        assert ei.value.errno == errno.EPERM
    with pytest.raises(KernelError) as ei:
        with S.map_create(MapType.ARRAY, 4, 4, 1) as other:
            S.obj_pin(other, str(path))
    assert ei.value.errno == errno.EEXIST
    os.unlink(path)
    with pytest.raises(KernelError) as ei:
        S.obj_get(str(path))
    assert ei.value.errno == errno.ENOENT and ei.value.command == "BPF_OBJ_GET"


def test_pin_outside_bpffs_is_refused(tmp_path: Path) -> None:
    with S.map_create(MapType.ARRAY, 4, 4, 1) as fd:
        with pytest.raises(KernelError) as ei:
            S.obj_pin(fd, str(tmp_path / "x"))
    assert ei.value.errno == errno.EPERM
    assert "bpf filesystem" in (ei.value.hint or "")


# -- programs ---------------------------------------------------------------------------------

def test_socket_filter_load_info_and_test_run() -> None:
    insns = encode([b.mov64_imm(0, 42), b.exit_insn()])
    fd, log = S.prog_load(ProgType.SOCKET_FILTER, insns, "GPL", name="answer")
    with fd:
        assert log == ""
        info = S.prog_info(fd)
        assert info.type == ProgType.SOCKET_FILTER and info.name == b"answer"
        assert info.xlated_prog_len == 16 and info.gpl_compatible == 1
        assert info.id in _all_ids(S.prog_get_next_id)
        shown = _bpftool("prog", "show", "id", str(info.id))
        assert shown["tag"] == bytes(info.tag).hex()
        assert shown["name"] == "answer" and shown["type"] == "socket_filter"
        assert S.prog_xlated_insns(fd) == insns
        res = S.prog_test_run(fd, data_in=bytes(64), repeat=5)
        assert res.retval == 42
        assert res.duration_ns >= 0


def test_xdp_program_rewrites_packet() -> None:
    # r2 = ctx->data; r3 = ctx->data_end; if r2 + 2 > r3 goto out;
    # *(u8 *)(r2 + 0) = 0xab; *(u8 *)(r2 + 1) = 0xcd; out: r0 = XDP_PASS
    prog = [
        b.ldx_mem(BPF_W, 2, 1, 0),
        b.ldx_mem(BPF_W, 3, 1, 4),
        b.mov64_reg(4, 2),
        b.alu64_imm(0x00, 4, 2),  # BPF_ADD
        b.jmp_reg(0x20, 4, 3, 2),  # BPF_JGT: skip the two stores
        b.st_mem(BPF_B, 2, 0, 0xAB),
        b.st_mem(BPF_B, 2, 1, 0xCD),
        b.mov64_imm(0, XDP_PASS),
        b.exit_insn(),
    ]
    fd, _ = S.prog_load(ProgType.XDP, encode(prog), "GPL", name="rewrite")
    with fd:
        packet = bytes(range(64))
        res = S.prog_test_run(fd, data_in=packet, data_size_out=128)
        assert res.retval == XDP_PASS
        assert res.data_out == bytes([0xAB, 0xCD]) + packet[2:]


def test_test_run_ctx_for_skb_program() -> None:
    # a socket filter returning skb->len
    prog = [b.ldx_mem(BPF_W, 0, 1, 0), b.exit_insn()]  # struct __sk_buff { __u32 len; ... }
    fd, _ = S.prog_load(ProgType.SOCKET_FILTER, encode(prog), "GPL")
    with fd:
        res = S.prog_test_run(fd, data_in=bytes(77))
        assert res.retval == 77 - 14  # the kernel pulls the Ethernet header off skb->data


def test_verifier_rejection_carries_the_log() -> None:
    bad = encode([b.mov64_reg(0, 2), b.exit_insn()])  # r2 is never initialised
    with pytest.raises(VerifierError) as ei:
        S.prog_load(ProgType.SOCKET_FILTER, bad, "GPL", name="bad", log_level=1, log_size=65536)
    err = ei.value
    assert err.errno == errno.EACCES
    assert "R2 !read_ok" in err.log
    assert err.program == "bad" and err.command == "BPF_PROG_LOAD"
    assert isinstance(err, KernelError)
    # without a log buffer the errno is the same and the log empty
    with pytest.raises(VerifierError) as ei2:
        S.prog_load(ProgType.SOCKET_FILTER, bad, "GPL")
    assert ei2.value.errno == errno.EACCES and ei2.value.log == ""


def test_small_log_buffer_is_enospc_with_true_size() -> None:
    insns = encode([b.mov64_imm(0, 1)] * 20 + [b.exit_insn()])
    with pytest.raises(VerifierError) as ei:
        S.prog_load(ProgType.SOCKET_FILTER, insns, "GPL", log_level=2, log_size=64)
    err = ei.value
    assert err.errno == errno.ENOSPC and err.truncated
    true_size = getattr(err, "log_true_size")
    assert true_size > 64
    fd, log = S.prog_load(ProgType.SOCKET_FILTER, insns, "GPL", log_level=2, log_size=true_size)
    fd.close()
    assert len(log) + 1 == true_size


def test_gpl_only_helper_needs_gpl_license() -> None:
    # bpf_trace_printk-like GPL-only helper: bpf_probe_read (4) in a kprobe program
    prog = encode([b.mov64_reg(1, 10), b.alu64_imm(0x00, 1, -8), b.mov64_imm(2, 8), b.mov64_imm(3, 0),
                   b.call_helper(4), b.mov64_imm(0, 0), b.exit_insn()])
    with pytest.raises(VerifierError) as ei:
        S.prog_load(ProgType.KPROBE, prog, "Proprietary", log_level=1, log_size=65536)
    assert "GPL" in ei.value.log


def test_ids_and_fd_by_id_for_programs() -> None:
    with _tiny_prog(name="byid") as fd:
        pid = S.prog_info(fd).id
        with S.prog_get_fd_by_id(pid) as again:
            assert S.prog_info(again).name == b"byid"
    with pytest.raises(KernelError) as ei:
        S.prog_get_fd_by_id(0xFFFFFFF0)
    assert ei.value.errno == errno.ENOENT


def test_prog_bind_map_and_map_ids() -> None:
    with S.map_create(MapType.ARRAY, 4, 4, 1) as m, _tiny_prog() as p:
        assert S.prog_map_ids(p) == []
        S.prog_bind_map(p, m)
        assert S.prog_map_ids(p) == [S.map_info(m).id]


def test_program_using_map_lists_it() -> None:
    with S.map_create(MapType.ARRAY, 4, 8, 1, name="counter") as m:
        prog = [
            b.st_mem(BPF_W, 10, -4, 0),       # key = 0 on the stack
            b.mov64_reg(2, 10),
            b.alu64_imm(0x00, 2, -4),
            b.ld_map_fd(1, m.fileno()),
            b.call_helper(1),                  # bpf_map_lookup_elem
            b.jmp_imm(0x10, 0, 0, 2),          # if r0 == 0 goto out
            b.mov64_imm(1, 1),
            b.atomic_op(BPF_DW, 0x00, 0, 1, 0),  # lock *(u64 *)(r0) += r1
            b.mov64_imm(0, 0),
            b.exit_insn(),
        ]
        fd, _ = S.prog_load(ProgType.SOCKET_FILTER, encode(prog), "GPL", name="count")
        with fd:
            assert S.prog_map_ids(fd) == [S.map_info(m).id]
            S.prog_test_run(fd, data_in=bytes(32), repeat=7)
            assert S.map_lookup_elem(m, u32(0), 8) == u64(7)


def test_enable_stats_counts_runs() -> None:
    with S.enable_stats(0) as stats, _tiny_prog() as p:
        assert not stats.closed
        S.prog_test_run(p, data_in=bytes(16), repeat=3)
        info = S.prog_info(p)
        assert info.run_cnt >= 3


# -- BTF ---------------------------------------------------------------------------------------

def _int_btf() -> bytes:
    return F._native(F.raw_btf(F._int(1), b"\0int\0"))


def test_btf_load_round_trip() -> None:
    data = _int_btf()
    fd, log = S.btf_load(data, log_level=1, log_size=4096)
    with fd:
        info = S.btf_info(fd)
        assert info.btf_size == len(data)
        assert info.id in _all_ids(S.btf_get_next_id)
        assert S.btf_data(fd) == data
        assert not info.kernel_btf
        with S.btf_get_fd_by_id(info.id) as again:
            assert S.btf_data(again) == data


def test_btf_load_error_has_log() -> None:
    # an INT with 33 bits in 4 bytes is invalid
    types = F._t(1, BtfKind.INT, 0, 4) + struct.pack("=I", 33)
    with pytest.raises(BtfLoadError) as ei:
        S.btf_load(F._native(F.raw_btf(types, b"\0int\0")), log_level=1, log_size=65536)
    err = ei.value
    assert err.errno == errno.EINVAL and err.command == "BPF_BTF_LOAD"
    assert "nr_bits" in err.log or "Invalid" in err.log
    assert err.summary


def test_kernel_btf_is_visible_by_id() -> None:
    fd = F._vmlinux_btf_fd()
    assert fd is not None
    with fd:
        assert S.btf_info(fd).kernel_btf == 1
        assert S.btf_name(fd) == "vmlinux"


# -- links and perf events --------------------------------------------------------------------

def _tracepoint_id(event: str) -> int:
    from purebpf.errors import NotFoundError
    from purebpf.syscall.perf import tracepoint_id

    category, name = event.split("/")
    try:
        return tracepoint_id(category, name)
    except NotFoundError:
        pytest.skip(f"kernel feature missing: tracepoint {event} (tracefs)")
        raise


def test_tracepoint_id_and_pmu_type_read_sysfs() -> None:
    from purebpf.errors import NotFoundError, NotSupportedError
    from purebpf.syscall.perf import pmu_type, tracepoint_id

    ids = []
    for base in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"):
        p = Path(base) / "events/syscalls/sys_enter_getppid/id"
        if p.exists():
            ids.append(int(p.read_text()))
    if not ids:
        pytest.skip("kernel feature missing: tracefs with syscall tracepoints")
    assert tracepoint_id("syscalls", "sys_enter_getppid") == ids[0]
    with pytest.raises(NotFoundError):
        tracepoint_id("syscalls", "no_such_event_xyz")
    with pytest.raises(NotFoundError):
        tracepoint_id("..", "x")
    assert pmu_type("tracepoint") == PerfType.TRACEPOINT
    assert pmu_type("software") == PerfType.SOFTWARE
    with pytest.raises(NotSupportedError):
        pmu_type("no_such_pmu")


def test_perf_event_link_on_tracepoint_runs_program() -> None:
    tp = _tracepoint_id("syscalls/sys_enter_getppid")
    with S.map_create(MapType.ARRAY, 4, 8, 1) as m:
        prog = [
            b.st_mem(BPF_W, 10, -4, 0),
            b.mov64_reg(2, 10),
            b.alu64_imm(0x00, 2, -4),
            b.ld_map_fd(1, m.fileno()),
            b.call_helper(1),
            b.jmp_imm(0x10, 0, 0, 2),
            b.mov64_imm(1, 1),
            b.atomic_op(BPF_DW, 0x00, 0, 1, 0),
            b.mov64_imm(0, 0),
            b.exit_insn(),
        ]
        pfd, _ = S.prog_load(ProgType.TRACEPOINT, encode(prog), "GPL", name="tp")
        attr = PerfEventAttr()
        attr.type = PerfType.TRACEPOINT
        attr.config = tp
        attr.sample_period = 1
        attr.wakeup_events = 1
        with pfd, S.perf_event_open(attr, os.getpid(), -1) as ev:
            with S.link_create(pfd, ev.fileno(), AttachType.PERF_EVENT, perf_cookie=0x1234) as link:
                li = S.link_info(link)
                assert li.type == 7  # BPF_LINK_TYPE_PERF_EVENT
                assert li.prog_id == S.prog_info(pfd).id
                assert li.perf_event.tracepoint.cookie == 0x1234
                assert li.perf_event.type == 5  # BPF_PERF_EVENT_TRACEPOINT
                assert S.link_target_name(link) == "sys_enter_getppid"
                for _ in range(5):
                    os.getppid()
                count = struct.unpack("=Q", S.map_lookup_elem(m, u32(0), 8) or bytes(8))[0]
                assert count >= 5
                # perf-event links cannot be detached, only closed
                with pytest.raises(KernelError) as ei:
                    S.link_detach(link)
                assert ei.value.errno in (errno.EOPNOTSUPP, 524)
            # link closed: the program no longer runs
            before = struct.unpack("=Q", S.map_lookup_elem(m, u32(0), 8) or bytes(8))[0]
            os.getppid()
            after = struct.unpack("=Q", S.map_lookup_elem(m, u32(0), 8) or bytes(8))[0]
            assert after == before


def test_raw_tracepoint_open() -> None:
    with _tiny_prog(prog_type=ProgType.RAW_TRACEPOINT, name="rawtp") as p:
        with S.raw_tracepoint_open("sys_enter", p) as link:
            li = S.link_info(link)
            assert li.type == 1  # BPF_LINK_TYPE_RAW_TRACEPOINT
            assert S.link_target_name(link) == "sys_enter"
            assert li.prog_id == S.prog_info(p).id
        with pytest.raises(KernelError) as ei:
            S.raw_tracepoint_open("no_such_tracepoint_xyz", p)
        assert ei.value.command == "BPF_RAW_TRACEPOINT_OPEN"
        assert ei.value.errno == errno.ENOENT


def test_perf_event_open_errors() -> None:
    attr = PerfEventAttr()
    attr.type = PerfType.TRACEPOINT
    attr.config = 0xFFFFFFF0  # no such tracepoint id
    with pytest.raises(KernelError) as ei:
        S.perf_event_open(attr, -1, 0)
    assert ei.value.command == "PERF_EVENT_OPEN"
    assert ei.value.errno in (errno.ENOENT, errno.EINVAL)


def test_fentry_refused_under_lockdown_is_clear() -> None:
    from purebpf.btf import Btf

    btf_id = Btf.load_vmlinux().find("bpf_fentry_test1").id
    prog = encode([b.mov64_imm(0, 0), b.exit_insn()])
    try:
        fd, _ = S.prog_load(ProgType.TRACING, prog, "GPL", expected_attach_type=AttachType.TRACE_FENTRY,
                            attach_btf_id=btf_id)
    except KernelError as err:
        assert err.command == "BPF_PROG_LOAD"
        if err.errno == errno.EPERM:
            assert "CAP_BPF" in (err.hint or "")
            pytest.skip("kernel feature missing: fentry/lsm programs (kernel lockdown)")
        raise
    fd.close()


# -- transcript ---------------------------------------------------------------------------------

def test_trace_hook_records_decoded_attributes() -> None:
    records: List[S.TraceRecord] = []
    with S.tracing(records.append):
        with S.map_create(MapType.HASH, 4, 8, 1024, flags=MapFlags.NO_PREALLOC, name="flows") as fd:
            with pytest.raises(KernelError):
                S.map_update_elem(fd, u32(1), u64(1), MapUpdateFlags.EXIST)
            with _tiny_prog(name="traced") as p:
                S.prog_test_run(p, data_in=bytes(20))
            number = fd.fileno()
    assert [r.command for r in records] == ["BPF_MAP_CREATE", "BPF_MAP_UPDATE_ELEM", "BPF_PROG_LOAD",
                                           "BPF_PROG_TEST_RUN"]
    create = records[0]
    assert create.attrs["map_type"] == "HASH" and create.attrs["key_size"] == 4
    assert create.attrs["value_size"] == 8 and create.attrs["max_entries"] == 1024
    assert create.attrs["map_flags"] == "NO_PREALLOC" and create.attrs["name"] == "flows"
    assert create.result == number and create.errno is None and create.duration_ns >= 0
    assert create.format() == ('BPF_MAP_CREATE map_type=HASH key_size=4 value_size=8 max_entries=1024 '
                               f'map_flags=NO_PREALLOC name="flows" -> fd {number}')
    upd = records[1]
    assert upd.errno == errno.ENOENT and upd.result is None
    assert upd.attrs["flags"] == "EXIST"
    assert upd.format().endswith("-> error ENOENT")
    load = records[2]
    assert load.attrs["prog_type"] == "SOCKET_FILTER" and load.attrs["insn_cnt"] == 2
    assert load.attrs["name"] == "traced"
    assert load.attrs["license"] == "GPL"
    assert "insns" not in load.attrs and "log_buf" not in load.attrs  # addresses are never shown
    with S.map_create(MapType.ARRAY, 4, 4, 1) as m:
        with S.tracing(records.append):
            S.map_info(m)
        map_fd = m.fileno()
    info_rec = records.pop()
    assert info_rec.format() == f"BPF_OBJ_GET_INFO_BY_FD bpf_fd={map_fd} info_len=104 info=bpf_map_info -> 0"
    # removed: nothing more is recorded
    with S.map_create(MapType.ARRAY, 4, 4, 1) as fd2:
        pass
    assert len(records) == 4


def test_trace_records_pin_path_and_perf_events(pin_dir: Path) -> None:
    records: List[S.TraceRecord] = []
    handle = S.add_trace_hook(records.append)
    try:
        with S.map_create(MapType.ARRAY, 4, 4, 1) as fd:
            S.obj_pin(fd, str(pin_dir / "p"))
        attr = PerfEventAttr()
        attr.type = PerfType.SOFTWARE
        attr.config = PerfSwConfig.BPF_OUTPUT
        with S.perf_event_open(attr, -1, 0):
            pass
    finally:
        S.remove_trace_hook(handle)
    pin = [r for r in records if r.command == "BPF_OBJ_PIN"][0]
    assert pin.attrs["path"] == str(pin_dir / "p")
    perf_rec = [r for r in records if r.command == "PERF_EVENT_OPEN"][0]
    assert perf_rec.attrs["type"] == "SOFTWARE" and perf_rec.attrs["config"] == "BPF_OUTPUT"
    assert perf_rec.format().startswith("PERF_EVENT_OPEN type=SOFTWARE config=BPF_OUTPUT")


def test_broken_trace_hook_does_not_break_calls() -> None:
    def bad(rec: S.TraceRecord) -> None:
        raise RuntimeError("boom")

    with S.tracing(bad):
        with S.map_create(MapType.ARRAY, 4, 4, 1) as fd:
            assert S.map_lookup_elem(fd, u32(0), 4) == bytes(4)


# -- privileges -----------------------------------------------------------------------------------

def test_unprivileged_process_gets_eperm_with_hint() -> None:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv not installed")
    code = (
        "import sys\n"
        "from purebpf.syscall import map_create, prog_load\n"
        "from purebpf.errors import KernelError\n"
        "from purebpf.uapi import MapType, ProgType\n"
        "try:\n"
        "    prog_load(ProgType.XDP, bytes.fromhex('b700000000000000' '9500000000000000'), 'GPL')\n"
        "except KernelError as e:\n"
        "    print('prog', e.errno, e.command, e.hint)\n"
        "try:\n"
        "    map_create(MapType.HASH, 4, 4, 1)\n"
        "    print('map ok')\n"
        "except KernelError as e:\n"
        "    print('map', e.errno, e.command, e.hint)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                          "--bounding-set=-all", sys.executable, "-c", code],
                         capture_output=True, text=True, env=env, cwd="/")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    prog_line = [ln for ln in lines if ln.startswith("prog ")][0]
    assert prog_line.startswith(f"prog {errno.EPERM} BPF_PROG_LOAD")
    assert "CAP_BPF" in prog_line and "root" in prog_line
    disabled = Path("/proc/sys/kernel/unprivileged_bpf_disabled").read_text().strip()
    map_line = [ln for ln in lines if ln.startswith("map ")][0]
    if disabled != "0":
        assert map_line.startswith(f"map {errno.EPERM} BPF_MAP_CREATE") and "CAP_BPF" in map_line


# -- features -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bpftool_features() -> Dict[str, Any]:
    tool = shutil.which("bpftool")
    if tool is None or os.geteuid() != 0:
        pytest.skip("bpftool not installed or not root")
    res = subprocess.run([tool, "-j", "feature", "probe", "kernel"], capture_output=True, text=True, check=True)
    data: Dict[str, Any] = json.loads(res.stdout)
    return data


# bpftool 7.1 spells some types differently from the uapi enum
_BPFTOOL_MAP_NAME = {MapType.CGROUP_STORAGE: "cgroup_storage", MapType.PERCPU_CGROUP_STORAGE: "percpu_cgroup_storage"}


def test_map_type_probes_agree_with_bpftool(bpftool_features: Dict[str, Any]) -> None:
    known = bpftool_features["map_types"]
    compared = 0
    for mt in MapType:
        if mt.name != MapType(mt).name or mt == MapType.UNSPEC:
            continue
        key = f"have_{_BPFTOOL_MAP_NAME.get(mt, mt.name.lower())}_map_type"
        if key not in known:
            continue  # bpftool 7.1 predates this type
        assert F.has_map_type(mt) == known[key], mt.name
        compared += 1
    assert compared >= 28


def test_prog_type_probes_agree_with_bpftool(bpftool_features: Dict[str, Any]) -> None:
    known = bpftool_features["program_types"]
    compared = 0
    for pt in ProgType:
        key = f"have_{pt.name.lower()}_prog_type"
        if pt == ProgType.UNSPEC or key not in known:
            continue
        assert F.has_prog_type(pt) == known[key], pt.name
        compared += 1
    assert compared >= 25


def test_helper_probes_agree_with_bpftool(bpftool_features: Dict[str, Any]) -> None:
    from purebpf.insn import helper_id

    helpers = bpftool_features["helpers"]
    for prog_key, pt in (("socket_filter_available_helpers", ProgType.SOCKET_FILTER),
                         ("xdp_available_helpers", ProgType.XDP),
                         ("kprobe_available_helpers", ProgType.KPROBE)):
        listed = set(helpers[prog_key])
        for name in ("bpf_map_lookup_elem", "bpf_xdp_adjust_head", "bpf_probe_read_kernel",
                     "bpf_skb_load_bytes", "bpf_get_current_pid_tgid", "bpf_ringbuf_output"):
            assert F.has_helper(pt, helper_id(name)) == (name in listed), (pt.name, name)


@pytest.fixture(scope="module")
def libbpf() -> ctypes.CDLL:
    lib = ctypes.CDLL(ctypes.util.find_library("bpf") or "libbpf.so.1")
    for fn in ("libbpf_probe_bpf_prog_type", "libbpf_probe_bpf_map_type", "libbpf_probe_bpf_helper",
               "libbpf_num_possible_cpus"):
        getattr(lib, fn).restype = ctypes.c_int
    return lib


EOPNOTSUPP_LIBBPF = -errno.EOPNOTSUPP  # libbpf 1.1 does not know the type at all


def test_map_and_prog_type_probes_agree_with_libbpf(libbpf: ctypes.CDLL) -> None:
    compared = 0
    for mt in MapType:
        if mt.name != MapType(mt).name:
            continue
        r = libbpf.libbpf_probe_bpf_map_type(int(mt), None)
        if r == EOPNOTSUPP_LIBBPF:
            continue
        assert F.has_map_type(mt) == (r == 1), mt.name
        compared += 1
    for pt in ProgType:
        r = libbpf.libbpf_probe_bpf_prog_type(int(pt), None)
        if r == EOPNOTSUPP_LIBBPF:
            continue
        assert F.has_prog_type(pt) == (r == 1), pt.name
        compared += 1
    assert compared >= 60


def test_helper_probes_agree_with_libbpf(libbpf: ctypes.CDLL) -> None:
    """Every helper id of the 6.18 uapi for six program types."""
    from purebpf.insn import HELPER_NAMES

    ids = sorted(HELPER_NAMES)
    assert len(ids) > 200
    for pt in (ProgType.SOCKET_FILTER, ProgType.XDP, ProgType.KPROBE, ProgType.TRACEPOINT,
               ProgType.SCHED_CLS, ProgType.CGROUP_SKB):
        for hid in ids:
            if hid == 0:
                continue
            assert F.has_helper(pt, hid) == (libbpf.libbpf_probe_bpf_helper(int(pt), hid, None) == 1), \
                (pt.name, HELPER_NAMES[hid])


def test_libbpf_style_feature_probes(libbpf: ctypes.CDLL) -> None:
    helper = libbpf.libbpf_probe_bpf_helper
    assert F.has_bpf_cookie() == (helper(int(ProgType.TRACEPOINT), 174, None) == 1)
    assert F.has_probe_read_kernel() == (helper(int(ProgType.TRACEPOINT), 113, None) == 1)
    assert F.has_memcg_account() == (helper(int(ProgType.SOCKET_FILTER), 160, None) == 1)
    assert F.has_btf() and F.has_prog_bind_map() and F.has_exp_attach_type() and F.has_perf_link()
    kprobes = os.path.exists("/sys/bus/event_source/devices/kprobe/type") or any(
        os.path.exists(f"{r}/kprobe_events") for r in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"))
    if not kprobes:
        assert F.has_syscall_wrapper() is False  # libbpf needs a kprobe to tell, and so do we
    else:
        wrapped = f"__{F.syscall_prefix()}_sys_bpf" in Path("/proc/kallsyms").read_text()
        assert F.has_syscall_wrapper() == wrapped


def test_btf_kind_and_other_probes() -> None:
    # Linux 6.18 accepts every BTF kind up to ENUM64 (6.0)
    for kind in BtfKind:
        assert F.probe_btf_kind(kind) == (kind != BtfKind.UNKN), kind
    assert F.has_btf_func() and F.has_btf_func_global() and F.has_btf_datasec()
    assert F.has_btf_float() and F.has_btf_decl_tag() and F.has_btf_type_tag() and F.has_btf_enum64()
    assert F.has_global_data() and F.has_mmapable_maps() and F.has_prog_name()
    assert F.has_bpf_to_bpf_with_tail_calls()
    assert not F.has_prog_type(999)
    assert not F.has_helper(ProgType.SOCKET_FILTER, 100000)


def test_probes_are_cached() -> None:
    F.clear_cache()
    records: List[S.TraceRecord] = []
    with S.tracing(records.append):
        F.has_global_data()
        first = len(records)
        F.has_global_data()
    assert first > 0 and len(records) == first


def test_possible_cpus_match_libbpf(libbpf: ctypes.CDLL) -> None:
    assert F.num_possible_cpus() == libbpf.libbpf_num_possible_cpus()
    assert F.possible_cpus() == F.parse_cpu_list(Path("/sys/devices/system/cpu/possible").read_text())


def test_kernel_version_matches_uname() -> None:
    release = subprocess.run(["uname", "-r"], capture_output=True, text=True, check=True).stdout
    major, minor, patch = (int(x) for x in release.split("-")[0].split(".")[:3])
    if not Path("/proc/version_signature").exists() and "Debian" not in os.uname().version:
        assert F.kernel_version() == (major << 16) + (minor << 8) + min(patch, 255)
    assert F.kernel_version() >> 16 == major


def test_no_hook_means_no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without hooks the choke point neither decodes attributes nor times calls."""
    from purebpf.syscall import trace

    def boom(*args: object, **kwargs: object) -> Any:
        raise AssertionError("decoded without a hook")

    monkeypatch.setattr(trace, "_hooks", [])
    monkeypatch.setattr(trace, "decode_attr", boom)
    monkeypatch.setattr(trace, "emit", boom)
    with S.map_create(MapType.HASH, 4, 4, 4) as fd:
        S.map_update_elem(fd, u32(1), u32(2))
        assert S.map_lookup_elem(fd, u32(1), 4) == u32(2)
        with pytest.raises(KernelError):
            S.map_update_elem(fd, u32(1), u32(2), MapUpdateFlags.NOEXIST)


def test_element_calls_show_key_and_value_in_transcript() -> None:
    records: List[S.TraceRecord] = []
    with S.map_create(MapType.HASH, 4, 4, 4) as fd:
        with S.tracing(records.append):
            S.map_update_elem(fd, u32(0x01020304), u32(7))
            S.map_lookup_elem(fd, u32(0x01020304), 4)
        number = fd.fileno()
    upd, look = records
    key_hex = u32(0x01020304).hex()
    assert upd.format() == f"BPF_MAP_UPDATE_ELEM map_fd={number} key={key_hex} value={u32(7).hex()} -> 0"
    assert look.format() == f"BPF_MAP_LOOKUP_ELEM map_fd={number} key={key_hex} value_size=4 -> 0"


@pytest.mark.parametrize("args,kwargs,needle", [
    ((MapType.HASH, 0, 4, 1), {}, "key_size must be non-zero for HASH"),
    ((MapType.QUEUE, 4, 4, 1), {}, "key_size must be 0 for QUEUE"),
    ((MapType.ARRAY, 8, 4, 1), {}, "4-byte key"),
    ((MapType.HASH, 4, 0, 1), {}, "value_size must be non-zero"),
    ((MapType.HASH, 4, 4, 0), {}, "max_entries must be non-zero"),
    ((MapType.RINGBUF, 0, 0, 1000), {}, "power of 2"),
    ((MapType.LPM_TRIE, 8, 8, 1), {}, "NO_PREALLOC"),
    ((MapType.HASH_OF_MAPS, 4, 4, 1), {}, "inner_map_fd"),
    ((MapType.HASH, 4, 4, 1), {"flags": MapFlags.MMAPABLE}, "MMAPABLE"),
    ((MapType.HASH, 4, 4, 1), {"name": "bad name!"}, "map name"),
])
def test_map_create_einval_names_the_attribute(args: Tuple[Any, ...], kwargs: Dict[str, Any],
                                                needle: str) -> None:
    with pytest.raises(KernelError) as ei:
        S.map_create(*args, **kwargs)
    assert ei.value.errno == errno.EINVAL
    assert needle in (ei.value.hint or ""), ei.value.hint


def test_prog_load_einval_names_the_attribute() -> None:
    trivial = encode([b.mov64_imm(0, 0), b.exit_insn()])
    with pytest.raises(KernelError) as ei:
        S.prog_load(ProgType.CGROUP_SOCK_ADDR, trivial, "GPL")
    assert ei.value.errno == errno.EINVAL and "expected_attach_type" in (ei.value.hint or "")
    with pytest.raises(KernelError) as ei:
        S.prog_load(ProgType.SOCKET_FILTER, trivial, "GPL", name="a-b")
    assert ei.value.errno == errno.EINVAL and "program name" in (ei.value.hint or "")


# -- attach points: tcx, cgroups, task fd query ---------------------------------------------------

TCX_NEXT = 0xFFFFFFFF  # -1: continue with the next program / the stack


def test_tcx_link_on_loopback_and_query() -> None:
    """A pass-through tc program on lo's ingress through a tcx link (multi-attach,
    so other users of lo are unaffected)."""
    prog = encode([b.mov64_imm(0, -1), b.exit_insn()])
    fd, _ = S.prog_load(ProgType.SCHED_CLS, prog, "GPL", name="tcx_pass",
                        expected_attach_type=AttachType.TCX_INGRESS)
    with fd:
        before = S.prog_query(1, AttachType.TCX_INGRESS)
        with pytest.raises(KernelError) as ei:
            S.link_create(fd, 1, AttachType.TCX_INGRESS, expected_revision=before.revision + 100)
        assert ei.value.errno == errno.ESTALE and ei.value.command == "BPF_LINK_CREATE"
        link = None
        for _attempt in range(20):  # another user of lo may bump the revision meanwhile
            try:
                link = S.link_create(fd, 1, AttachType.TCX_INGRESS, expected_revision=before.revision)
                break
            except KernelError as err:
                if err.errno != errno.ESTALE:
                    raise
                before = S.prog_query(1, AttachType.TCX_INGRESS)
        assert link is not None
        with link:
            li = S.link_info(link)
            assert li.type == 11  # BPF_LINK_TYPE_TCX
            assert S.link_target_name(link) == ""
            assert (li.tcx.ifindex, li.tcx.attach_type) == (1, AttachType.TCX_INGRESS)
            after = S.prog_query(1, AttachType.TCX_INGRESS)
            assert S.prog_info(fd).id in after.prog_ids
            assert after.revision > before.revision
        assert S.prog_info(fd).id not in S.prog_query(1, AttachType.TCX_INGRESS).prog_ids


@pytest.fixture
def cgroup_dir() -> Iterator[int]:
    root = Path("/sys/fs/cgroup/unified")
    if not (root / "cgroup.procs").exists():
        root = Path("/sys/fs/cgroup")
    if not (root / "cgroup.procs").exists():
        pytest.skip("kernel feature missing: cgroup v2 hierarchy")
    path = root / f"purebpf-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    dfd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield dfd
    finally:
        os.close(dfd)
        path.rmdir()


def _skb_prog(ret: int, name: str) -> S.FD:
    fd, _ = S.prog_load(ProgType.CGROUP_SKB, encode([b.mov64_imm(0, ret), b.exit_insn()]), "GPL", name=name,
                        expected_attach_type=AttachType.CGROUP_INET_INGRESS)
    return fd


def test_cgroup_prog_attach_query_detach(cgroup_dir: int) -> None:
    with _skb_prog(1, "allow") as p:
        S.prog_attach(p, cgroup_dir, AttachType.CGROUP_INET_INGRESS, 2)  # BPF_F_ALLOW_MULTI
        q = S.prog_query(cgroup_dir, AttachType.CGROUP_INET_INGRESS)
        assert q.prog_ids == [S.prog_info(p).id] and q.attach_flags == 2
        with _skb_prog(1, "allow2") as p2, _skb_prog(1, "allow3") as p3:
            S.prog_attach(p2, cgroup_dir, AttachType.CGROUP_INET_INGRESS, 2)
            S.prog_attach(p3, cgroup_dir, AttachType.CGROUP_INET_INGRESS, 2)
            # a buffer too small for three ids: the query grows it
            q3 = S.prog_query(cgroup_dir, AttachType.CGROUP_INET_INGRESS, max_progs=1)
            assert q3.prog_ids == [S.prog_info(x).id for x in (p, p2, p3)]
            S.prog_detach(cgroup_dir, AttachType.CGROUP_INET_INGRESS, p2)
            S.prog_detach(cgroup_dir, AttachType.CGROUP_INET_INGRESS, p3)
        S.prog_detach(cgroup_dir, AttachType.CGROUP_INET_INGRESS, p)
        assert S.prog_query(cgroup_dir, AttachType.CGROUP_INET_INGRESS).prog_ids == []


def test_cgroup_link_update_and_detach(cgroup_dir: int) -> None:
    with _skb_prog(1, "first") as p1, _skb_prog(1, "second") as p2:
        with S.link_create(p1, cgroup_dir, AttachType.CGROUP_INET_INGRESS) as link:
            li = S.link_info(link)
            assert li.type == 3 and li.prog_id == S.prog_info(p1).id  # BPF_LINK_TYPE_CGROUP
            assert li.cgroup.attach_type == AttachType.CGROUP_INET_INGRESS
            S.link_update(link, p2, old_prog_fd=p1)
            assert S.link_info(link).prog_id == S.prog_info(p2).id
            with pytest.raises(KernelError) as ei:  # p1 is no longer the program
                S.link_update(link, p2, old_prog_fd=p1)
            assert ei.value.errno == errno.EPERM or ei.value.errno == errno.EINVAL
            with S.link_get_fd_by_id(li.id) as again:
                assert S.link_info(again).id == li.id
            assert li.id in _all_ids(S.link_get_next_id)
            S.link_detach(link)
            assert S.prog_query(cgroup_dir, AttachType.CGROUP_INET_INGRESS).prog_ids == []


def test_task_fd_query_names_raw_tracepoint() -> None:
    with _tiny_prog(prog_type=ProgType.RAW_TRACEPOINT, name="rawq") as p:
        with S.raw_tracepoint_open("sys_exit", p) as link:
            res = S.task_fd_query(os.getpid(), link.fileno())
            assert res.prog_id == S.prog_info(p).id
            assert res.fd_type == 0  # BPF_FD_TYPE_RAW_TRACEPOINT
            assert res.name == "sys_exit"


def test_leak_check_sees_open_bpf_fds() -> None:
    """The autouse leak check is not vacuous: an open map fd shows up in it."""
    before = _bpf_fds()
    fd = S.map_create(MapType.ARRAY, 4, 4, 1)
    try:
        new = _bpf_fds() - before
        assert [n for n, _ in new] == [fd.fileno()]
        assert _fdinfo_id(fd.fileno()) == ("map", S.map_info(fd).id)
    finally:
        fd.close()


def test_prog_load_with_func_and_line_info() -> None:
    """func_info / line_info records reach the kernel: it reports their counts and our BTF."""
    # [1] int; [2] FUNC_PROTO int(void); [3] FUNC "main" global -> [2]
    strings = b"\0int\0main\0prog.c\0return 7;\0"
    types = (F._int(1) + F._t(0, BtfKind.FUNC_PROTO, 0, 1) + F._t(5, BtfKind.FUNC, 1, 2))
    btf_fd, _ = S.btf_load(F._native(F.raw_btf(types, strings)))
    insns = encode([b.mov64_imm(0, 7), b.exit_insn()])
    func_info = struct.pack("=II", 0, 3)  # struct bpf_func_info { insn_off; type_id; }
    # struct bpf_line_info { insn_off; file_name_off; line_off; line_col (line << 10 | col); }
    line_info = struct.pack("=IIII", 0, 10, 17, (3 << 10) | 5)
    with btf_fd:
        fd, _ = S.prog_load(ProgType.SOCKET_FILTER, insns, "GPL", name="main", prog_btf_fd=btf_fd,
                            func_info=func_info, func_info_rec_size=8, line_info=line_info,
                            line_info_rec_size=16)
        with fd:
            info = S.prog_info(fd)
            assert (info.nr_func_info, info.nr_line_info) == (1, 1)
            assert (info.func_info_rec_size, info.line_info_rec_size) == (8, 16)
            assert info.btf_id == S.btf_info(btf_fd).id
            assert S.prog_test_run(fd, data_in=bytes(16)).retval == 7


def test_e2big_names_the_last_attribute_set() -> None:
    """Non-zero bytes past what the kernel knows are refused with E2BIG; the hint
    names the field.  (A BPF_LINK_DETACH attr padded with a set word beyond
    ``link_fd`` stands in for an attribute from the future.)"""

    class FutureLinkDetach(ctypes.Structure):
        _fields_ = [("link_fd", ctypes.c_uint32), ("pad", ctypes.c_uint8 * 248),
                    ("from_the_future", ctypes.c_uint32)]

    from purebpf.uapi import BpfCmd

    attr = FutureLinkDetach()
    attr.link_fd = 0
    attr.from_the_future = 1
    with pytest.raises(KernelError) as ei:
        S.bpf(BpfCmd.LINK_DETACH, attr)
    assert ei.value.errno == errno.E2BIG and ei.value.command == "BPF_LINK_DETACH"
    assert "from_the_future (offset 252)" in (ei.value.hint or "")


def test_feature_summary_lists_every_probe() -> None:
    summ = F.summary()
    for name in F._NO_ARG_PROBES:
        assert summ[name] == getattr(F, name)()
    assert summ["kernel_version"] == F.kernel_version()
    assert summ["num_possible_cpus"] == F.num_possible_cpus()
    assert set(F._NO_ARG_PROBES) <= set(F.__all__)


def test_memlock_rlimit_left_alone_with_memcg_accounting() -> None:
    import resource

    before = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    changed = F.bump_memlock_rlimit()
    if F.has_memcg_account():
        assert changed is False
        assert resource.getrlimit(resource.RLIMIT_MEMLOCK) == before
    else:
        assert resource.getrlimit(resource.RLIMIT_MEMLOCK) == (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
