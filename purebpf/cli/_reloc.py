"""``purebpf reloc OBJ``: every CO-RE relocation with its reasoning."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Dict, List

from purebpf.cli._format import dump_json, jsonable


def run(args: argparse.Namespace) -> int:
    from purebpf.core_reloc import format_explanation, load_target_btf, relocate_object
    from purebpf.spec import ObjectSpec

    spec = ObjectSpec.from_file(args.object)
    names = [spec.program(n).name for n in args.prog] if args.prog else None
    target = load_target_btf(args.target_btf)
    result = relocate_object(spec, target, programs=names)
    failed = 0
    if args.json:
        doc: Dict[str, Any] = {"object": spec.name, "target_btf": args.target_btf or "running kernel",
                               "programs": {}}
        for name, prog in result.programs.items():
            records: List[Any] = [jsonable(e) for e in prog.explanations]
            doc["programs"][name] = {"relocations": records, "errors": [str(x) for x in prog.errors]}
            failed += len(prog.errors)
        dump_json(doc, sys.stdout)
    else:
        out = sys.stdout
        out.write(f"{spec.name}: CO-RE relocations against {args.target_btf or 'the running kernel'}\n")
        for name, prog in result.programs.items():
            if not prog.explanations and not prog.errors:
                continue
            out.write(f"\n{name}: {len(prog.explanations)} relocation(s)\n")
            for e in prog.explanations:
                for line in format_explanation(e).splitlines():
                    out.write("  " + line + "\n")
                out.write("\n")
            for err in prog.errors:
                out.write(f"  error: {err}\n")
                failed += 1
    return 1 if failed else 0
