"""The runqslower example, end to end (examples/runqslower/).

The example is run as a user would run it (a separate ``python3`` process);
the test creates the scheduling delay it must report: CPU-bound processes
pinned to one CPU next to a sleeper that wakes often on the same CPU, so
tasks wait on that CPU's run queue for milliseconds.

Oracles: the kernel's scheduler (the load really waits), /proc (the thread
ids of the processes the test started: a ``-t``/``-p`` run may print only
those), bpftool (the programs, links and .rodata values the kernel holds while
the example runs), and the classic tool's output format (``TIME COMM TID LAT(us)``
columns, every latency above the threshold).
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Set, Tuple

import pytest

pytestmark = pytest.mark.kernel

if os.geteuid() != 0:
    pytest.skip("needs root", allow_module_level=True)
if not os.path.exists("/sys/kernel/btf/vmlinux"):
    pytest.skip("kernel feature missing: BTF (/sys/kernel/btf/vmlinux)", allow_module_level=True)

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "examples" / "runqslower" / "runqslower.py"
HEADER = "TIME     COMM             TID           LAT(us)"
HEADER_PREV = HEADER + " PREV COMM        PREV TID"
LINE = re.compile(r"^(?P<time>\d\d:\d\d:\d\d) (?P<comm>.{16}) (?P<tid>\d+) +(?P<lat>\d+)"
                  r"(?: (?P<prev_comm>.{16}) (?P<prev_tid>\d+) *)?$")

#: Generous bound on how long one example run may take before the test
#: gives up on it (a hang guard, not a speed check).
HANG_GUARD = 300.0
BPFTOOL = os.environ.get("BPFTOOL", "bpftool")
#: CPU the load is pinned to.
CPU = 0

BUSY = f"""
import os
os.sched_setaffinity(0, {{{CPU}}})
while True:
    pass
"""

# A process with two threads: both spin, pinned to the loaded CPU.
BUSY_THREADS = f"""
import os, threading
os.sched_setaffinity(0, {{{CPU}}})
def spin():
    while True:
        pass
threading.Thread(target=spin, daemon=True).start()
spin()
"""

SLEEPER = f"""
import os, time
os.sched_setaffinity(0, {{{CPU}}})
while True:
    time.sleep(0.001)
"""


@contextmanager
def cpu_load(extra: Tuple[str, ...] = ()) -> Iterator[List["subprocess.Popen[bytes]"]]:
    """Three busy loops and a frequent sleeper on CPU 0, plus ``extra`` scripts.

    Yields the processes (the ``extra`` ones first); kills and reaps all of
    them on the way out, so none outlives the test.
    """
    procs: List["subprocess.Popen[bytes]"] = []
    try:
        for script in extra + (BUSY, BUSY, BUSY, SLEEPER):
            procs.append(subprocess.Popen([sys.executable, "-c", script],
                                          stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL))
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        for proc in procs:
            proc.wait()


def run_example(*args: str) -> Tuple[int, List[str], str]:
    """Run runqslower.py with ``args`` to completion: (exit code, stdout lines, stderr)."""
    with subprocess.Popen([sys.executable, str(SCRIPT), *args], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as proc:
        try:
            out, err = proc.communicate(timeout=HANG_GUARD)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"runqslower {' '.join(args)} did not finish: {out[-2000:]}{err[-2000:]}")
    return proc.returncode, out.splitlines(), err


def events(lines: List[str], min_us: int, header: str = HEADER) -> List["re.Match[str]"]:
    """Check the banner, the header and every event line; return the events."""
    assert lines[:2] == [f"Tracing run queue latency higher than {min_us} us", header], lines[:5]
    matches = []
    for line in lines[2:]:
        m = LINE.match(line)
        assert m is not None, f"malformed line {line!r}"
        assert int(m["lat"]) >= min_us, f"latency below the threshold: {line!r}"
        matches.append(m)
    return matches


def thread_ids(pid: int) -> Set[int]:
    return {int(t) for t in os.listdir(f"/proc/{pid}/task")}


def test_reports_latency_above_threshold() -> None:
    with cpu_load() as load:
        code, lines, err = run_example("--duration", "3", "1000")
        load_tids = set().union(*(thread_ids(p.pid) for p in load))
    assert code == 0, err
    assert "Traceback" not in err, err
    found = events(lines, 1000)
    assert found, f"no event above 1000 us under load: {lines}"
    # The load itself waits on CPU 0's run queue: some of its threads must appear.
    assert {int(m["tid"]) for m in found} & load_tids, lines


def test_tid_filter() -> None:
    with cpu_load() as load:
        target = load[0].pid  # a single-threaded busy loop: its tid is its pid
        code, lines, err = run_example("--duration", "3", "-t", str(target), "1000")
    assert code == 0, err
    found = events(lines, 1000)
    assert found, f"no event for busy thread {target}: {lines}"
    assert {int(m["tid"]) for m in found} == {target}, lines
    assert all(m["comm"].rstrip() == Path(sys.executable).name[:15] for m in found), lines


def test_pid_filter_with_previous_task() -> None:
    with cpu_load(extra=(BUSY_THREADS,)) as load:
        target = load[0]
        for _ in range(1000):  # bounded: wait until its second thread exists
            if len(thread_ids(target.pid)) >= 2:
                break
            time.sleep(0.01)
        tids = thread_ids(target.pid)
        assert len(tids) >= 2, tids
        others = set().union(*(thread_ids(p.pid) for p in load[1:]))
        code, lines, err = run_example("--duration", "3", "-P", "-p", str(target.pid), "1000")
    assert code == 0, err
    found = events(lines, 1000, HEADER_PREV)
    assert found, f"no event for process {target.pid}: {lines}"
    printed = {int(m["tid"]) for m in found}
    assert printed <= tids, (printed, tids)
    assert not printed & others
    for m in found:
        assert m["prev_comm"] is not None and m["prev_tid"] is not None, m.string
        # The task it replaced on the CPU is not itself.
        assert int(m["prev_tid"]) != int(m["tid"]), m.string


def bpftool_json(*args: str) -> Any:
    out = subprocess.run([BPFTOOL, *args, "-j"], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def our_programs(before: Set[int]) -> Dict[str, Dict[str, Any]]:
    """The example's programs (by name) among those loaded since ``before``."""
    return {p["name"]: p for p in bpftool_json("prog", "show")
            if p["id"] not in before and p.get("name", "").startswith("handle_sched")}


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_kernel_view_and_clean_stop(stop: int) -> None:
    """While it runs, bpftool sees what the example set up; Ctrl-C (or
    SIGTERM) ends it cleanly, with exit code 0, and its programs go away."""
    if shutil.which(BPFTOOL) is None:
        pytest.fail(f"oracle {BPFTOOL} not found")
    before = {p["id"] for p in bpftool_json("prog", "show")}
    with subprocess.Popen([sys.executable, str(SCRIPT), "-t", "77", "-p", "88", "4321"],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as proc:
        try:
            out = b""
            fd = proc.stdout.fileno() if proc.stdout is not None else -1
            for _ in range(int(HANG_GUARD * 10)):  # bounded wait for the header
                if HEADER.encode() in out or proc.poll() is not None:
                    break
                ready, _, _ = select.select([fd], [], [], 0.1)
                if ready:
                    out += os.read(fd, 65536)
            assert HEADER.encode() in out, out

            progs = our_programs(before)
            assert sorted(progs) == ["handle_sched_switch", "handle_sched_wakeup",
                                     "handle_sched_wakeup_new"], progs
            assert {p["type"] for p in progs.values()} == {"tracing"}
            # One raw-tracepoint link per program, on the tracepoint its section names.
            links = {link["prog_id"]: link for link in bpftool_json("link", "show")}
            for name, prog in progs.items():
                assert links[prog["id"]]["tp_name"] == name[len("handle_"):], links.get(prog["id"])
            # The frozen .rodata map holds the command line's values.
            maps = [bpftool_json("map", "show", "id", str(i)) for i in progs["handle_sched_switch"]["map_ids"]]
            rodata = [m for m in maps if m["name"].endswith(".rodata")]
            assert len(rodata) == 1 and rodata[0]["frozen"] == 1, maps
            dump = bpftool_json("map", "dump", "id", str(rodata[0]["id"]))
            values: Dict[str, int] = {}
            for var in dump[0]["formatted"]["value"][".rodata"]:
                values.update(var)
            assert values == {"min_us": 4321, "targ_pid": 77, "targ_tgid": 88}, dump

            proc.send_signal(stop)
            rest, err = proc.communicate(timeout=HANG_GUARD)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, err
    assert b"Traceback" not in err, err
    for line in (out + rest).decode().splitlines()[2:]:
        assert LINE.match(line), line
    # The kernel frees programs asynchronously once their last fd is closed.
    for _ in range(2000):  # bounded
        left = our_programs(before)
        if not left:
            break
        time.sleep(0.05)
    assert not left, f"programs left loaded after exit: {sorted(left)}"


@pytest.mark.parametrize("args", [["-p", "0"], ["-t", "x"], ["-5"], ["abc"]])
def test_bad_arguments_are_refused(args: List[str]) -> None:
    code, lines, err = run_example(*args)
    assert code == 2, (code, lines, err)
    assert "usage: runqslower" in err
    assert not lines
