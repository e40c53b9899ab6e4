"""Multi-probe and netfilter links: uprobe.multi, uretprobe.multi,
uprobe.session, kprobe.multi, netfilter -- fired for real.

Built here: tests/helpers/multi_target.c with gcc (multi_alpha runs N times,
multi_beta 2N, multi_gamma 3N) and tests/helpers/link_multi.bpf.c with
clang-19.  Oracles: the call counts of the target's own source, objdump/nm
(file offsets and symbols), the kernel's link info, packets this test sends.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import re
import shutil
import socket
import struct
import subprocess
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from purebpf.errors import AttachError
from purebpf.link import attach_kprobe_multi, attach_netfilter, attach_program, attach_uprobe_multi
from purebpf.link.multi import FPROBE_MISSING_HINT, glob_to_regex, resolve_function_offsets, \
    resolve_kernel_functions
from purebpf.object import Object, open_object

HELPERS = Path(__file__).resolve().parent / "helpers"
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (kernel tests)")
FUNCS = {"multi_alpha": 1, "multi_beta": 2, "multi_gamma": 3}  # calls per N
UDP_PAYLOAD = 777
IP_UDP_LEN = 20 + 8 + UDP_PAYLOAD


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"test tool {tool} is not installed")
    return path


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    d = tmp_path_factory.mktemp("multi")
    target = d / "multi_target"
    subprocess.run([_need("gcc"), "-O1", "-o", str(target), str(HELPERS / "multi_target.c")], check=True)
    vmlinux_h = subprocess.run(["python3", "-m", "purebpf", "btf", "dump", "/sys/kernel/btf/vmlinux",
                                "--format", "c"], check=True, capture_output=True).stdout
    (d / "vmlinux.h").write_bytes(vmlinux_h)
    progs = d / "link_multi.bpf.o"
    subprocess.run([_need("clang-19"), "-O2", "-g", "-target", "bpf", "-I", str(d),
                    f'-DMULTI_TARGET="{target}"', "-c", str(HELPERS / "link_multi.bpf.c"),
                    "-o", str(progs)], check=True)
    return {"target": target, "progs": progs}


@pytest.fixture
def obj(build: Dict[str, Path]) -> Iterator[Object]:
    with open_object(str(build["progs"])) as opened:
        opened.rodata["nf_match_len"] = IP_UDP_LEN
        # kprobe.multi loads here but cannot attach; it is loaded all the same
        with opened.load() as loaded:
            yield loaded


def _cookie_counts(obj: Object) -> List[int]:
    """``by_cookie[8]``: an array of u64, read as a list of ints (checked against its bytes)."""
    counts = obj.bss["by_cookie"]
    assert counts == list(struct.unpack("=8Q", obj.bss.get_bytes("by_cookie")))
    return list(counts)


def _run(target: Path, n: int) -> None:
    out = subprocess.run([str(target), str(n)], check=True, capture_output=True, text=True).stdout
    assert out.startswith("done")


def _objdump_offset(binary: Path, symbol: str) -> int:
    out = subprocess.run([_need("objdump"), "-d", "-F", f"--disassemble={symbol}", str(binary)],
                         check=True, capture_output=True, text=True).stdout
    m = re.search(rf"<{re.escape(symbol)}> \(File Offset: (0x[0-9a-f]+)\):", out)
    assert m, f"objdump does not show {symbol} in {binary}"
    return int(m.group(1), 16)


# -- symbol resolution -------------------------------------------------------------


def test_pattern_offsets_match_objdump_and_nm(build: Dict[str, Path]) -> None:
    target = build["target"]
    nm = subprocess.run([_need("nm"), str(target)], check=True, capture_output=True, text=True).stdout
    functions = {line.split()[2] for line in nm.splitlines()
                 if len(line.split()) == 3 and line.split()[1] in "tT"}
    found = resolve_function_offsets(str(target), "multi_*")
    assert set(found) == set(fnmatch.filter(functions, "multi_*")) == set(FUNCS)
    for name, offset in found.items():
        assert offset == _objdump_offset(target, name)
    assert set(resolve_function_offsets(str(target), "multi_?eta")) == {"multi_beta"}
    assert set(resolve_function_offsets(str(target), "other_func")) == {"other_func"}
    with pytest.raises(AttachError, match="no function of .* matches 'nothing_\\*'") as err:
        resolve_function_offsets(str(target), "nothing_*")
    assert err.value.errno == errno.ENOENT


def test_glob_is_libbpfs_star_and_question_mark() -> None:
    assert glob_to_regex("a*c").match("abbbc") and glob_to_regex("a*c").match("ac")
    assert glob_to_regex("a?c").match("abc") and not glob_to_regex("a?c").match("ac")
    # everything else is literal, brackets and dots included
    assert glob_to_regex("f[1].x").match("f[1].x") and not glob_to_regex("f[1].x").match("f1ax")
    assert not glob_to_regex("abc").match("abcd")


def test_kernel_function_patterns_from_kallsyms() -> None:
    with open("/proc/kallsyms") as f:
        text = {p[2] for p in (line.split() for line in f) if len(p) >= 3 and p[1] in "tT"}
    got = resolve_kernel_functions("do_unlinka*")
    assert "do_unlinkat" in got
    # tracefs's list (when readable) is a subset of kallsyms' text symbols
    assert set(got) <= set(fnmatch.filter(text, "do_unlinka*")) | set(got)
    assert got == sorted(set(got))
    with pytest.raises(AttachError, match="no kernel function matches"):
        resolve_kernel_functions("no_such_function_*_xyz")


# -- uprobe.multi ------------------------------------------------------------------


@root_only
def test_uprobe_multi_from_section_counts_every_call(obj: Object, build: Dict[str, Path]) -> None:
    with obj.programs["on_multi"].attach() as link:
        assert link.kind == "uprobe.multi"
        assert link.target == f"{build['target']}:multi_*"
        # one function per distinct file offset, in offset order
        offsets = [_objdump_offset(build["target"], f) for f in link.functions]
        assert sorted(link.functions) == sorted(FUNCS) and offsets == sorted(offsets)
        _run(build["target"], 5)
        assert obj.bss["multi_hits"] == 5 * sum(FUNCS.values())
        assert _cookie_counts(obj)[0] == 30
        info = link.info()
        assert info["type"] == "UPROBE_MULTI"
        assert info["uprobe_multi"]["count"] == 3 and info["uprobe_multi"]["flags"] == 0
    _run(build["target"], 2)
    assert obj.bss["multi_hits"] == 30, "still fires after close"


@root_only
def test_uprobe_multi_symbols_with_cookies(obj: Object, build: Dict[str, Path]) -> None:
    prog = obj.programs["on_multi"]
    names = ["multi_gamma", "multi_alpha", "multi_beta"]
    with attach_uprobe_multi(prog, str(build["target"]), symbols=names,
                             cookies=[FUNCS[n] for n in names]) as link:
        assert link.functions == names
        _run(build["target"], 4)
    counts = _cookie_counts(obj)
    assert [counts[c] for c in (1, 2, 3)] == [4, 8, 12]
    assert counts[0] == 0


@root_only
def test_uretprobe_multi_glob_question_mark(obj: Object, build: Dict[str, Path]) -> None:
    with obj.programs["on_multi_ret"].attach() as link:
        assert link.kind == "uretprobe.multi" and link.functions == ["multi_beta"]
        assert link.info()["uprobe_multi"]["flags"] == 1  # BPF_F_UPROBE_MULTI_RETURN
        _run(build["target"], 3)
        assert obj.bss["multi_ret_hits"] == 6


@root_only
def test_uprobe_session_sees_entry_and_return(obj: Object, build: Dict[str, Path]) -> None:
    with obj.programs["on_session"].attach() as link:
        assert link.kind == "uprobe.session"
        _run(build["target"], 2)
    assert (obj.bss["session_entries"], obj.bss["session_returns"]) == (6, 6)


@root_only
def test_uprobe_multi_pid_filter(obj: Object, build: Dict[str, Path]) -> None:
    waiting = subprocess.Popen([str(build["target"]), "4", "wait"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        assert waiting.stdout is not None and waiting.stdout.readline().strip() == "ready"
        with attach_uprobe_multi(obj.programs["on_multi"], str(build["target"]), "multi_alpha",
                                 pid=waiting.pid):
            _run(build["target"], 3)  # another process: filtered out
            assert obj.bss["multi_hits"] == 0
            waiting.communicate("go\n", timeout=30)
            assert obj.bss["multi_hits"] == 4
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait()


@root_only
def test_uprobe_multi_bad_targets(obj: Object, build: Dict[str, Path], tmp_path: Path) -> None:
    prog = obj.programs["on_multi"]
    target = str(build["target"])
    with pytest.raises(AttachError, match="nothing_\\*") as err:
        attach_uprobe_multi(prog, target, "nothing_*")
    assert err.value.errno == errno.ENOENT
    with pytest.raises(AttachError, match="no symbol 'missing_fn'"):
        attach_uprobe_multi(prog, target, symbols=["multi_alpha", "missing_fn"])
    with pytest.raises(AttachError) as err:
        attach_uprobe_multi(prog, str(tmp_path / "absent"), "multi_*")
    assert err.value.errno == errno.ENOENT and "absent" in str(err.value)
    with pytest.raises(AttachError, match="2 cookies for 3 functions"):
        attach_uprobe_multi(prog, target, "multi_*", cookies=[1, 2])
    with pytest.raises(AttachError, match="no process with pid") as err:
        attach_uprobe_multi(prog, target, "multi_*", pid=2 ** 22 + 12345)
    assert err.value.errno == errno.ESRCH
    with pytest.raises(AttachError, match="has type NETFILTER"):
        attach_uprobe_multi(obj.programs["on_nf"], target, "multi_*")


# -- kprobe.multi ------------------------------------------------------------------


@root_only
def test_kprobe_multi_refusal_is_clear_or_it_fires(obj: Object, tmp_path: Path) -> None:
    prog = obj.programs["on_kmulti"]
    try:
        link = attach_program(prog)
    except AttachError as exc:
        assert exc.errno == errno.EOPNOTSUPP
        assert exc.hint == FPROBE_MISSING_HINT and "do_unlinkat" in str(exc)
        # exact names are passed through; a pattern is resolved first
        with pytest.raises(AttachError) as again:
            attach_kprobe_multi(prog, symbols=["do_unlinkat", "do_rmdir"], cookies=[1, 2])
        assert again.value.errno == errno.EOPNOTSUPP
        pytest.skip("kernel feature missing: kprobe-multi links need CONFIG_FPROBE "
                    "(this kernel refused BPF_TRACE_KPROBE_MULTI with EOPNOTSUPP)")
    with link:
        assert link.functions == ["do_unlinkat"]
        victim = tmp_path / "victim"
        victim.write_text("x")
        victim.unlink()
        assert obj.bss["kmulti_hits"] >= 1


def test_kprobe_multi_cookie_count_checked_first(obj: Object) -> None:
    with pytest.raises(AttachError, match="1 cookies for 2 functions"):
        attach_kprobe_multi(obj.programs["on_kmulti"], symbols=["a", "b"], cookies=[1])


# -- netfilter ---------------------------------------------------------------------


def _send_udp(count: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
        sink.bind(("127.0.0.1", 0))
        for _ in range(count):
            out.sendto(b"n" * UDP_PAYLOAD, sink.getsockname())


@root_only
def test_netfilter_local_out_counts_our_packets(obj: Object) -> None:
    prog = obj.programs["on_nf"]
    with attach_netfilter(prog, pf="ipv4", hook="local_out", priority=-7) as link:
        assert link.kind == "netfilter"
        assert link.target == "netfilter ipv4/local_out priority -7"
        info = link.info()
        assert info["type"] == "NETFILTER"
        assert (info["netfilter"]["pf"], info["netfilter"]["hooknum"],
                info["netfilter"]["priority"]) == (socket.AF_INET, 3, -7)
        _send_udp(25)
        assert obj.bss["nf_hits"] == 25
    _send_udp(5)
    assert obj.bss["nf_hits"] == 25, "still runs after close"
    # through attach_program with keyword arguments
    with attach_program(prog, hook="local_in", pf=socket.AF_INET):
        _send_udp(3)
        assert obj.bss["nf_hits"] == 28


@root_only
def test_netfilter_bad_arguments(obj: Object) -> None:
    prog = obj.programs["on_nf"]
    with pytest.raises(AttachError, match="hook must be one of"):
        attach_netfilter(prog, hook="sideways")
    with pytest.raises(AttachError, match="pf must be ipv4 or ipv6"):
        attach_netfilter(prog, pf="ipx")
    with pytest.raises(AttachError) as err:
        attach_netfilter(prog, hook="local_out", priority=-2 ** 31)  # NF_IP_PRI_FIRST
    assert "netfilter ipv4/local_out" in str(err.value) and err.value.errno == errno.ERANGE
    assert err.value.hint is not None and "reserved" in err.value.hint
    with pytest.raises(AttachError, match="has type KPROBE"):
        attach_netfilter(obj.programs["on_multi"], hook="local_out")
    with pytest.raises(AttachError) as err:
        attach_netfilter(prog, pf=99, hook=1)
    assert err.value.errno == errno.EAFNOSUPPORT and "NFPROTO_IPV4" in str(err.value.hint)
