"""``purebpf btf dump FILE``: raw (bpftool's text), JSON, or C (a vmlinux.h)."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional


def _resolve_roots(btf: "object", names: Optional[List[str]]) -> Optional[List[int]]:
    from purebpf.btf import Btf
    from purebpf.errors import NotFoundError

    assert isinstance(btf, Btf)
    if not names:
        return None
    ids: List[int] = []
    for name in names:
        if name.isdigit():
            ids.append(int(name))
            continue
        # "struct foo", "union foo", "enum foo" or a bare name
        kind_word, _, bare = name.partition(" ")
        wanted = bare if bare else name
        found = btf.find_by_name(wanted)
        if bare:
            from purebpf.btf.types import BtfKind

            kinds = {"struct": {BtfKind.STRUCT}, "union": {BtfKind.UNION},
                     "enum": {BtfKind.ENUM, BtfKind.ENUM64}}.get(kind_word)
            if kinds is None:
                raise NotFoundError("type", name, detail="write 'struct NAME', 'union NAME', 'enum NAME' or a bare name")
            found = [i for i in found if btf[i].kind in kinds]
        if not found:
            raise NotFoundError("type", name)
        ids.extend(found)
    return ids


def run(args: argparse.Namespace) -> int:
    from purebpf.btf import Btf

    base = Btf.from_file(args.base) if args.base else None
    btf = Btf.from_file(args.file, base=base)
    if args.format == "raw":
        from purebpf.btf.dump_raw import dump_raw

        text = dump_raw(btf)
    elif args.format == "json":
        from purebpf.btf.dump_json import dump_json

        text = dump_json(btf)
    else:
        from purebpf.btf.dump_c import dump_c

        text = dump_c(btf, root_types=_resolve_roots(btf, args.root))
    # BTF names are bytes; names that are not UTF-8 were decoded with
    # surrogateescape and go back out as the very same bytes (as bpftool prints them).
    sys.stdout.flush()
    sys.stdout.buffer.write(text.encode("utf-8", "surrogateescape"))
    sys.stdout.buffer.flush()
    return 0
