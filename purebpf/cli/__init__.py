"""The ``purebpf`` command: a thin layer over the public API.

Sub-commands live in their own modules and are imported only when chosen, so
``purebpf btf dump`` never pays for the ELF reader and vice versa.

    purebpf inspect OBJ [--json]
    purebpf disasm OBJ [--prog NAME] [--relocated [--target-btf FILE]]
    purebpf btf dump FILE [--format raw|json|c] [--base FILE] [--root TYPE ...]
    purebpf reloc OBJ [--target-btf FILE] [--prog NAME] [--json]
    purebpf load OBJ [--target-btf FILE] [--set VAR=VALUE ...] [--pin-dir DIR] [--json] [--trace]
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

__all__ = ["main"]


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="purebpf",
        description="Inspect, relocate and load compiled BPF objects, in pure Python.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("inspect", help="show programs, maps, global data, externs and relocations of an object")
    p.add_argument("object", metavar="OBJ", help="a compiled BPF object (*.bpf.o)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--sections", action="store_true", help="also list ELF sections and symbols")
    p.set_defaults(module="inspect")

    p = sub.add_parser("disasm", help="disassemble programs with maps, globals, helpers, calls and source lines")
    p.add_argument("object", metavar="OBJ")
    p.add_argument("--prog", action="append", metavar="NAME", help="only this program (repeatable)")
    p.add_argument("--relocated", action="store_true", help="show instructions after CO-RE relocation")
    p.add_argument("--target-btf", metavar="FILE",
                   help="relocate against this BTF (raw or ELF) instead of the running kernel's")
    p.add_argument("--no-source", action="store_true", help="do not print C source lines")
    p.set_defaults(module="disasm")

    p = sub.add_parser("btf", help="BTF tools")
    btf_sub = p.add_subparsers(dest="btf_command", metavar="BTF_COMMAND")
    btf_sub.required = True
    d = btf_sub.add_parser("dump", help="dump the BTF of an object or a raw BTF file")
    d.add_argument("file", metavar="FILE", help="raw BTF (e.g. /sys/kernel/btf/vmlinux) or an ELF object")
    d.add_argument("--format", choices=("raw", "json", "c"), default="raw")
    d.add_argument("--base", metavar="FILE", help="base BTF for split BTF (e.g. vmlinux for a module)")
    d.add_argument("--root", action="append", metavar="TYPE",
                   help="with --format c: only types reachable from this type (name or id; repeatable)")
    d.set_defaults(module="btf")

    p = sub.add_parser("reloc", help="explain every CO-RE relocation of an object")
    p.add_argument("object", metavar="OBJ")
    p.add_argument("--target-btf", metavar="FILE",
                   help="relocate against this BTF (raw or ELF) instead of the running kernel's")
    p.add_argument("--prog", action="append", metavar="NAME", help="only this program (repeatable)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(module="reloc")

    p = sub.add_parser("load", help="load every autoloaded program and map into the kernel (needs root)")
    p.add_argument("object", metavar="OBJ")
    p.add_argument("--target-btf", metavar="FILE", help="CO-RE relocate against this BTF instead of the kernel's")
    p.add_argument("--set", action="append", metavar="VAR=VALUE", default=[],
                   help="set a global variable (.rodata/.data/.bss) before load (repeatable)")
    p.add_argument("--pin-dir", metavar="DIR", help="pin every program and map under DIR (on bpffs)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--trace", action="store_true",
                   help="print every bpf()/perf_event_open() call with decoded attributes and result")
    p.set_defaults(module="load")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``purebpf`` console script; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    module = importlib.import_module(f"purebpf.cli._{args.module}")
    from purebpf.errors import PurebpfError

    try:
        status: int = module.run(args)
    except PurebpfError as exc:
        print(f"purebpf: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `purebpf ... | head`
        try:
            sys.stdout.close()
        except OSError:
            pass
        return 0
    return status
