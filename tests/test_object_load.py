"""Loading objects into the real kernel with purebpf.object (root only).

The kernel is the oracle here: programs and maps it accepted are checked
through BPF_OBJ_GET_INFO_BY_FD and bpftool, global data through
BPF_PROG_TEST_RUN of programs that copy it, failures through the errors
raised and through what is left behind (fds of this process, program and
map ids in the kernel).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Dict, Iterator, List, Set

import pytest

from purebpf.errors import (
    KernelError,
    NotFoundError,
    StateError,
    VerifierError,
)
from purebpf.object import OpenObject, open_object
from purebpf.spec import ObjectSpec

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parent.parent
OBJ = ROOT / "fixtures" / "obj"
LITTLE = sorted(p for p in OBJ.glob("*.bpf.o"))
LOCKDOWN_REASON = "kernel feature missing: fentry/lsm programs (kernel lockdown)"
#: program types the kernel refuses under lockdown (fentry/fexit/fmod_ret/lsm).
LOCKDOWN_TYPES = {26, 29}  # BPF_PROG_TYPE_TRACING, BPF_PROG_TYPE_LSM


@pytest.fixture(autouse=True)
def _root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")


# ---------------------------------------------------------------------------
# leak accounting
# ---------------------------------------------------------------------------

def open_fds() -> Set[int]:
    return {int(n) for n in os.listdir("/proc/self/fd")}


def kernel_ids(kind: str) -> Set[int]:
    """Ids of every loaded program (``"prog"``) or map (``"map"``), walked with
    BPF_*_GET_NEXT_ID -- which takes no reference.  (Opening a dying prog
    array by id and closing it again would make the kernel schedule its
    deferred clean-up twice and keep the map forever, so the leak check must
    never open objects by id.)"""
    from purebpf.syscall import commands

    nxt = commands.prog_get_next_id if kind == "prog" else commands.map_get_next_id
    out: Set[int] = set()
    cur = 0
    while True:
        n = nxt(cur)
        if not n:
            return out
        out.add(int(n))
        cur = int(n)


class LeakCheck:
    """Nothing made inside the ``with`` block may survive it: no new fds of
    this process, and none of the programs and maps it created (their kernel
    ids are taken, through the syscall transcript, the moment each is made)
    still in the kernel -- other processes' objects are not counted."""

    def __init__(self, keep: Set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.keep = set(keep)
        self.created: Dict[str, Set[int]] = {"prog": set(), "map": set()}
        self._inside = False

    def _hook(self, record: object) -> None:
        from purebpf.syscall import commands

        command = getattr(record, "command")
        result = getattr(record, "result")
        if self._inside or result is None or command not in ("BPF_MAP_CREATE", "BPF_PROG_LOAD"):
            return
        name = str(getattr(record, "attrs", {}).get("map_name", getattr(record, "attrs", {}).get("prog_name", "")))
        self._inside = True  # the info call below goes through the transcript too
        try:
            if command == "BPF_MAP_CREATE":
                info = commands.map_info(result)
                if bytes(info.name).split(b"\0")[0].decode() in self.keep:
                    return
                self.created["map"].add(int(info.id))
            else:
                self.created["prog"].add(int(commands.prog_info(result).id))
        finally:
            self._inside = False
        del name

    def __enter__(self) -> "LeakCheck":
        from purebpf.syscall.trace import add_trace_hook

        self.fds = open_fds()
        self._handle = add_trace_hook(self._hook)
        return self

    def __exit__(self, *exc: object) -> None:
        from purebpf.syscall.trace import remove_trace_hook

        remove_trace_hook(self._handle)

    def leftovers(self) -> Dict[str, Set[int]]:
        return {kind: ids & kernel_ids(kind) for kind, ids in self.created.items()}

    def assert_clean(self, *, expect_objects: bool = True) -> None:
        if expect_objects:
            assert self.created["map"] or self.created["prog"], "nothing was created: the check proves nothing"
        assert open_fds() - self.fds == set(), "file descriptors leaked"
        # A closed program releases its maps after an RCU grace period, so the
        # kernel may list them for a moment: look again a bounded number of times.
        left = self.leftovers()
        for _ in range(1000):
            if not left["prog"] and not left["map"]:
                break
            time.sleep(0.01)
            left = self.leftovers()
        assert not left["prog"], f"programs left in the kernel: ids {sorted(left['prog'])}"
        assert not left["map"], f"maps left in the kernel: ids {sorted(left['map'])}"


@pytest.fixture
def pin_dir() -> Iterator[str]:
    path = f"/sys/fs/bpf/purebpf-test-{uuid.uuid4().hex[:12]}"
    os.makedirs(path)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def disable_lockdown_programs(opened: OpenObject) -> List[str]:
    """Switch off the fentry/fexit/fmod_ret/lsm programs the kernel refuses
    (lockdown), after checking one by one that a refusal is EPERM; on a
    kernel without lockdown they stay in and load with the rest."""
    refused = []
    for name, prog in opened.programs.items():
        kind = prog.spec.kind
        if int(prog.prog_type) not in LOCKDOWN_TYPES or kind is None or not kind.needs_attach_btf_id:
            continue
        if prog.expected_attach_type is not None and int(prog.expected_attach_type) == 28:
            continue  # iter programs load fine
        if "tp_btf" in prog.spec.section:
            continue
        single = open_object(opened.spec)
        for other in single.programs.values():
            other.autoload = other.name == name
        try:
            single.load().close()
        except KernelError as exc:
            # refused: only ever with EPERM (lockdown), named, with the hint
            assert exc.errno == errno.EPERM, str(exc)
            assert "BPF_PROG_LOAD" in str(exc) and name in str(exc) and exc.hint
            prog.autoload = False
            refused.append(name)
    return refused


# ---------------------------------------------------------------------------
# every fixture loads
# ---------------------------------------------------------------------------

def _in_kallsyms(name: str) -> bool:
    with open("/proc/kallsyms") as f:
        return any(line.split()[2] == name for line in f if len(line.split()) >= 3)


@pytest.mark.parametrize("path", LITTLE, ids=[p.name for p in LITTLE])
def test_fixture_loads(path: Path, pin_dir: str) -> None:
    spec = ObjectSpec.from_file(path)
    opened = open_object(spec, pin_root=pin_dir)
    if path.name == "ksym_typed.bpf.o" and not _in_kallsyms("runqueues"):
        # needs CONFIG_KALLSYMS_ALL for the per-CPU variable `runqueues`
        fds = open_fds()
        with pytest.raises((NotFoundError, KernelError)) as info:
            opened.load()
        assert "runqueues" in str(info.value)
        assert open_fds() == fds
        return
    disable_lockdown_programs(opened)
    pinned = {m.name for m in spec.maps if int(m.pinning) == 1}
    with LeakCheck(keep=pinned) as leaks, opened.load() as obj:
        wanted = {n for n, p in opened.programs.items() if p.autoload}
        assert set(obj.programs) == wanted
        for name, prog in obj.programs.items():
            pinfo = prog.info()
            assert pinfo.id > 0 and pinfo.xlated_insn_count > 0
            assert pinfo.name == name[:15]
            assert int(pinfo.prog_type) == int(opened.programs[name].prog_type)
        for m in spec.maps:
            live = obj.maps[m.name]
            kinfo = live.info()
            assert int(kinfo.type) == int(m.type)
            assert kinfo.key_size == m.key_size
    leaks.assert_clean()


@pytest.mark.parametrize("program", ["trace_unlink_entry", "trace_unlink_exit", "trace_modify_open",
                                     "trace_sleepable_getpgid", "lsm_file_open", "lsm_sleepable_creds"])
def test_lockdown_programs(program: str) -> None:
    opened = open_object(OBJ / "sections_tracing.bpf.o")
    for p in opened.programs.values():
        p.autoload = p.name == program
    fds = open_fds()
    try:
        obj = opened.load()
    except KernelError as exc:
        assert exc.errno == errno.EPERM, str(exc)
        assert program in str(exc) and exc.hint
        assert open_fds() == fds
        pytest.skip(LOCKDOWN_REASON)
    with obj:
        assert obj.programs[program].id > 0


def test_autoload_off_and_prog_in_spec_untouched() -> None:
    spec = ObjectSpec.from_file(OBJ / "sections_new.bpf.o")
    opened = open_object(OBJ / "subprogs.bpf.o")
    opened.programs["xdp_second"].autoload = False
    with opened.load() as obj:
        assert "xdp_second" not in obj.programs and "xdp_first" in obj.programs
    # the `?xdp` program starts with autoload off
    assert spec.program("xdp_not_autoloaded").autoload is False


def test_loading_one_spec_twice_gives_same_xlated() -> None:
    spec = ObjectSpec.from_file(OBJ / "subprogs.bpf.o")
    before = spec
    with open_object(spec).load() as a, open_object(spec).load() as b:
        for name in a.programs:
            xa, xb = a.programs[name].info().xlated, b.programs[name].info().xlated
            assert len(xa) == len(xb)
    assert spec == before


# ---------------------------------------------------------------------------
# global data
# ---------------------------------------------------------------------------

PKT = bytes(range(64))


def test_bss_round_trip_through_mmap() -> None:
    """User writes .bss through mmap, the program reads it, user reads the program's writes."""
    opened = open_object(OBJ / "globals.bpf.o")
    from purebpf.syscall.trace import tracing

    with opened.load() as obj:
        bss = obj.bss
        assert bss.mmapped
        calls: List[object] = []
        with tracing(calls.append):  # shared memory: no bpf() call to read or write
            before = bss["bytes_seen"]
            bss["bytes_seen"] = 1000
            assert obj.bss["bytes_seen"] == 1000
        assert calls == []
        res = obj.programs["count_packets"].test_run(PKT)
        assert res.retval in (0, 1, 2, 3, 4)
        # the program adds the packet length to bytes_seen: it saw our 1000
        with tracing(calls.append):
            assert obj.bss["bytes_seen"] == 1000 + len(PKT), (before, obj.bss["bytes_seen"])
        assert calls == []
        # .data is live too: packets_seen counts runs
        seen = obj.data["packets_seen"]
        obj.programs["count_packets"].test_run(PKT)
        assert obj.data["packets_seen"] == seen + 1


def _globals_source() -> str:
    return (ROOT / "fixtures" / "src" / "globals.bpf.c").read_text() if (ROOT / "fixtures" / "src" / "globals.bpf.c").exists() else ""


def test_rodata_set_before_load_changes_behaviour() -> None:
    results = []
    for verdict in (1, 2):  # XDP_DROP, XDP_PASS
        opened = open_object(OBJ / "globals.bpf.o")
        opened.rodata["cfg_verdict"] = verdict
        with opened.load() as obj:
            assert obj.rodata["cfg_verdict"] == verdict
            results.append(obj.programs["count_packets"].test_run(PKT).retval)
    assert results[0] != results[1]


def test_rodata_write_after_load_raises() -> None:
    opened = open_object(OBJ / "globals.bpf.o")
    with opened.load() as obj:
        with pytest.raises(StateError):
            obj.rodata["cfg_verdict"] = 3
        with pytest.raises(StateError):
            opened.rodata  # the open object is spent
    with pytest.raises(StateError):
        obj.rodata


# ---------------------------------------------------------------------------
# maps
# ---------------------------------------------------------------------------

def test_map_in_map_and_prog_array_initial_values(pin_dir: str) -> None:
    with open_object(OBJ / "maps.bpf.o", pin_root=pin_dir).load() as obj:
        outer = obj.maps["outer_array"]
        assert outer.inner_id(0) == obj.maps["inner_a"].id
        assert outer.inner_id(3) == obj.maps["inner_b"].id
        jt = obj.maps["jump_table"]
        ids = {struct.unpack("<I", k)[0]: struct.unpack("<I", v)[0]  # type: ignore[arg-type]
               for k, v in jt.items()}
        assert ids == {0: obj.programs["xdp_tail_a"].id, 2: obj.programs["xdp_tail_b"].id}
        # perf_event_array sized to the possible CPUs
        from purebpf.syscall import features

        assert obj.maps["events_perf"].info().max_entries == features.num_possible_cpus()


def test_struct_ops_value_registers_with_the_kernel() -> None:
    """The struct_ops value load prepares is what the kernel expects: writing
    it registers the TCP congestion control (visible in /proc), deleting it
    unregisters it again."""
    from purebpf.syscall import commands

    def available() -> List[str]:
        return Path("/proc/sys/net/ipv4/tcp_available_congestion_control").read_text().split()

    with open_object(OBJ / "struct_ops.bpf.o").load() as obj:
        assert set(obj.programs) == {"pb_init", "pb_ssthresh", "pb_cong_avoid", "pb_undo_cwnd"}
        live = obj.maps["pb_reno"]
        assert live.info().type == 26  # BPF_MAP_TYPE_STRUCT_OPS
        assert "pb_reno" not in available()
        commands.map_update_elem(live.fd, bytes(4), obj.struct_ops_value("pb_reno"))
        try:
            assert "pb_reno" in available()
        finally:
            commands.map_delete_elem(live.fd, bytes(4))
        assert "pb_reno" not in available()


def test_pinned_map_reused_and_incompatible_refused(pin_dir: str) -> None:
    first = open_object(OBJ / "maps.bpf.o", pin_root=pin_dir)
    with first.load() as a:
        a.maps["pinned_config"][1] = 77
        pinned_id = a.maps["pinned_config"].id
    assert os.path.exists(os.path.join(pin_dir, "pinned_config"))
    with open_object(OBJ / "maps.bpf.o", pin_root=pin_dir).load() as b:
        assert b.maps["pinned_config"].id == pinned_id
        assert struct.unpack("<Q", b.maps["pinned_config"][1])[0] == 77  # type: ignore[arg-type]
    third = open_object(OBJ / "maps.bpf.o", pin_root=pin_dir)
    third.maps["pinned_config"].max_entries = 8
    with LeakCheck(keep={"pinned_config"}) as leaks, pytest.raises(KernelError) as info:
        third.load()
    assert "max_entries" in str(info.value) and "pinned_config" in str(info.value)
    leaks.assert_clean()


# ---------------------------------------------------------------------------
# failures: clear errors, nothing left behind
# ---------------------------------------------------------------------------

BAD_C = textwrap.dedent("""\
    #include <linux/bpf.h>
    #include <bpf/bpf_helpers.h>

    char LICENSE[] SEC("license") = "GPL";
    int table[4];

    SEC("xdp")
    int bad_index(struct xdp_md *ctx)
    {
        int idx = ctx->rx_queue_index;
        return table[idx];  /* unchecked index: the verifier must refuse */
    }
""")


def build_bad_object(tmp_path: Path) -> Path:
    src = tmp_path / "bad.bpf.c"
    src.write_text(BAD_C)
    out = tmp_path / "bad.bpf.o"
    clang = shutil.which("clang-19")
    if clang is None:
        pytest.fail("clang-19 missing")
    subprocess.run([clang, "-g", "-O2", "-target", "bpf", "-c", str(src), "-o", str(out)], check=True)
    return out


def test_verifier_error_has_name_log_and_source_line(tmp_path: Path) -> None:
    path = build_bad_object(tmp_path)
    opened = open_object(path)
    with LeakCheck() as leaks, pytest.raises(VerifierError) as info:
        opened.load()
    err = info.value
    assert err.program == "bad_index"
    assert err.errno in (errno.EACCES, errno.EINVAL)
    assert "processed" in err.log or "R" in err.log
    assert err.summary and "table[idx]" in err.summary, err.summary
    assert "bad.bpf.c:" in err.summary
    leaks.assert_clean()


def test_missing_kconfig_and_unknown_ksym(tmp_path: Path) -> None:
    src = tmp_path / "ext.bpf.c"
    src.write_text(textwrap.dedent("""\
        #include <linux/bpf.h>
        #include <bpf/bpf_helpers.h>
        char LICENSE[] SEC("license") = "GPL";
        extern int CONFIG_PUREBPF_DEFINITELY_MISSING __kconfig;
        int out;
        SEC("socket")
        int use_kconfig(void *ctx) { out = CONFIG_PUREBPF_DEFINITELY_MISSING; return 0; }
    """))
    ksrc = tmp_path / "ksym.bpf.c"
    ksrc.write_text(textwrap.dedent("""\
        #include <linux/bpf.h>
        #include <bpf/bpf_helpers.h>
        char LICENSE[] SEC("license") = "GPL";
        extern const void purebpf_no_such_kernel_symbol __ksym;
        long out;
        SEC("socket")
        int use_ksym(void *ctx) { out = (long)&purebpf_no_such_kernel_symbol; return 0; }
    """))
    for c, needle in ((src, "CONFIG_PUREBPF_DEFINITELY_MISSING"), (ksrc, "purebpf_no_such_kernel_symbol")):
        obj = c.with_suffix(".o")
        subprocess.run(["clang-19", "-g", "-O2", "-target", "bpf", "-c", str(c), "-o", str(obj)], check=True)
        opened = open_object(obj)
        fds = open_fds()
        with pytest.raises(NotFoundError) as info:
            opened.load()
        assert needle in str(info.value)
        assert open_fds() == fds  # refused before anything was made


def test_failure_half_way_closes_everything(pin_dir: str) -> None:
    """A program that fails after maps and earlier programs exist: all released."""
    opened = open_object(OBJ / "maps.bpf.o", pin_root=pin_dir)
    # retype the last program so the verifier refuses it (cgroup_skb code as a socket filter is fine,
    # but as a tracepoint its context accesses are invalid)
    last = list(opened.programs)[-1]
    opened.programs[last].prog_type = 5  # BPF_PROG_TYPE_TRACEPOINT
    opened.programs[last].expected_attach_type = None
    with LeakCheck() as leaks, pytest.raises(KernelError):
        opened.load()
    leaks.assert_clean()
    assert os.listdir(pin_dir) == []  # the pin made by this load is gone too


def test_no_privileges_gives_eperm_with_hint() -> None:
    if shutil.which("setpriv") is None:
        pytest.fail("setpriv missing")
    code = textwrap.dedent(f"""\
        import sys
        from purebpf.object import open_object
        from purebpf.errors import KernelError
        try:
            open_object({str(OBJ / 'linked.bpf.o')!r}).load()
        except KernelError as exc:
            print("ERRNO", exc.errno)
            print("HINT", exc.hint)
            sys.exit(0)
        sys.exit(3)
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    # root's uid, but no capabilities at all (empty bounding set): bpf() must refuse
    proc = subprocess.run(["setpriv", "--inh-caps=-all", "--bounding-set=-all",
                           sys.executable, "-c", code],
                          capture_output=True, text=True, cwd="/", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"ERRNO {errno.EPERM}" in proc.stdout
    assert "CAP_BPF" in proc.stdout


def test_program_info_pin_and_xlated(pin_dir: str) -> None:
    from purebpf.program import Program

    with open_object(OBJ / "linked.bpf.o").load() as obj:
        prog = obj.programs["xdp_from_a"]
        path = os.path.join(pin_dir, "xdp_from_a")
        prog.pin(path)
        shown = json.loads(subprocess.run(["bpftool", "prog", "show", "pinned", path, "-j"],
                                          capture_output=True, text=True, check=True).stdout)
        assert shown["id"] == prog.id and shown["type"] == "xdp" and shown["tag"] == prog.tag
        with Program.from_pin(path) as again:
            assert again.id == prog.id
        insns = prog.xlated_instructions()
        assert sum(i.slots for i in insns) == prog.info().xlated_insn_count
        prog.unpin(path)
        assert not os.path.exists(path)


# ---------------------------------------------------------------------------
# injected failures at every stage
# ---------------------------------------------------------------------------

def inject_failure(monkeypatch: pytest.MonkeyPatch, command: int, n: int) -> None:
    """Make the ``n``-th and every later bpf() call of ``command`` fail with
    ENOMEM, at the syscall choke point itself (every kernel call of purebpf
    passes there), so that retries (without BTF, with a log) fail too."""
    from purebpf.syscall import _raw, commands

    real = _raw.bpf
    seen = [0]

    def failing(cmd: int, attr: object, **kwargs: object) -> int:
        if int(cmd) == command:
            seen[0] += 1
            if seen[0] >= n:
                if kwargs.get("raise_on_error", True):
                    raise KernelError(errno.ENOMEM, "INJECTED")
                return -errno.ENOMEM
        return real(cmd, attr, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_raw, "bpf", failing)
    monkeypatch.setattr(commands, "bpf", failing)


MAP_CREATE, MAP_UPDATE_ELEM, PROG_LOAD, BTF_LOAD = 0, 2, 5, 18


@pytest.mark.parametrize("command,n", [(MAP_CREATE, 1), (MAP_CREATE, 4), (MAP_CREATE, 12), (MAP_CREATE, 20),
                                       (MAP_UPDATE_ELEM, 1), (MAP_UPDATE_ELEM, 4), (PROG_LOAD, 1),
                                       (PROG_LOAD, 4)],
                         ids=["map1", "map4", "map12", "map20", "update1", "update4", "prog1", "prog4"])
def test_injected_failure_leaves_nothing(monkeypatch: pytest.MonkeyPatch, command: int, n: int,
                                         pin_dir: str) -> None:
    """A failure at any point of a load (maps, inner maps and their slots,
    data maps and their contents, programs, prog arrays) closes everything
    made so far and removes new pins; the open object loads fine afterwards."""
    open_object(OBJ / "maps.bpf.o", pin_root=pin_dir).load().close()  # feature probes cached
    for leftover in os.listdir(pin_dir):
        os.unlink(os.path.join(pin_dir, leftover))
    opened = open_object(OBJ / "maps.bpf.o", pin_root=pin_dir)
    inject_failure(monkeypatch, command, n)
    with LeakCheck() as leaks, pytest.raises(KernelError) as info:
        opened.load()
    assert info.value.errno == errno.ENOMEM
    leaks.assert_clean(expect_objects=n > 1)
    assert os.listdir(pin_dir) == [], "a pin made during the failed load was left behind"
    monkeypatch.undo()
    with opened.load() as obj:
        assert set(obj.programs) == {p.name for p in opened.spec.programs}


def test_open_phase_values_survive_a_failed_load(monkeypatch: pytest.MonkeyPatch) -> None:
    opened = open_object(OBJ / "globals.bpf.o")
    opened.rodata["cfg_verdict"] = 1
    inject_failure(monkeypatch, PROG_LOAD, 2)
    with pytest.raises(KernelError):
        opened.load()
    monkeypatch.undo()
    assert opened.rodata["cfg_verdict"] == 1
    with opened.load() as obj:
        assert obj.rodata["cfg_verdict"] == 1


def test_resized_map_and_verifier_log_on_success(pin_dir: str) -> None:
    opened = open_object(OBJ / "maps.bpf.o", pin_root=pin_dir)
    opened.maps["sized_array"].max_entries = 64
    with pytest.raises(StateError):
        opened.maps["flows"].value_size = 32  # fixed by its BTF type
    with opened.load(log_level=1, log_size=1 << 20) as obj:
        assert obj.maps["sized_array"].info().max_entries == 64
        assert "processed" in obj.programs["xdp_use_maps"].log


def test_log_buffer_grows_until_the_whole_log_fits() -> None:
    """A 4 KiB buffer cannot hold the level-2 log of a 12,000-instruction
    program: the load is repeated with a bigger buffer (as log_true_size
    says) and the whole log is kept."""
    sizes: List[int] = []

    def hook(record: object) -> None:
        if getattr(record, "command") == "BPF_PROG_LOAD" and "long_jump" in str(getattr(record, "attrs")):
            sizes.append(int(getattr(record, "attrs").get("log_size", 0)))

    from purebpf.syscall.trace import tracing

    with tracing(hook), open_object(OBJ / "longjump.bpf.o").load(log_level=2, log_size=4096) as obj:
        vlog = obj.programs["long_jump"].log
    assert sizes[0] == 4096 and sizes[-1] > 4096 and sizes == sorted(sizes)
    assert len(vlog) > 4096
    assert vlog.rstrip().splitlines()[-1].startswith("processed ") or "processed " in vlog[-400:]


def test_target_btf_override_is_used_for_core() -> None:
    """CO-RE against an explicit BTF file: the same file as the kernel's gives
    the same translated program; a file without the types fails clearly."""
    default = open_object(OBJ / "core_kernel.bpf.o")
    explicit = open_object(OBJ / "core_kernel.bpf.o", target_btf="/sys/kernel/btf/vmlinux")
    with default.load() as a, explicit.load() as b:
        for name in a.programs:
            assert len(a.programs[name].info().xlated) == len(b.programs[name].info().xlated)
    # the object's own BTF has none of the kernel types its CO-RE records need
    from purebpf.errors import CoreRelocationError

    raw = ObjectSpec.from_file(OBJ / "linked.bpf.o").btf_raw
    other = Path(os.environ.get("TMPDIR", "/tmp")) / f"purebpf-test-{uuid.uuid4().hex[:8]}.btf"
    other.write_bytes(raw)
    try:
        fds = open_fds()
        with pytest.raises((CoreRelocationError, VerifierError)) as info:
            open_object(OBJ / "core_kernel.bpf.o", target_btf=str(other)).load()
        if isinstance(info.value, VerifierError):
            # as libbpf: unresolvable relocations poison their instructions, and
            # the verifier refuses the reachable ones; the summary says why
            assert info.value.summary and "CO-RE relocation" in info.value.summary
            assert "task_struct" in info.value.summary
        assert open_fds() == fds
    finally:
        other.unlink()


@pytest.mark.parametrize("start", [4, 5, 0xFFFF_FFFF_FFFF_FFFF])
def test_syscall_program_run_matches_python(start: int) -> None:
    """longjump.bpf.o (a 12,000-instruction branch, jumps beyond 16 bits of
    offset) computes, for an odd gl_in, v = v*31 + (v >> 7) 3000 times: the
    kernel's run must agree with the same computation in Python."""
    expected = start
    if start & 1:
        for _ in range(3000):
            expected = (expected * 31 + (expected >> 7)) & 0xFFFF_FFFF_FFFF_FFFF
    with open_object(OBJ / "longjump.bpf.o").load() as obj:
        obj.bss["gl_in"] = start
        assert obj.programs["long_jump"].test_run().retval == 0
        assert obj.bss["gl_out"] == expected


def test_kconfig_values_reach_the_kernel_map() -> None:
    """The .kconfig map holds what the kernel reports: the version from
    uname (as libbpf computes it) and CONFIG_BPF_SYSCALL=y (bpf() works)."""
    import platform

    release = platform.release().split("-")[0].split(".")
    major, minor = int(release[0]), int(release[1])
    with open_object(OBJ / "externs.bpf.o").load() as obj:
        kconfig = obj.data_section(".kconfig")
        version = kconfig["LINUX_KERNEL_VERSION"]
        assert version >> 16 == major and (version >> 8) & 0xFF == minor
        assert kconfig["CONFIG_BPF_SYSCALL"] in (True, 1)
        with pytest.raises(StateError):
            kconfig["CONFIG_HZ"] = 1
