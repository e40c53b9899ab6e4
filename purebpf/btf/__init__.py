"""BTF: the BPF Type Format (include/uapi/linux/btf.h).

:class:`Btf` reads a type table (``.BTF`` of an object, ``/sys/kernel/btf``),
:class:`BtfExt` the ``.BTF.ext`` records (func_info, line_info, CO-RE
relocations).  The type classes live in :mod:`purebpf.btf.types`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from purebpf.btf.btf import Btf, BtfHeader
from purebpf.btf.types import *  # noqa: F401,F403  (re-exported)
from purebpf.btf.types import __all__ as _types_all

__all__ = ["Btf", "BtfHeader", "BtfExt", "BtfExtHeader", "CoreReloKind", "FuncInfo", "LineInfo",
           "CoreRelo", *_types_all]


if TYPE_CHECKING:  # pragma: no cover
    from purebpf.btf.ext import BtfExt, BtfExtHeader, CoreRelo, CoreReloKind, FuncInfo, LineInfo


def __getattr__(name: str) -> object:
    # .BTF.ext support is imported on first use.
    if name in ("BtfExt", "BtfExtHeader", "CoreReloKind", "FuncInfo", "LineInfo", "CoreRelo"):
        from purebpf.btf import ext

        return getattr(ext, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
