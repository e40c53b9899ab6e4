"""Attach tests: every attach kind fires for real, closing stops it, pins,
updates, bad targets.

BPF programs are built here with clang-19 from tests/helpers/*.bpf.c and a
uprobe target with gcc from tests/helpers/uprobe_target.c.  Oracles: the
kernel (counters the programs keep, link ids), bpftool (link show), objdump
(file offsets of symbols), /proc (pids, comm).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Set

import pytest

from purebpf.errors import AttachError, KernelError, NotSupportedError, StateError
from purebpf.link import Link, attach_kprobe, attach_tracepoint, attach_uprobe, attach_xdp
from purebpf.link.uprobe import parse_uprobe_target, resolve_symbol_offset
from purebpf.object import Object, open_object
from purebpf.syscall import commands

HELPERS = Path(__file__).resolve().parent / "helpers"
CLANG = "clang-19"
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (kernel tests)")


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"test tool {tool} is not installed")
    return path


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    """Compile the uprobe target (PIE and non-PIE) and the BPF test objects."""
    d = tmp_path_factory.mktemp("link")
    gcc, clang = _need("gcc"), _need(CLANG)
    target = d / "uprobe_target"
    subprocess.run([gcc, "-O1", "-o", str(target), str(HELPERS / "uprobe_target.c")], check=True)
    nopie = d / "uprobe_target_nopie"
    subprocess.run([gcc, "-O1", "-no-pie", "-o", str(nopie), str(HELPERS / "uprobe_target.c")], check=True)
    bpf_flags = [clang, "-O2", "-g", "-target", "bpf", "-I", str(d)]
    progs = d / "link_progs.bpf.o"
    subprocess.run(bpf_flags + [f'-DUPROBE_TARGET="{target}"', "-c", str(HELPERS / "link_progs.bpf.c"),
                                "-o", str(progs)], check=True)
    vmlinux_h = subprocess.run(["python3", "-m", "purebpf", "btf", "dump", "/sys/kernel/btf/vmlinux",
                                "--format", "c"], check=True, capture_output=True).stdout
    (d / "vmlinux.h").write_bytes(vmlinux_h)
    it = d / "link_iter.bpf.o"
    subprocess.run(bpf_flags + ["-c", str(HELPERS / "link_iter.bpf.c"), "-o", str(it)], check=True)
    it_map = d / "link_iter_map.bpf.o"
    subprocess.run(bpf_flags + ["-c", str(HELPERS / "link_iter_map.bpf.c"), "-o", str(it_map)], check=True)
    fentry = d / "link_fentry.bpf.o"
    subprocess.run(bpf_flags + ["-c", str(HELPERS / "link_fentry.bpf.c"), "-o", str(fentry)], check=True)
    return {"dir": d, "target": target, "nopie": nopie, "progs": progs, "iter": it, "iter_map": it_map, "fentry": fentry}


def _link_ids() -> Set[int]:
    ids: Set[int] = set()
    cur = 0
    while True:
        nxt = commands.link_get_next_id(cur)
        if nxt is None:
            return ids
        ids.add(nxt)
        cur = nxt


def _fds() -> Set[str]:
    return set(os.listdir("/proc/self/fd"))


#: ids of programs the tests loaded: a kernel link to one of them that
#: outlives its test is a leak (other processes' links are not ours to judge)
OUR_PROG_IDS: Set[int] = set()


def _own(o: Object) -> Object:
    OUR_PROG_IDS.update(p.id for p in o.programs.values())
    return o


def _our_links(new_ids: Set[int]) -> List[Any]:
    """Links among ``new_ids`` whose program is one of ours (bpftool as oracle)."""
    if not new_ids:
        return []
    out = subprocess.run([_need("bpftool"), "-j", "link", "show"], check=True, capture_output=True,
                         text=True).stdout
    return [lk for lk in json.loads(out or "[]") if lk["id"] in new_ids and lk["prog_id"] in OUR_PROG_IDS]


@pytest.fixture
def no_leaks() -> Iterator[None]:
    """The test leaves no fd open and no kernel link of its programs behind
    (link ids walked with BPF_LINK_GET_NEXT_ID before and after)."""
    fds, links = _fds(), _link_ids()
    yield
    assert _our_links(_link_ids() - links) == []
    assert _fds() - fds == set()


@pytest.fixture
def obj(build: Dict[str, Path], no_leaks: None) -> Iterator[Object]:
    oo = open_object(str(build["progs"]))
    oo.rodata["target_tgid"] = os.getpid()
    with _own(oo.load()) as o:
        yield o


def _wait_for(get: Callable[[], int], above: int, trigger: Callable[[], Any], rounds: int = 2000) -> int:
    """Trigger until ``get()`` exceeds ``above`` (bounded; no time limit asserted)."""
    value = get()
    for _ in range(rounds):
        if value > above:
            return value
        trigger()
        value = get()
    return value


def _getpids(n: int = 50) -> None:
    for _ in range(n):
        os.getpid()


def _switch() -> None:
    time.sleep(0.0005)


def _run_target(target: Path, n: int) -> None:
    subprocess.run([str(target), str(n)], check=True, stdout=subprocess.DEVNULL)


# -- pure: section syntax and symbol offsets ----------------------------------------


def test_parse_uprobe_target() -> None:
    assert parse_uprobe_target("/bin/bash:readline") == ("/bin/bash", "readline", 0)
    assert parse_uprobe_target("/lib/libc.so.6:malloc+0x10") == ("/lib/libc.so.6", "malloc", 16)
    assert parse_uprobe_target("/bin/x:+0x1234") == ("/bin/x", None, 0x1234)
    with pytest.raises(AttachError):
        parse_uprobe_target("no-colon")


def _objdump_offset(binary: Path, symbol: str) -> int:
    out = subprocess.run([_need("objdump"), "-d", "-F", f"--disassemble={symbol}", str(binary)],
                         check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if f"<{symbol}> (File Offset:" in line and not line.startswith(" "):
            return int(line.split("File Offset:")[1].strip(" ):"), 16)
    raise AssertionError(f"objdump does not show {symbol} in {binary}")


@pytest.mark.parametrize("which", ["target", "nopie"])
def test_symbol_file_offset_matches_objdump(build: Dict[str, Path], which: str) -> None:
    binary = build[which]
    assert resolve_symbol_offset(str(binary), "target_func") == _objdump_offset(binary, "target_func")


def test_dynsym_file_offset_matches_objdump(build: Dict[str, Path]) -> None:
    """A stripped binary keeps only .dynsym: the offset must come from there."""
    d = build["dir"]
    exported = d / "uprobe_target_rdynamic"
    subprocess.run([_need("gcc"), "-O1", "-rdynamic", "-o", str(exported), str(HELPERS / "uprobe_target.c")],
                   check=True)
    stripped = d / "uprobe_target_stripped"
    subprocess.run([_need("strip"), "--strip-all", "-o", str(stripped), str(exported)], check=True)
    syms = subprocess.run([_need("llvm-readelf-19"), "-s", str(stripped)], capture_output=True, text=True,
                          check=True).stdout
    assert ".symtab" not in syms and "target_func" in syms
    assert resolve_symbol_offset(str(stripped), "target_func") == _objdump_offset(exported, "target_func")


# -- each kind fires, and stops when closed ------------------------------------------


def _fires_and_stops(obj: Object, prog: str, counter: str, trigger: Callable[[], Any],
                     **kwargs: Any) -> Dict[str, Any]:
    link = obj.programs[prog].attach(**kwargs)
    try:
        hits = _wait_for(lambda: int(obj.bss[counter]), 0, trigger)
        assert hits > 0, f"{prog} never fired"
        info = link.info()
        assert info["prog_id"] == obj.programs[prog].id
        assert link.id in _link_ids()
    finally:
        link.close()
    assert link.closed
    before = int(obj.bss[counter])
    for _ in range(20):
        trigger()
    assert int(obj.bss[counter]) == before, f"{prog} still fires after close"
    return info


@root_only
def test_tp_btf_sched_switch(obj: Object) -> None:
    info = _fires_and_stops(obj, "on_switch", "tp_btf_hits", _switch)
    assert info["type"] in ("TRACING", "RAW_TRACEPOINT")
    assert info.get("target_name", "sched_switch") == "sched_switch"


@root_only
def test_raw_tp_sys_enter(obj: Object) -> None:
    info = _fires_and_stops(obj, "on_sys_enter", "raw_tp_hits", _getpids)
    assert info["type"] == "RAW_TRACEPOINT" and info["target_name"] == "sys_enter"


@root_only
def test_tracepoint_getpid_counts_exactly(obj: Object) -> None:
    with obj.programs["on_getpid"].attach() as link:
        assert link.target == "syscalls/sys_enter_getpid"
        start = int(obj.bss["tp_hits"])
        for _ in range(1000):
            os.getpid()
        assert int(obj.bss["tp_hits"]) - start == 1000
        info = link.info()
        assert info["type"] == "PERF_EVENT"
        assert info["perf_event"]["perf_event_type"] == "TRACEPOINT"
        assert info["target_name"] == "sys_enter_getpid"
    _fires_and_stops(obj, "on_getpid", "tp_hits", _getpids)


@root_only
def test_uprobe_and_uretprobe_count_calls(obj: Object, build: Dict[str, Path]) -> None:
    with obj.programs["on_target_func"].attach() as up, obj.programs["on_target_ret"].attach() as ret:
        assert up.kind == "uprobe" and ret.kind == "uretprobe"
        _run_target(build["target"], 7)
        assert int(obj.bss["uprobe_hits"]) == 7
        assert int(obj.bss["uretprobe_hits"]) == 7
        info = up.info()
        assert info["perf_event"]["perf_event_type"] == "UPROBE"
        assert info["perf_event"]["offset"] == _objdump_offset(build["target"], "target_func")
        assert info["target_name"] == str(build["target"])
        assert ret.info()["perf_event"]["perf_event_type"] == "URETPROBE"
    _run_target(build["target"], 3)
    assert int(obj.bss["uprobe_hits"]) == 7, "uprobe still fires after close"


@root_only
def test_uprobe_explicit_non_pie_binary(obj: Object, build: Dict[str, Path]) -> None:
    prog = obj.programs["on_target_func"]
    with attach_uprobe(prog, str(build["nopie"]), "target_func"):
        _run_target(build["nopie"], 4)
        assert int(obj.bss["uprobe_hits"]) == 4


@root_only
def test_uprobe_pid_filter(obj: Object, build: Dict[str, Path]) -> None:
    procs = [subprocess.Popen([str(build["target"]), "0", "wait"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        watched, other = procs
        with attach_uprobe(obj.programs["on_target_func"], str(build["target"]), "target_func",
                           pid=watched.pid):
            watched.communicate("5\n")
            other.communicate("9\n")
            assert watched.returncode == 0 and other.returncode == 0
            assert int(obj.bss["uprobe_hits"]) == 5, "the other process was counted too"
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()


@root_only
def test_perf_event_sampling_cpu0(obj: Object) -> None:
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {0})
    try:
        def busy() -> None:
            x = 0
            for i in range(20000):
                x += i
        _fires_and_stops(obj, "on_sample", "perf_hits", busy, cpu=0, sample_period=100_000)
    finally:
        os.sched_setaffinity(0, old)


@root_only
def test_perf_event_needs_cpu(obj: Object) -> None:
    with pytest.raises(AttachError, match="cpu"):
        obj.programs["on_sample"].attach()


@root_only
def test_iter_task_lists_this_process(build: Dict[str, Path], no_leaks: None) -> None:
    with _own(open_object(str(build["iter"])).load()) as it:
        with it.programs["dump_task"].attach() as link:
            assert link.info()["type"] == "ITER"
            text = link.read_iter().decode()
            again = link.read_iter().decode()
    comm = Path("/proc/self/comm").read_text().strip()
    rows = [line.split(" ", 2) for line in text.splitlines()]
    assert [str(os.getpid()), str(os.getpid()), comm] in rows
    # libbpf's reading of the same iterator (bpftool iter pin + read) lists the same kernel threads
    pin = f"/sys/fs/bpf/purebpf_test_iter_{os.getpid()}"
    subprocess.run([_need("bpftool"), "iter", "pin", str(build["iter"]), pin], check=True)
    try:
        with open(pin) as f:
            oracle = f.read()
    finally:
        os.unlink(pin)
    kthreads = {line for line in oracle.splitlines() if line.startswith(("2 2 ", "3 3 "))}
    assert kthreads and kthreads <= set(text.splitlines())
    assert any(line.startswith(f"{os.getpid()} ") for line in again.splitlines())


@root_only
def test_attach_all_and_object_close(build: Dict[str, Path], no_leaks: None) -> None:
    before = _link_ids()
    oo = open_object(str(build["progs"]))
    oo.rodata["target_tgid"] = os.getpid()
    with _own(oo.load()) as o:
        links = o.attach_all()
        assert sorted(links) == ["on_getpid", "on_switch", "on_sys_enter", "on_target_ret", "on_target_func"] \
            or set(links) == {"on_getpid", "on_switch", "on_sys_enter", "on_target_ret", "on_target_func"}
        assert {lk.id for lk in links.values()} <= _link_ids() - before
        assert len(_our_links(_link_ids() - before)) == 5
        _getpids(10)
        assert int(o.bss["tp_hits"]) == 10
    assert all(lk.closed for lk in links.values())
    assert not {lk.id for lk in links.values()} & _link_ids()


# -- pin / unpin, bpftool oracle, update, detach ----------------------------------------


def _bpftool_link(*args: str) -> Any:
    out = subprocess.run([_need("bpftool"), "-j", "link", "show", *args], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


@root_only
def test_pin_unpin_and_from_pin(obj: Object, tmp_path: Path) -> None:
    path = f"/sys/fs/bpf/purebpf_test_link_{os.getpid()}"
    link = obj.programs["on_getpid"].attach()
    try:
        link.pin(path)
        shown = _bpftool_link("pinned", path)
        assert shown["id"] == link.id
        assert shown["prog_id"] == obj.programs["on_getpid"].id
        assert shown["type"] == "perf_event"
        with Link.from_pin(path) as again:
            assert again.id == link.id
        link.close()
        # the pin keeps the attachment alive
        start = int(obj.bss["tp_hits"])
        _getpids(10)
        assert int(obj.bss["tp_hits"]) - start == 10
        link.unpin(path)
        assert not os.path.exists(path)
    finally:
        link.close()
        if os.path.exists(path):
            os.unlink(path)
    # removing the last pin releases the link asynchronously (bpffs frees the
    # inode after an RCU grace period): poll, bounded, until it stops firing
    stopped = False
    for _ in range(2000):
        start = int(obj.bss["tp_hits"])
        _getpids(10)
        if int(obj.bss["tp_hits"]) == start:
            stopped = True
            break
        time.sleep(0.001)
    assert stopped, "the link still fires after unpin and close"
    with pytest.raises(StateError):
        link.pin(path)


@root_only
def test_xdp_update_and_detach(obj: Object) -> None:
    with attach_xdp(obj.programs["pass"], "lo") as link:
        info = link.info()
        assert info["type"] == "XDP" and info["xdp"]["ifindex"] == 1
        assert _bpftool_link("id", str(link.id))["prog_id"] == obj.programs["pass"].id
        link.update(obj.programs["pass2"])
        assert link.info()["prog_id"] == obj.programs["pass2"].id
        assert _bpftool_link("id", str(link.id))["prog_id"] == obj.programs["pass2"].id
        with pytest.raises(AttachError):  # BPF_F_REPLACE with the wrong old program
            link.update(obj.programs["pass"], old=obj.programs["pass"])
        link.detach()
        assert link.info()["prog_id"] == obj.programs["pass2"].id
        ip = subprocess.run(["ip", "-d", "link", "show", "lo"], capture_output=True, text=True).stdout
        assert "xdp" not in ip.split("\n", 1)[0]


@root_only
def test_update_refused_for_tracepoint_link(obj: Object) -> None:
    with obj.programs["on_getpid"].attach() as link:
        with pytest.raises(AttachError, match="syscalls/sys_enter_getpid"):
            link.update(obj.programs["on_sys_enter"])


# -- bad targets ------------------------------------------------------------------


@root_only
def test_missing_tracepoint(obj: Object) -> None:
    with pytest.raises(AttachError) as ei:
        attach_tracepoint(obj.programs["on_getpid"], "syscalls", "sys_enter_nope")
    assert ei.value.errno == errno.ENOENT
    assert ei.value.target == "syscalls/sys_enter_nope"
    assert "syscalls/sys_enter_nope" in str(ei.value)


@root_only
def test_missing_raw_tracepoint(obj: Object) -> None:
    with pytest.raises(AttachError) as ei:
        obj.programs["on_sys_enter"].attach(name="no_such_tracepoint_xyz")
    assert ei.value.target == "no_such_tracepoint_xyz"


@root_only
def test_missing_symbol(obj: Object, build: Dict[str, Path]) -> None:
    with pytest.raises(AttachError) as ei:
        attach_uprobe(obj.programs["on_target_func"], str(build["target"]), "no_such_function")
    assert "no_such_function" in str(ei.value) and str(build["target"]) in str(ei.value)


@root_only
def test_missing_binary(obj: Object, tmp_path: Path) -> None:
    with pytest.raises(AttachError) as ei:
        attach_uprobe(obj.programs["on_target_func"], str(tmp_path / "nope"), "main")
    assert str(tmp_path / "nope") in str(ei.value)


@root_only
def test_nonexistent_pid(obj: Object, build: Dict[str, Path]) -> None:
    p = subprocess.Popen(["true"])
    p.wait()  # a pid that existed and is gone (reaped)
    with pytest.raises(AttachError) as ei:
        attach_uprobe(obj.programs["on_target_func"], str(build["target"]), "target_func", pid=p.pid)
    assert str(p.pid) in str(ei.value)


@root_only
def test_wrong_program_type(obj: Object) -> None:
    with pytest.raises(AttachError) as ei:
        attach_tracepoint(obj.programs["pass"], "syscalls", "sys_enter_getpid")
    assert "XDP" in str(ei.value) and "syscalls/sys_enter_getpid" in str(ei.value)
    with pytest.raises(AttachError, match="XDP"):
        obj.programs["pass"].attach()  # no interface given: nothing says where


@root_only
def test_kprobe_error_names_missing_feature(obj: Object) -> None:
    if os.path.isdir("/sys/bus/event_source/devices/kprobe"):
        with attach_kprobe(obj.programs["on_kprobe"], "do_nanosleep") as link:
            assert link.info()["perf_event"]["perf_event_type"] == "KPROBE"
        return
    with pytest.raises(AttachError) as ei:
        attach_kprobe(obj.programs["on_kprobe"], "do_nanosleep")
    assert "CONFIG_KPROBES" in str(ei.value) and "do_nanosleep" in str(ei.value)


@root_only
def test_kprobe_fires(obj: Object) -> None:
    if not os.path.isdir("/sys/bus/event_source/devices/kprobe"):
        pytest.skip("kernel feature missing: kprobes (CONFIG_KPROBES=n)")
    with attach_kprobe(obj.programs["on_kprobe"], "do_nanosleep"):
        time.sleep(0.001)


@root_only
def test_fentry(build: Dict[str, Path], no_leaks: None) -> None:
    oo = open_object(str(build["fentry"]))
    try:
        o = oo.load()
    except KernelError as exc:
        if exc.errno == errno.EPERM:
            pytest.skip("kernel feature missing: fentry/lsm programs (kernel lockdown)")
        raise
    with _own(o):
        with o.programs["on_nanosleep"].attach() as link:
            assert link.info()["type"] == "TRACING"
            _wait_for(lambda: int(o.bss["fentry_hits"]), 0, _switch)
            assert int(o.bss["fentry_hits"]) > 0


# -- legacy path, detach, tcx -----------------------------------------------------------


@root_only
def test_tracepoint_legacy_ioctl_fallback(obj: Object, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel without perf links says EINVAL to BPF_LINK_CREATE(BPF_PERF_EVENT):
    the program is then set with PERF_EVENT_IOC_SET_BPF on the real perf event."""
    real = commands.link_create

    def no_perf_links(prog_fd: Any, target_fd: int, attach_type: Any, **kw: Any) -> Any:
        if int(attach_type) == 41:  # BPF_PERF_EVENT
            raise KernelError(errno.EINVAL, "BPF_LINK_CREATE")
        return real(prog_fd, target_fd, attach_type, **kw)

    monkeypatch.setattr(commands, "link_create", no_perf_links)
    before = _link_ids()
    with obj.programs["on_getpid"].attach() as link:
        assert link.legacy and link.perf_fd is not None
        assert _our_links(_link_ids() - before) == []  # no BPF link: the perf event carries it
        start = int(obj.bss["tp_hits"])
        _getpids(100)
        assert int(obj.bss["tp_hits"]) - start == 100
        with pytest.raises(StateError):
            link.pin("/sys/fs/bpf/never")
    start = int(obj.bss["tp_hits"])
    _getpids(100)
    assert int(obj.bss["tp_hits"]) == start


@root_only
def test_detach_where_the_kernel_has_none(obj: Object) -> None:
    with obj.programs["on_getpid"].attach() as link:
        try:
            link.detach()
        except NotSupportedError as exc:
            assert "perf_event" in str(exc) or "tracepoint" in str(exc)
        else:  # a kernel that can detach perf links: it must stop firing
            start = int(obj.bss["tp_hits"])
            _getpids(10)
            assert int(obj.bss["tp_hits"]) == start


@root_only
def test_tcx_ingress_on_lo(obj: Object) -> None:
    import socket

    from purebpf.link import attach_tcx

    try:
        link = attach_tcx(obj.programs["on_ingress"], "lo")
    except AttachError as exc:
        if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):
            pytest.skip("kernel feature missing: tcx links (Linux 6.6)")
        raise
    with link:
        info = link.info()
        assert info["type"] == "TCX" and info["tcx"]["ifindex"] == socket.if_nametoindex("lo")
        shown = _bpftool_link("id", str(link.id))
        assert shown["prog_id"] == obj.programs["on_ingress"].id
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            rx.bind(("127.0.0.1", 0))
            for _ in range(5):
                tx.sendto(b"x", rx.getsockname())
                rx.recv(16)
        assert int(obj.bss["tcx_hits"]) >= 5


@root_only
def test_iter_map_elem_reads_map(build: Dict[str, Path], no_leaks: None) -> None:
    try:
        loaded = open_object(str(build["iter_map"])).load()
    except KernelError as exc:
        if exc.errno != errno.EPERM:
            raise
        # libbpf is refused the same way (bpftool prog loadall): the kernel's
        # lockdown forbids this iterator target, as it does fentry
        pytest.skip("kernel feature missing: bpf_map_elem iterators (kernel lockdown)")
    with _own(loaded) as it:
        numbers = it.maps["numbers"]
        want = {k: k * k + 7 for k in range(10)}
        for k, v in want.items():
            numbers[k.to_bytes(4, "little")] = v.to_bytes(8, "little")
        with it.programs["dump_numbers"].attach(map_fd=numbers) as link:
            assert link.info()["iter"]["map"]["map_id"] == numbers.info().id
            text = link.read_iter().decode()
    got: Dict[int, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition("=")
        got[int(key)] = int(value)
    assert got == want


@root_only
def test_uprobe_at_raw_offset(obj: Object, build: Dict[str, Path]) -> None:
    off = _objdump_offset(build["target"], "target_func")
    with attach_uprobe(obj.programs["on_target_func"], str(build["target"]), offset=off) as link:
        assert link.target == f"{build['target']}:+{off:#x}"
        _run_target(build["target"], 3)
        assert int(obj.bss["uprobe_hits"]) == 3


@root_only
def test_link_use_after_close(obj: Object) -> None:
    link = obj.programs["on_sys_enter"].attach()
    link.close()
    link.close()  # idempotent
    with pytest.raises(StateError):
        link.info()
    with pytest.raises(StateError):
        link.update(obj.programs["on_sys_enter"])


def test_symbols_of_bad_files(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\x7fELF" + bytes(range(256)) * 4)
    for path in (garbage, tmp_path / "missing"):
        with pytest.raises(AttachError) as ei:
            resolve_symbol_offset(str(path), "main")
        assert str(path) in str(ei.value)
    text = tmp_path / "text"
    text.write_text("not an ELF file\n")
    with pytest.raises(AttachError):
        resolve_symbol_offset(str(text), "main")


@root_only
def test_iter_bpf_map_lists_our_maps(build: Dict[str, Path], obj: Object) -> None:
    with _own(open_object(str(build["iter"])).load()) as it:
        with it.programs["dump_maps"].attach() as link:
            assert link.info()["target_name"] == "bpf_map"
            lines = set(link.read_iter().decode().splitlines())
        for m in obj.maps.values():
            shown = json.loads(subprocess.run([_need("bpftool"), "-j", "map", "show", "id", str(m.info().id)],
                                              check=True, capture_output=True, text=True).stdout)
            assert f"{shown['id']} {shown['name']}" in lines


@root_only
def test_perf_event_on_every_cpu(obj: Object) -> None:
    from purebpf.link import attach_perf_event_all_cpus
    from purebpf.link.perf_event import online_cpus

    links = attach_perf_event_all_cpus(obj.programs["on_sample"], sample_period=100_000)
    try:
        assert [lk.target for lk in links] == [f"cpu {c}" for c in online_cpus()]
        assert len({lk.id for lk in links}) == len(links)
        x = 0
        for _ in range(2000):
            if int(obj.bss["perf_hits"]) > 0:
                break
            for i in range(20000):
                x += i
        assert int(obj.bss["perf_hits"]) > 0
    finally:
        for lk in links:
            lk.close()


@root_only
def test_cgroup_sock_create(obj: Object) -> None:
    """A cgroup link on a fresh cgroup v2 directory fires for sockets made by
    a process placed in it, not for ours."""
    import socket

    from purebpf.link import attach_cgroup

    base = "/sys/fs/cgroup/unified" if os.path.isdir("/sys/fs/cgroup/unified") else "/sys/fs/cgroup"
    if not os.path.exists(os.path.join(base, "cgroup.procs")):
        pytest.fail(f"no cgroup v2 hierarchy at {base}")
    cg = os.path.join(base, f"purebpf_test_{os.getpid()}")
    os.mkdir(cg)
    try:
        with attach_cgroup(obj.programs["on_sock_create"], cg) as link:
            info = link.info()
            assert info["type"] == "CGROUP" and info["cgroup"]["attach_type"] == 2  # BPF_CGROUP_INET_SOCK_CREATE
            shown = _bpftool_link("id", str(link.id))
            assert shown["prog_id"] == obj.programs["on_sock_create"].id
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()
            assert int(obj.bss["sock_hits"]) == 0  # we are not in that cgroup

            def enter() -> None:
                with open(os.path.join(cg, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))

            code = "import socket\nfor _ in range(3): socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()"
            subprocess.run(["python3", "-c", code], check=True, preexec_fn=enter)
            assert int(obj.bss["sock_hits"]) >= 3
    finally:
        for _ in range(1000):
            try:
                os.rmdir(cg)
                break
            except OSError:
                time.sleep(0.01)  # the child's exit is still being accounted
    with pytest.raises(AttachError) as ei:
        attach_cgroup(obj.programs["on_sock_create"], cg)
    assert cg in str(ei.value)


def test_uprobe_target_syntax_never_leaks() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from purebpf.link.kprobe import parse_kprobe_target

    @settings(max_examples=300, deadline=None)
    @given(st.text(max_size=40))
    def check(text: str) -> None:
        try:
            path, func, off = parse_uprobe_target(text)
            assert path and off >= 0 and (func is None or func)
        except AttachError:
            pass
        try:
            kfunc, koff = parse_kprobe_target(text)
            assert kfunc and koff >= 0
        except AttachError:
            pass

    check()


def test_mutated_binaries_raise_purebpf_errors(build: Dict[str, Path], tmp_path: Path) -> None:
    """Corrupt ELF files give AttachError/NotFoundError, never pyelftools' own errors."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from purebpf.errors import NotFoundError

    data = build["target"].read_bytes()
    path = tmp_path / "mutated"

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)), min_size=1, max_size=8),
           st.integers(64, len(data)))
    def check(edits: List[Any], cut: int) -> None:
        buf = bytearray(data[:cut])
        for pos, val in edits:
            if pos < len(buf):
                buf[pos] = val
        path.write_bytes(bytes(buf))
        try:
            off = resolve_symbol_offset(str(path), "target_func")
            assert isinstance(off, int) and off >= 0
        except (AttachError, NotFoundError):
            pass

    check()
