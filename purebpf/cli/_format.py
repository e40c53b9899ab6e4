"""Presentation helpers shared by the sub-commands: tables and JSON."""

from __future__ import annotations

import dataclasses
import enum
import json
from typing import Any, Iterable, List, Sequence, TextIO


def table(rows: Sequence[Sequence[object]], headers: Sequence[str], out: TextIO, indent: str = "  ") -> None:
    """Print ``rows`` as left-aligned columns under ``headers``."""
    text_rows: List[List[str]] = [[str(c) for c in headers]] + [[_cell(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in text_rows) for i in range(len(headers))]
    for r in text_rows:
        line = "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
        out.write(indent + line + "\n")


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, enum.Enum):
        return enum_name(value)
    return str(value)


def enum_name(value: object) -> str:
    """``MapType.HASH`` -> ``hash``; plain ints stay numbers; None -> ``-``."""
    if value is None:
        return "-"
    if isinstance(value, enum.Enum) and value.name:
        return value.name.lower()
    return str(value)


def flags_text(value: int, flag_enum: Any) -> str:
    """Render a flags word as ``NO_PREALLOC|RDONLY_PROG`` (``0`` when empty)."""
    if not value:
        return "0"
    names = []
    rest = value
    for member in flag_enum:
        bit = int(member)
        if bit and bit & (bit - 1) == 0 and value & bit:
            names.append(member.name)
            rest &= ~bit
    if rest:
        names.append(hex(rest))
    return "|".join(names)


def jsonable(obj: Any) -> Any:
    """Turn specs (frozen dataclasses, enums, tuples, bytes) into JSON-ready data."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if not f.name.startswith("_")}
    if isinstance(obj, enum.Enum):
        return obj.name.lower() if obj.name else int(obj.value)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj).hex()
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in obj]
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        return jsonable(to_dict())
    return str(obj)


def dump_json(data: Any, out: TextIO) -> None:
    json.dump(data, out, indent=2, sort_keys=False)
    out.write("\n")


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def join(items: Iterable[str]) -> str:
    return ", ".join(items) or "-"
