"""The ``purebpf`` command line (placeholder until the sub-commands land)."""

from __future__ import annotations

from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    raise SystemExit("purebpf: no commands yet")
