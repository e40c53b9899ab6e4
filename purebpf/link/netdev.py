"""Network attachments through BPF links: XDP on a device, tcx
ingress/egress, and cgroup hooks.

* XDP: ``BPF_LINK_CREATE(prog, ifindex, BPF_XDP, flags)`` (Linux 5.9), flags
  choosing the mode (``XDP_FLAGS_SKB_MODE`` = 2 generic, ``DRV_MODE`` = 4,
  ``HW_MODE`` = 8).
* tcx: ``BPF_LINK_CREATE(prog, ifindex, BPF_TCX_INGRESS/EGRESS)`` (Linux 6.6).
* netkit: ``BPF_LINK_CREATE(prog, ifindex, BPF_NETKIT_PRIMARY/PEER)``
  (Linux 6.7) on a netkit device (its primary side or its peer).
* cgroup: ``BPF_LINK_CREATE(prog, cgroup_dir_fd, attach_type)`` (Linux 5.7),
  the cgroup given by its cgroupfs directory.
* netfilter: ``BPF_LINK_CREATE(prog, 0, BPF_NETFILTER)`` (Linux 6.4) with
  ``attr.netfilter`` = protocol family (``NFPROTO_IPV4`` 2, ``NFPROTO_IPV6``
  10), hook (``NF_INET_PRE_ROUTING`` 0 ... ``NF_INET_POST_ROUTING`` 4),
  priority (any int but ``INT_MIN``/``INT_MAX``, the kernel's first/last
  slots) and flags (``BPF_F_NETFILTER_IP_DEFRAG`` 1).
"""

from __future__ import annotations

import errno
import os
import socket
from typing import TYPE_CHECKING, Optional, Union

from purebpf.errors import AttachError, KernelError
from purebpf.link._common import check_type
from purebpf.link._link import Link, attach_error
from purebpf.uapi import AttachType, ProgType

if TYPE_CHECKING:  # pragma: no cover
    from purebpf.program import Program

__all__ = ["attach_xdp", "attach_tcx", "attach_netkit", "attach_cgroup", "attach_netfilter",
           "ifindex_of", "NFPROTO_IPV4", "NFPROTO_IPV6", "NF_INET_HOOKS", "NETFILTER_IP_DEFRAG"]

NFPROTO_IPV4 = 2
NFPROTO_IPV6 = 10
#: ``enum nf_inet_hooks`` by name
NF_INET_HOOKS = {"pre_routing": 0, "local_in": 1, "forward": 2, "local_out": 3, "post_routing": 4}
#: ``BPF_F_NETFILTER_IP_DEFRAG``: hand the program defragmented packets
NETFILTER_IP_DEFRAG = 1


def ifindex_of(interface: Union[str, int]) -> int:
    """An interface index from a name (``"lo"``) or an index."""
    if isinstance(interface, int):
        return interface
    try:
        return socket.if_nametoindex(interface)
    except OSError as exc:
        raise AttachError(errno.ENODEV, "if_nametoindex", interface, hint="no such network interface") from exc


def attach_xdp(program: "Program", interface: Union[str, int], *, flags: int = 0) -> Link:
    """Attach an XDP program to ``interface`` (name or ifindex)."""
    target = f"xdp on {interface}"
    check_type(program, (ProgType.XDP,), "xdp", target)
    return _link_device(program, interface, AttachType.XDP, "xdp", target, flags=flags)


def _link_device(program: "Program", interface: Union[str, int], attach_type: AttachType, kind: str,
                 target: str, *, flags: int = 0, hint: Optional[str] = None) -> Link:
    """``BPF_LINK_CREATE(prog, ifindex, attach_type)``; ``hint`` explains EINVAL/ENXIO/EOPNOTSUPP."""
    ifindex = ifindex_of(interface)
    from purebpf.syscall import commands

    try:
        fd = commands.link_create(program.fd, ifindex, attach_type, flags=flags)
    except KernelError as exc:
        why = hint if exc.errno in (errno.EINVAL, errno.ENXIO, errno.EOPNOTSUPP) else None
        raise attach_error(exc, target, hint=why, detail=f"{kind} program {program.name!r}") from exc
    return Link(fd, kind=kind, target=target, program=program)


def attach_tcx(program: "Program", interface: Union[str, int], *, egress: Optional[bool] = None) -> Link:
    """Attach a tcx program (``SEC("tcx/ingress")``...) to ``interface``."""
    if egress is None:
        eat = program.expected_attach_type
        egress = eat is not None and int(eat) == int(AttachType.TCX_EGRESS)
    direction = "egress" if egress else "ingress"
    target = f"tcx/{direction} on {interface}"
    check_type(program, (ProgType.SCHED_CLS,), "tcx", target)
    at = AttachType.TCX_EGRESS if egress else AttachType.TCX_INGRESS
    return _link_device(program, interface, at, "tcx", target)


def attach_netkit(program: "Program", interface: Union[str, int], *, peer: Optional[bool] = None) -> Link:
    """Attach a netkit program (``SEC("netkit/primary")`` / ``netkit/peer``) to the
    netkit device ``interface`` (the peer side with ``peer=True``)."""
    if peer is None:
        eat = program.expected_attach_type
        peer = eat is not None and int(eat) == int(AttachType.NETKIT_PEER)
    side = "peer" if peer else "primary"
    target = f"netkit/{side} on {interface}"
    check_type(program, (ProgType.SCHED_CLS,), "netkit", target)
    at = AttachType.NETKIT_PEER if peer else AttachType.NETKIT_PRIMARY
    return _link_device(program, interface, at, "netkit", target,
                        hint=f"{interface} must be a netkit device (Linux 6.7)")


def attach_netfilter(program: "Program", *, pf: Union[int, str] = NFPROTO_IPV4,
                     hook: Union[int, str] = "local_in", priority: int = 0, flags: int = 0) -> Link:
    """Attach a netfilter program (``SEC("netfilter")``) at ``hook`` of family ``pf``.

    ``pf`` is ``NFPROTO_IPV4``/``NFPROTO_IPV6`` or ``"ipv4"``/``"ipv6"``;
    ``hook`` a ``NF_INET_*`` number or name (``"local_out"``).  Several
    programs on one hook run by ascending ``priority``.
    """
    if isinstance(pf, str):
        families = {"ipv4": NFPROTO_IPV4, "ipv6": NFPROTO_IPV6}
        if pf.lower() not in families:
            raise AttachError(errno.EINVAL, "attach", f"netfilter {pf}", detail="pf must be ipv4 or ipv6")
        pf = families[pf.lower()]
    if isinstance(hook, str):
        if hook.lower() not in NF_INET_HOOKS:
            raise AttachError(errno.EINVAL, "attach", f"netfilter {hook}",
                              detail=f"hook must be one of {sorted(NF_INET_HOOKS)}")
        hook = NF_INET_HOOKS[hook.lower()]
    names = {v: k for k, v in NF_INET_HOOKS.items()}
    family = {NFPROTO_IPV4: "ipv4", NFPROTO_IPV6: "ipv6"}.get(pf, str(pf))
    target = f"netfilter {family}/{names.get(hook, hook)} priority {priority}"
    check_type(program, (ProgType.NETFILTER,), "netfilter", target)
    from purebpf.syscall import commands

    try:
        fd = commands.link_create(program.fd, 0, AttachType.NETFILTER, netfilter_pf=pf,
                                  netfilter_hooknum=hook, netfilter_priority=priority,
                                  netfilter_flags=flags)
    except KernelError as exc:
        hint = None
        if exc.errno == errno.EBUSY:
            hint = "another program holds this hook at the same priority"
        elif exc.errno == errno.ERANGE:
            hint = "priority INT_MIN and INT_MAX are reserved by the kernel"
        elif exc.errno == errno.EAFNOSUPPORT:
            hint = "pf must be NFPROTO_IPV4 (2) or NFPROTO_IPV6 (10)"
        raise attach_error(exc, target, hint=hint, detail=f"netfilter program {program.name!r}") from exc
    return Link(fd, kind="netfilter", target=target, program=program)


def attach_cgroup(program: "Program", cgroup: str, *, attach_type: Optional[int] = None) -> Link:
    """Attach a cgroup program to the cgroup directory ``cgroup``
    (``attach_type`` defaults to the program's expected attach type)."""
    if attach_type is None:
        attach_type = program.expected_attach_type
    if attach_type is None:
        raise AttachError(errno.EINVAL, "attach", cgroup,
                          detail=f"program {program.name!r}: no cgroup attach type known; pass attach_type=")
    try:
        dfd = os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise AttachError(exc.errno or errno.ENOENT, "open", cgroup, hint="no such cgroup directory") from exc
    from purebpf.syscall import commands

    try:
        fd = commands.link_create(program.fd, dfd, attach_type)
    except KernelError as exc:
        raise attach_error(exc, cgroup, detail=f"cgroup program {program.name!r}") from exc
    finally:
        os.close(dfd)
    return Link(fd, kind="cgroup", target=cgroup, program=program)
