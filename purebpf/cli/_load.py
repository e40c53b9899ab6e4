"""``purebpf load OBJ``: load every autoloaded program and map, like ``bpftool prog loadall``.

Prints per program its name, type, kernel id and translated instruction
count (``xlated_prog_len / 8`` from BPF_OBJ_GET_INFO_BY_FD), and per map its
name, type and id.  ``--set VAR=VALUE`` gives global variables initial values
before load, ``--pin-dir DIR`` pins every program and map under DIR on bpffs,
``--trace`` prints every bpf()/perf_event_open() call to stderr as it happens.

The kernel objects live only as long as something refers to them: this
command exits right after loading, so without ``--pin-dir`` everything is
released again when it ends (as with ``bpftool prog loadall`` without a pin
path) -- the command then only proves that the object loads.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, Optional, Tuple

from purebpf.errors import VerifierError

__all__ = ["run", "parse_assignment"]


def parse_assignment(text: str) -> Tuple[str, Any]:
    """``"VAR=VALUE"`` -> (name, value): integers in any base Python accepts
    (``10``, ``0x1f``, ``-3``), ``true``/``false``, else the text as bytes."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ValueError(f"--set expects VAR=VALUE, got {text!r}")
    value: Any
    low = raw.strip().lower()
    if low in ("true", "false"):
        value = low == "true"
    else:
        try:
            value = int(raw.strip(), 0)
        except ValueError:
            value = raw.encode()
    return name, value


def _type_name(value: Any) -> str:
    name = getattr(value, "name", None)
    return str(name).lower() if name else str(int(value))


def _describe(obj: Any) -> Dict[str, Any]:
    progs = []
    for name, prog in obj.programs.items():
        info = prog.info()
        progs.append({"name": name, "type": _type_name(prog.prog_type), "id": info.id,
                      "xlated_insns": info.xlated_insn_count})
    maps = []
    for name, m in obj.maps.items():
        maps.append({"name": name, "type": _type_name(m.type), "id": int(m.id)})
    return {"programs": progs, "maps": maps}


def _print_text(desc: Dict[str, Any], pins: Optional[str]) -> None:
    out = sys.stdout
    for p in desc["programs"]:
        out.write(f"prog {p['name']}: type {p['type']} id {p['id']} xlated_insns {p['xlated_insns']}\n")
    for m in desc["maps"]:
        out.write(f"map {m['name']}: type {m['type']} id {m['id']}\n")
    if pins:
        out.write(f"pinned under {pins}\n")


def run(args: argparse.Namespace) -> int:
    """Run ``purebpf load``; returns the exit status (1 on a verifier rejection)."""
    from purebpf.object import open_object

    hook = None
    if getattr(args, "trace", False):
        from purebpf.syscall.trace import add_trace_hook

        def _emit(record: Any) -> None:
            sys.stderr.write(record.format() + "\n")
            sys.stderr.flush()

        hook = add_trace_hook(_emit)
    try:
        opened = open_object(args.object, target_btf=args.target_btf)
        for assignment in args.set or []:
            try:
                name, value = parse_assignment(assignment)
            except ValueError as exc:
                sys.stderr.write(f"purebpf: error: {exc}\n")
                return 2
            opened.globals[name] = value
        try:
            obj = opened.load()
        except VerifierError as exc:
            short = exc.summary or "rejected (see the verifier log)"
            sys.stderr.write(f"purebpf: error: program {exc.program!r} rejected by the kernel: {short}\n")
            if exc.hint:
                sys.stderr.write(f"hint: {exc.hint}\n")
            return 1
        with obj:
            if args.pin_dir:
                obj.pin_all(args.pin_dir)
            desc = _describe(obj)
            if args.json:
                if args.pin_dir:
                    desc["pin_dir"] = args.pin_dir
                json.dump(desc, sys.stdout, indent=2)
                sys.stdout.write("\n")
            else:
                _print_text(desc, args.pin_dir)
        return 0
    finally:
        if hook is not None:
            from purebpf.syscall.trace import remove_trace_hook

            remove_trace_hook(hook)
