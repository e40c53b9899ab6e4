"""netkit links: programs on both sides of a netkit pair, fired by real packets.

The pair is made here with one RTM_NEWLINK message (netkit is newer than
this machine's iproute2): the primary device stays in this namespace, its
peer goes to a fresh network namespace.  UDP datagrams of a length nothing
else sends cross the pair in each direction; the oracle is the number of
datagrams this test sent.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import struct
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from purebpf.errors import AttachError
from purebpf.link import attach_netkit, attach_program
from purebpf.object import Object, open_object

HELPERS = Path(__file__).resolve().parent / "helpers"
NETNS = "purebpf_nk"
PRIMARY, PEER = "pbnk0", "pbnk1"
HOST_IP, PEER_IP = "10.211.77.1", "10.211.77.2"
UDP_PAYLOAD = 555
IP_LEN = 20 + 8 + UDP_PAYLOAD

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (kernel tests)")

# rtnetlink numbers (linux/rtnetlink.h, linux/if_link.h)
RTM_NEWLINK, NLMSG_ERROR = 16, 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
NLA_F_NESTED = 0x8000
IFLA_IFNAME, IFLA_LINKINFO, IFLA_INFO_KIND, IFLA_INFO_DATA = 3, 18, 1, 2
IFLA_NETKIT_PEER_INFO = 1


def _nla(kind: int, payload: bytes) -> bytes:
    size = 4 + len(payload)
    return struct.pack("=HH", size, kind) + payload + bytes(-size % 4)


def create_netkit_pair(primary: str, peer: str) -> None:
    """RTM_NEWLINK kind "netkit" (default L3 mode) with a named peer; raises OSError."""
    ifinfo = struct.pack("=BxHiII", socket.AF_UNSPEC, 0, 0, 0, 0)
    peer_info = ifinfo + _nla(IFLA_IFNAME, peer.encode() + b"\0")
    data = _nla(IFLA_NETKIT_PEER_INFO, peer_info)
    linkinfo = _nla(IFLA_INFO_KIND, b"netkit\0") + _nla(IFLA_INFO_DATA | NLA_F_NESTED, data)
    body = ifinfo + _nla(IFLA_IFNAME, primary.encode() + b"\0") + _nla(IFLA_LINKINFO | NLA_F_NESTED, linkinfo)
    flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
    msg = struct.pack("=IHHII", 16 + len(body), RTM_NEWLINK, flags, 1, 0) + body
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0) as nl:  # NETLINK_ROUTE
        nl.send(msg)
        reply = nl.recv(65536)
    _size, mtype = struct.unpack_from("=IH", reply)
    if mtype == NLMSG_ERROR:
        (err,) = struct.unpack_from("=i", reply, 16)
        if err:
            raise OSError(-err, f"RTM_NEWLINK netkit: {os.strerror(-err)}")


def _ip(*args: str) -> None:
    ip = shutil.which("ip")
    if ip is None:
        pytest.fail("test tool ip (iproute2) is not installed")
    subprocess.run([ip, *args], check=True, capture_output=True)


def _cleanup() -> None:
    subprocess.run(["ip", "netns", "del", NETNS], capture_output=True)
    subprocess.run(["ip", "link", "del", PRIMARY], capture_output=True)


@pytest.fixture(scope="module")
def pair() -> Iterator[None]:
    _cleanup()
    try:
        create_netkit_pair(PRIMARY, PEER)
    except OSError as exc:
        if exc.errno == errno.EOPNOTSUPP:
            pytest.skip("kernel feature missing: netkit devices (CONFIG_NETKIT)")
        raise
    try:
        _ip("netns", "add", NETNS)
        _ip("link", "set", PEER, "netns", NETNS)
        _ip("addr", "add", f"{HOST_IP}/30", "dev", PRIMARY)
        _ip("link", "set", PRIMARY, "up")
        _ip("-n", NETNS, "addr", "add", f"{PEER_IP}/30", "dev", PEER)
        _ip("-n", NETNS, "link", "set", PEER, "up")
        _ip("-n", NETNS, "link", "set", "lo", "up")
        yield
    finally:
        _cleanup()


@pytest.fixture
def obj(tmp_path: Path) -> Iterator[Object]:
    out = tmp_path / "link_netkit.bpf.o"
    clang = shutil.which("clang-19")
    if clang is None:
        pytest.fail("test tool clang-19 is not installed")
    subprocess.run([clang, "-O2", "-g", "-target", "bpf", "-c", str(HELPERS / "link_netkit.bpf.c"),
                    "-o", str(out)], check=True)
    with open_object(str(out)) as opened:
        opened.rodata["match_len"] = IP_LEN
        with opened.load() as loaded:
            yield loaded


def send_from_host(count: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(count):
            s.sendto(b"k" * UDP_PAYLOAD, (PEER_IP, 9))


def send_from_peer(count: int) -> None:
    code = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            f"for _ in range({count}): s.sendto(b'k' * {UDP_PAYLOAD}, ('{HOST_IP}', 9))")
    _ip("netns", "exec", NETNS, sys.executable, "-c", code)


def test_netkit_primary_and_peer_links(pair: None, obj: Object) -> None:
    with obj.programs["count_primary"].attach(interface=PRIMARY) as primary:
        assert primary.kind == "netkit" and primary.target == f"netkit/primary on {PRIMARY}"
        info = primary.info()
        assert info["type"] == "NETKIT"
        assert info["netkit"]["ifindex"] == socket.if_nametoindex(PRIMARY)
        send_from_host(12)
        assert obj.bss["primary_hits"] == 12
        with attach_program(obj.programs["count_peer"], interface=PRIMARY) as peer:
            assert peer.target == f"netkit/peer on {PRIMARY}"
            send_from_peer(7)
            assert obj.bss["peer_hits"] == 7
            assert obj.bss["primary_hits"] == 12  # that way only the peer side runs
    send_from_host(4)
    send_from_peer(4)
    assert (obj.bss["primary_hits"], obj.bss["peer_hits"]) == (12, 7), "still runs after close"


def test_netkit_on_a_device_that_is_not_netkit(obj: Object) -> None:
    with pytest.raises(AttachError) as err:
        attach_netkit(obj.programs["count_primary"], "lo")
    assert "netkit/primary on lo" in str(err.value)
    assert err.value.hint is not None and "netkit device" in err.value.hint
    with pytest.raises(AttachError, match="no such network interface"):
        attach_netkit(obj.programs["count_primary"], "no_such_dev0")
