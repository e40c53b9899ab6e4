"""The orchestrator: open a BPF object, adjust it, load it into the kernel.

This is the one module that imports from both sides of the spec/live
boundary.  The flow mirrors libbpf's skeleton phases (``bpf_object__open`` ->
``bpf_object__load``), checked at run time:

1. :func:`open_object` reads the ELF into an :class:`~purebpf.spec.ObjectSpec`
   and returns an :class:`OpenObject`.  Nothing is in the kernel yet: programs
   can be switched off (``autoload``) or retyped, maps resized or pinned,
   global variables (``.rodata``/``.data``/``.bss``) given initial values.
2. :meth:`OpenObject.load` does what libbpf's ``bpf_object_load`` does, in the
   same order: resolve ``.kconfig``/``.ksyms`` externs, CO-RE relocate against
   the kernel's BTF, load the object's (fixed-up, sanitised) BTF with
   BPF_BTF_LOAD, create the maps (data sections with their initial bytes,
   ``.rodata``/``.kconfig`` frozen; pinned maps reused when compatible; inner
   maps of map-in-maps filled), link each program (subprograms appended,
   ld_imm64 map/global/extern references resolved) and BPF_PROG_LOAD it, then
   fill prog arrays.  Any failure closes every fd made so far and removes the
   pins made so far: nothing leaks.
3. The resulting :class:`Object` owns every map and program fd; data sections
   are mmap'ed so user space and programs share the variables.  Closing it
   (or leaving its ``with`` block) releases everything not pinned.
"""

from __future__ import annotations

import errno
import logging
import os
import re
from dataclasses import replace
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from purebpf.errors import (
    BtfLoadError,
    KernelError,
    NotFoundError,
    NotSupportedError,
    PurebpfError,
    StateError,
    VerifierError,
)
from purebpf.program import Program
from purebpf.uapi import AttachType, MapType, PinType, ProgFlags, ProgType

if TYPE_CHECKING:  # pragma: no cover
    from purebpf.btf import Btf
    from purebpf.loader.linker import KfuncTarget, KsymTarget
    from purebpf.maps import GlobalData, Map
    from purebpf.link import Link
    from purebpf.spec import (
        DataSectionSpec,
        ExternSpec,
        MapSpec,
        ObjectSpec,
        ProgramSpec,
    )
    from purebpf.syscall import FD

__all__ = ["open_object", "OpenObject", "OpenProgram", "OpenMap", "Object", "Globals", "object_name",
           "pin_name", "verifier_summary"]

log = logging.getLogger(__name__)

#: BPF_OBJ_NAME_LEN from <linux/bpf.h>: names of maps and programs, NUL included.
OBJ_NAME_LEN = 16
#: First verifier log buffer (libbpf starts with 64 KiB too) and the largest one tried.
LOG_BUF_START = 64 * 1024
LOG_BUF_MAX = 16 * 1024 * 1024



# ---------------------------------------------------------------------------
# naming rules (libbpf: bpf_object__new, internal_map_name)
# ---------------------------------------------------------------------------

def object_name(path: str) -> str:
    """libbpf's ``obj->name``: the file's base name, cut at the first dot,
    at most 15 characters (``"globals.bpf.o"`` -> ``"globals"``)."""
    base = os.path.basename(path)[: OBJ_NAME_LEN - 1]
    return base.split(".", 1)[0]


def pin_name(name: str) -> str:
    """The file name an object called ``name`` is pinned under (dots -> ``_``)."""
    return name.replace(".", "_")


# ---------------------------------------------------------------------------
# open phase
# ---------------------------------------------------------------------------

class OpenProgram:
    """A program of an :class:`OpenObject`: what BPF_PROG_LOAD will be given.

    ``autoload`` (False for ``SEC("?...")`` programs) decides whether it is
    loaded; ``prog_type``, ``expected_attach_type`` and ``attach_target`` start
    as the section name says and may be overridden; ``flags`` are the
    ``BPF_F_*`` program flags (``SLEEPABLE``, ``XDP_HAS_FRAGS``...).
    """

    def __init__(self, spec: "ProgramSpec") -> None:
        self.spec = spec
        self.name = spec.name
        self.autoload: bool = spec.autoload
        self.prog_type: Union[ProgType, int] = spec.prog_type
        self.expected_attach_type: Optional[Union[AttachType, int]] = spec.expected_attach_type
        self.attach_target: Optional[str] = spec.attach_target
        flags = int(spec.kind.prog_flags) if spec.kind is not None else 0
        if spec.sleepable:
            flags |= int(ProgFlags.SLEEPABLE)
        self.flags: int = flags

    def __repr__(self) -> str:
        return f"<OpenProgram {self.name!r} autoload={self.autoload}>"


class OpenMap:
    """A map of an :class:`OpenObject` before creation.

    ``max_entries`` may be changed; ``value_size`` only for maps whose value
    has no BTF type to contradict it; ``pin_path`` (default: ``pin_root/name``
    for ``__uint(pinning, LIBBPF_PIN_BY_NAME)`` maps) pins the map at load, and
    ``reuse_pinned`` reuses a compatible map already pinned there.
    """

    def __init__(self, spec: "MapSpec", pin_root: str) -> None:
        self.spec = spec
        self.name = spec.name
        self._max_entries = spec.max_entries
        self._value_size = spec.value_size
        self.pin_path: Optional[str] = (os.path.join(pin_root, spec.name)
                                        if int(spec.pinning) == int(PinType.BY_NAME) else None)
        self.reuse_pinned: bool = True

    @property
    def max_entries(self) -> int:
        return self._max_entries

    @max_entries.setter
    def max_entries(self, value: int) -> None:
        if not isinstance(value, int) or value < 0 or value >= 1 << 32:
            raise ValueError(f"map {self.name!r}: max_entries must be a u32, got {value!r}")
        self._max_entries = value

    @property
    def value_size(self) -> int:
        return self._value_size

    @value_size.setter
    def value_size(self, value: int) -> None:
        if self.spec.value_type_id:
            raise StateError(f"map {self.name!r}: value_size is fixed by its BTF value type")
        if not isinstance(value, int) or value < 0 or value >= 1 << 32:
            raise ValueError(f"map {self.name!r}: value_size must be a u32, got {value!r}")
        self._value_size = value

    def effective_spec(self) -> "MapSpec":
        """The spec with this open map's adjustments applied (a copy)."""
        if self._max_entries == self.spec.max_entries and self._value_size == self.spec.value_size:
            return self.spec
        return replace(self.spec, max_entries=self._max_entries, value_size=self._value_size)

    def __repr__(self) -> str:
        return f"<OpenMap {self.name!r} max_entries={self.max_entries}>"


def open_object(path_or_spec: "Union[str, os.PathLike[str], ObjectSpec]", *,
                target_btf: Optional[str] = None, pin_root: str = "/sys/fs/bpf") -> "OpenObject":
    """Read a BPF object (a path or an already read spec); nothing enters the kernel.

    ``target_btf`` is a BTF file to CO-RE relocate against instead of the
    running kernel's; ``pin_root`` is where ``LIBBPF_PIN_BY_NAME`` maps are
    pinned (libbpf's default too).
    """
    from purebpf.spec import ObjectSpec

    if isinstance(path_or_spec, ObjectSpec):
        spec = path_or_spec
    else:
        spec = ObjectSpec.from_file(path_or_spec)
    return OpenObject(spec, target_btf=target_btf, pin_root=pin_root)


class _StandardSections:
    """``.rodata``/``.data``/``.bss`` shortcuts over the subclass's ``data_section``."""

    def data_section(self, name: str) -> "GlobalData":
        raise NotImplementedError

    @property
    def rodata(self) -> "GlobalData":
        return self.data_section(".rodata")

    @property
    def data(self) -> "GlobalData":
        return self.data_section(".data")

    @property
    def bss(self) -> "GlobalData":
        return self.data_section(".bss")


class OpenObject(_StandardSections):
    """An object read but not loaded (phase 1 of open -> load -> close).

    ``programs`` and ``maps`` are dicts of :class:`OpenProgram` and
    :class:`OpenMap` by name; ``rodata``/``data``/``bss``/``data_section(name)``
    give :class:`~purebpf.maps.GlobalData` views editing the initial bytes;
    ``globals`` finds a variable in whichever section holds it.
    """

    def __init__(self, spec: "ObjectSpec", *, target_btf: Optional[str] = None,
                 pin_root: str = "/sys/fs/bpf") -> None:
        self.spec = spec
        self.name = object_name(spec.name)
        self.target_btf = target_btf
        self.pin_root = pin_root
        self.programs: Dict[str, OpenProgram] = {p.name: OpenProgram(p) for p in spec.programs}
        self.maps: Dict[str, OpenMap] = {m.name: OpenMap(m, pin_root) for m in spec.maps}
        self._views: Dict[str, "GlobalData"] = {}
        self._state = "open"
        #: ``CONFIG_*``/``LINUX_*`` values overriding the kernel's (libbpf's
        #: ``kconfig`` open option), as the text a config file would hold.
        self.kconfig: Dict[str, str] = {}

    # -- global data ------------------------------------------------------------

    def data_section(self, name: str) -> "GlobalData":
        """The open-phase view of data section ``name`` (edits its initial bytes)."""
        self._check_open()
        view = self._views.get(name)
        if view is None:
            sec = self.spec.data_section(name)
            if sec.kind not in ("data", "rodata", "bss"):
                raise NotFoundError("data section", name, detail=f"{sec.kind} sections have no user view")
            view = _open_view(self.spec, sec)
            self._views[name] = view
        return view

    @property
    def globals(self) -> "Globals":
        """All user-visible variables, whichever section holds them."""
        self._check_open()
        names = [s.name for s in self.spec.data_sections if s.kind in ("data", "rodata", "bss")]
        return Globals(lambda n: self.data_section(n), names, self.spec)

    def _view_for_load(self, sec: "DataSectionSpec") -> "GlobalData":
        view = self._views.get(sec.name)
        if view is None:
            view = _open_view(self.spec, sec)
            self._views[sec.name] = view
        return view

    # -- load ------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._state != "open":
            raise StateError(f"object {self.name!r} is {self._state}; this needs an open (unloaded) object")

    def load(self, *, log_level: int = 0, log_size: int = 0) -> "Object":
        """Load maps and autoloaded programs into the kernel; return the live :class:`Object`.

        ``log_level``/``log_size`` ask for the verifier log of successful loads
        too (kept in ``Program.log``); a rejection always retries with a log.
        On any failure every fd made so far is closed and every pin made so
        far removed before the error propagates.
        """
        self._check_open()
        loader = _Loader(self, log_level=log_level, log_size=log_size)
        obj = loader.run()
        self._state = "loaded"
        return obj

    def close(self) -> None:
        """A no-op: an object that is not loaded holds nothing in the kernel.

        (The :class:`Object` returned by :meth:`load` owns the kernel objects
        and has its own ``close``.)
        """

    def __enter__(self) -> "OpenObject":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<OpenObject {self.name!r} {self._state} programs={list(self.programs)} maps={list(self.maps)}>"


class Globals:
    """Variables by name across ``.data``, ``.rodata``, ``.bss`` and custom sections."""

    def __init__(self, view_of: Callable[[str], "GlobalData"], sections: Sequence[str],
                 spec: "ObjectSpec") -> None:
        self._view_of = view_of
        self._sections = list(sections)
        self._spec = spec

    def _section_of(self, name: str) -> str:
        for sec in self._spec.data_sections:
            if sec.name in self._sections:
                for var in sec.variables:
                    if var.name == name:
                        return sec.name
        raise NotFoundError("variable", name, candidates=[
            v.name for s in self._spec.data_sections if s.name in self._sections for v in s.variables])

    def __getitem__(self, name: str) -> Any:
        return self._view_of(self._section_of(name))[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self._view_of(self._section_of(name))[name] = value

    def __contains__(self, name: object) -> bool:
        try:
            self._section_of(str(name))
        except NotFoundError:
            return False
        return True

    def section_of(self, name: str) -> str:
        """Which data section holds variable ``name``."""
        return self._section_of(name)


def _open_view(spec: "ObjectSpec", sec: "DataSectionSpec") -> "GlobalData":
    from purebpf.maps.globals import GlobalData

    order = "little" if spec.byteorder in ("little", "<", "le") else "big"
    return GlobalData(sec, spec.btf, byteorder=order)


# ---------------------------------------------------------------------------
# live object
# ---------------------------------------------------------------------------

class Object(_StandardSections):
    """A loaded object: owns its maps, programs and BTF fd.

    ``maps[name]`` -> :class:`~purebpf.maps.Map`, ``programs[name]`` ->
    :class:`~purebpf.program.Program`, ``rodata``/``data``/``bss``/
    ``data_section(name)`` -> mmap'ed :class:`~purebpf.maps.GlobalData`.
    Data-section maps are also in ``maps`` under their kernel names
    (``"globals.bss"``).
    """

    def __init__(self, spec: "ObjectSpec", name: str, maps: Dict[str, "Map"],
                 programs: Dict[str, Program], views: Dict[str, "GlobalData"],
                 btf_fd: "Optional[FD]", section_maps: Dict[str, str]) -> None:
        self.spec = spec
        self.name = name
        self.maps: Dict[str, "Map"] = _MapDict(maps, section_maps)
        self.programs = programs
        self._views = views
        self._btf_fd = btf_fd
        self._section_maps = section_maps
        self._closed = False
        self._struct_ops: Dict[str, bytes] = {}
        self._links: Dict[str, "Link"] = {}

    @property
    def btf_fd(self) -> "Optional[FD]":
        """The fd of the object's BTF in the kernel (None if it was not loaded)."""
        return self._btf_fd

    def _check(self) -> None:
        if self._closed:
            raise StateError(f"object {self.name!r} is closed")

    def data_section(self, name: str) -> "GlobalData":
        """The live (mmap'ed) view of data section ``name``."""
        self._check()
        view = self._views.get(name)
        if view is None:
            raise NotFoundError("data section", name, candidates=sorted(self._views))
        return view

    @property
    def globals(self) -> Globals:
        self._check()
        return Globals(self.data_section, list(self._views), self.spec)

    def map_of_section(self, section: str) -> "Map":
        """The array map backing data section ``section`` (``".bss"``...)."""
        self._check()
        name = self._section_maps.get(section)
        if name is None:
            raise NotFoundError("data section map", section, candidates=sorted(self._section_maps))
        return self.maps[name]

    def struct_ops_value(self, map_name: str) -> bytes:
        """The value to write into struct_ops map ``map_name`` to register it
        (the kernel's ``bpf_struct_ops_<type>`` with data members and program
        fds filled in); writing it is attaching, which load does not do."""
        self._check()
        try:
            return self._struct_ops[map_name]
        except KeyError:
            raise NotFoundError("struct_ops map", map_name, candidates=sorted(self._struct_ops)) from None

    def pin_all(self, directory: str) -> List[str]:
        """Pin every map and program under ``directory`` (bpffs) by name; returns the paths.

        bpffs refuses names with a dot, so -- as libbpf's ``sanitize_pin_path``
        -- dots become underscores (``globals.bss`` -> ``globals_bss``).
        """
        self._check()
        os.makedirs(directory, exist_ok=True)
        paths: List[str] = []
        things: List[Tuple[str, Any]] = [(pin_name(n), m) for n, m in self.maps.items()]
        things += [(pin_name(n), p) for n, p in self.programs.items()]
        try:
            for fname, thing in things:
                path = os.path.join(directory, fname)
                thing.pin(path)
                paths.append(path)
        except BaseException:
            for path in paths:  # all or nothing
                try:
                    os.unlink(path)
                except OSError:
                    log.debug("cannot remove pin %s", path, exc_info=True)
            raise
        return paths

    def attach_all(self) -> Dict[str, "Link"]:
        """Attach every loaded program whose section name says where (libbpf's
        skeleton ``attach``: programs without an auto-attach target, such as
        ``SEC("xdp")`` or ``SEC("perf_event")``, are skipped).

        Returns the new links by program name; the Object keeps them and
        closes them first in :meth:`close`.  All or nothing: on failure the
        links made by this call are closed and the error raised.
        """
        self._check()
        from purebpf.link import attach_program, can_auto_attach

        made: Dict[str, "Link"] = {}
        try:
            for name, prog in self.programs.items():
                if name in self._links or not can_auto_attach(prog):
                    continue
                made[name] = attach_program(prog)
        except BaseException:
            for link in made.values():
                _close_quietly(link)
            raise
        self._links.update(made)
        return made

    @property
    def links(self) -> Dict[str, "Link"]:
        """The links :meth:`attach_all` made, by program name."""
        return dict(self._links)

    def close(self) -> None:
        """Close every fd (idempotent).  Pinned objects live on in the kernel."""
        if self._closed:
            return
        self._closed = True
        for link in self._links.values():
            _close_quietly(link)
        for view in self._views.values():
            _close_quietly(view)
        for prog in self.programs.values():
            _close_quietly(prog)
        for m in self.maps.values():
            _close_quietly(m)
        if self._btf_fd is not None:
            _close_quietly(self._btf_fd)

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> "Object":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "loaded"
        return f"<Object {self.name!r} {state} programs={list(self.programs)} maps={list(self.maps)}>"


class _MapDict(Dict[str, "Map"]):
    """Maps by name; a data-section map is found by its kernel name
    (``"globals.bss"``) and by its section name (``".bss"``) alike."""

    def __init__(self, maps: Dict[str, "Map"], section_maps: Dict[str, str]) -> None:
        super().__init__(maps)
        self._sections = dict(section_maps)

    def __missing__(self, key: str) -> "Map":
        name = self._sections.get(key)
        if name is not None and dict.__contains__(self, name):
            return dict.__getitem__(self, name)
        raise NotFoundError("map", key, candidates=sorted(self))

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except NotFoundError:
            return default


def _close_quietly(thing: Any) -> None:
    try:
        thing.close()
    except Exception:  # noqa: BLE001 - best effort during cleanup
        log.debug("error closing %r during cleanup", thing, exc_info=True)


# ---------------------------------------------------------------------------
# the load sequence
# ---------------------------------------------------------------------------

#: Prefixes and BTF kinds libbpf's ``find_attach_btf_id`` uses per attach type.
_ATTACH_BTF_PREFIX = {
    int(AttachType.TRACE_RAW_TP): ("btf_trace_", "TYPEDEF"),
    int(AttachType.LSM_MAC): ("bpf_lsm_", "FUNC"),
    int(AttachType.LSM_CGROUP): ("bpf_lsm_", "FUNC"),
    int(AttachType.TRACE_ITER): ("bpf_iter_", "FUNC"),
}



class _Loader:
    """One run of :meth:`OpenObject.load`; owns what it creates until handed over."""

    def __init__(self, obj: OpenObject, *, log_level: int, log_size: int) -> None:
        self.obj = obj
        self.spec = obj.spec
        self.log_level = log_level
        self.log_size = log_size
        self.owned: List[Any] = []  # everything with close(), in creation order
        self.pins_made: List[str] = []
        self.btf_fd: "Optional[FD]" = None
        self.maps: Dict[str, "Map"] = {}
        self.section_maps: Dict[str, str] = {}  # data section name -> map name
        self.programs: Dict[str, Program] = {}
        self.views: Dict[str, "GlobalData"] = {}
        self.kconfig_data: Optional[bytes] = None
        self._vmlinux: "Optional[Btf]" = None
        self._ksyms: Any = None
        self.btf_func_info = True
        self.snapshots: Dict[str, bytes] = {}
        #: CO-RE explanations per function, to explain poisoned instructions
        self.core_explanations: Dict[str, Tuple[Any, ...]] = {}
        #: program name -> (kernel struct BTF id, member index) for struct_ops programs
        self.struct_ops_attach: Dict[str, Tuple[int, int]] = {}
        #: struct_ops map name -> (value with data members, [(offset, program name)])
        self.struct_ops_values: Dict[str, Tuple[bytearray, List[Tuple[int, str]]]] = {}

    # -- driver ---------------------------------------------------------------

    def run(self) -> Object:
        try:
            self.resolve_externs()
            relocated = self.relocate()
            self.load_btf()
            self.create_maps()
            self.load_programs(relocated)
            self.init_prog_arrays()
            self.fill_struct_ops()
        except BaseException:
            self.rollback()
            raise
        obj = Object(self.spec, self.obj.name, self.maps, self.programs, self.views,
                     self.btf_fd, self.section_maps)
        obj._struct_ops = {name: bytes(value) for name, (value, _) in self.struct_ops_values.items()}
        return obj

    def rollback(self) -> None:
        """Undo a failed load: remove new pins, close every fd made, and give the
        open object fresh views holding the values the user had set."""
        for name, data in self.snapshots.items():
            sec = self.spec.data_section(name)
            self.obj._views[name] = _open_view(self.spec, replace(sec, data=data))
        for path in reversed(self.pins_made):
            try:
                os.unlink(path)
            except OSError:
                log.debug("cannot remove pin %s during cleanup", path, exc_info=True)
        for thing in reversed(self.owned):
            _close_quietly(thing)

    # -- helpers ------------------------------------------------------------------

    def vmlinux(self) -> "Btf":
        """The running kernel's BTF (not a CO-RE override: attach ids must be real)."""
        if self._vmlinux is None:
            from purebpf.btf import Btf

            self._vmlinux = Btf.load_vmlinux()
        return self._vmlinux

    def autoloaded(self) -> List[OpenProgram]:
        return [p for p in self.obj.programs.values() if p.autoload and not self._unused_struct_ops(p)]

    def _unused_struct_ops(self, p: OpenProgram) -> bool:
        """A struct_ops program no struct_ops map refers to is not loaded (as libbpf)."""
        if int(p.prog_type) != int(ProgType.STRUCT_OPS):
            return False
        return not any(p.name == prog for m in self.spec.maps if int(m.type) == int(MapType.STRUCT_OPS)
                       for _, prog in m.initial_values)

    # -- 1. externs -------------------------------------------------------------------

    def resolve_externs(self) -> None:
        """Fill ``.kconfig`` and resolve every ``.ksyms`` extern up front
        (libbpf bpf_object__resolve_externs), so a missing one fails the load
        before anything is created in the kernel."""
        spec = self.spec
        if any(e.kind == "kconfig" for e in spec.externs):
            from purebpf.loader import kconfig

            self.kconfig_data = kconfig.kconfig_data(spec, overrides=self.obj.kconfig or None)
        if any(e.kind in ("ksym_var", "kfunc") for e in spec.externs):
            resolver = self.ksyms()
            for ext in spec.externs:
                if ext.kind == "ksym_var":
                    resolver.ksym_var(ext)
                elif ext.kind == "kfunc":
                    resolver.kfunc(ext)

    def ksyms(self) -> Any:
        """The ksym/kfunc resolver over the running kernel (made once)."""
        if self._ksyms is None:
            from purebpf.loader import ksyms

            self._ksyms = ksyms.KsymResolver(vmlinux=self.vmlinux())
            self._ksyms.preload(e.name for e in self.spec.externs if e.kind == "ksym_var")
        return self._ksyms

    # -- 2. CO-RE -------------------------------------------------------------------

    def relocate(self) -> Dict[str, Tuple[Any, ...]]:
        from purebpf.core_reloc import load_target_btf, relocate_object

        names = [p.name for p in self.autoloaded()]
        needs = any(p.core_relos for p in self.spec.programs + self.spec.subprograms
                    if p.is_subprogram or p.name in names)
        target = None
        if needs:
            target = load_target_btf(self.obj.target_btf)
        result = relocate_object(self.spec, target, programs=names).check()
        self.core_explanations = {name: tuple(rp.explanations) for name, rp in result.programs.items()}
        return {name: tuple(rp.instructions) for name, rp in result.programs.items()}

    # -- 3. BTF ----------------------------------------------------------------------------

    def kernel_needs_btf(self) -> bool:
        """libbpf's kernel_needs_btf: typed ksyms and struct_ops make BTF mandatory."""
        if any(e.kind == "ksym_var" and not e.typeless for e in self.spec.externs):
            return True
        return any(int(m.type) == int(MapType.STRUCT_OPS) for m in self.spec.maps)

    def load_btf(self) -> None:
        spec = self.spec
        if spec.btf is None:
            return
        from purebpf.loader.btf_fixup import BtfFeatures, kernel_btf_bytes
        from purebpf.syscall import commands

        feats = BtfFeatures.probe() if _features() is not None else None
        self.btf_func_info = feats.func if feats is not None else True
        data = kernel_btf_bytes(spec, feats)
        if not data:
            return
        try:
            fd, _ = commands.btf_load(data)
        except KernelError as first:
            try:
                fd, blog = commands.btf_load(data, log_level=1, log_size=LOG_BUF_START * 4)
            except KernelError as exc:
                blog = getattr(exc, "log", "") or ""
                err = BtfLoadError(exc.errno or first.errno or errno.EINVAL, blog,
                                   hint=exc.hint, summary=_last_line(blog))
                if self.kernel_needs_btf():
                    raise err from exc
                log.warning("kernel refused the object's BTF (%s); loading without BTF, as libbpf does", err)
                return
        self.btf_fd = fd
        self.owned.append(fd)

    # -- 4. maps -----------------------------------------------------------------------------

    def create_maps(self) -> None:
        """Create maps in libbpf's order: ``.maps`` definitions, data sections, ``.kconfig``."""
        from purebpf.maps import Map

        spec = self.spec
        for m in spec.maps:
            if int(m.type) == int(MapType.STRUCT_OPS):
                self.create_struct_ops_map(Map, self.obj.maps[m.name])
            else:
                self.create_user_map(Map, self.obj.maps[m.name])
        for sec in spec.data_sections:
            if sec.kind in ("ksyms", "arena") or sec.size == 0:
                continue
            self.create_data_map(sec)
        # map-in-map slots: right after creation, as libbpf's init_map_in_map_slots
        for m in spec.maps:
            if int(m.type) in (int(MapType.ARRAY_OF_MAPS), int(MapType.HASH_OF_MAPS)) and m.initial_values:
                live = self.maps[m.name]
                for index, inner_name in m.initial_values:
                    inner = self.maps.get(inner_name)
                    if inner is None:
                        raise NotFoundError("map", inner_name, detail=f"initial value of {m.name!r}")
                    live.update(index, inner.fd.fileno())

    def _btf_fd_int(self) -> Optional[int]:
        return self.btf_fd.fileno() if self.btf_fd is not None else None

    def create_user_map(self, Map: Any, om: OpenMap) -> None:
        mspec = om.effective_spec()
        if om.pin_path and om.reuse_pinned and os.path.exists(om.pin_path):
            live = Map.from_pin(om.pin_path, name=om.name)
            self.owned.append(live)
            _check_pinned_compatible(live, mspec, om.pin_path)
            self.maps[om.name] = live
            return
        # Map.create applies libbpf's adjustments, makes the inner template of a
        # map-in-map and retries without BTF ids when the kernel refuses them.
        live = Map.create(mspec, btf_fd=self._btf_fd_int())
        self.owned.append(live)
        self.maps[om.name] = live
        if om.pin_path:
            os.makedirs(os.path.dirname(om.pin_path) or ".", exist_ok=True)
            live.pin(om.pin_path)
            self.pins_made.append(om.pin_path)

    def create_struct_ops_map(self, Map: Any, om: OpenMap) -> None:
        """A ``.struct_ops`` variable as a BPF_MAP_TYPE_STRUCT_OPS map (libbpf
        ``bpf_map__init_kern_struct_ops``).

        The object's struct (say ``tcp_congestion_ops``) is matched by name
        with the kernel's; the map value is the kernel's wrapper
        ``bpf_struct_ops_<name>`` whose ``data`` member holds the struct:
        data members are copied from the object, function pointers become
        the fds of the programs implementing them once those are loaded.  Each
        such program is loaded with ``attach_btf_id`` = the kernel struct and
        ``expected_attach_type`` = the index of the member it implements.
        The value is written to the map (which registers the ops) by attach,
        as libbpf does; :meth:`Object.struct_ops_value` gives it.
        """
        from purebpf.btf.types import BtfKind
        from purebpf.maps.map import kernel_map_name
        from purebpf.syscall import commands

        mspec = om.spec
        local_btf = self.spec.btf
        if local_btf is None:
            raise NotSupportedError("struct_ops without BTF", detail=f"map {mspec.name!r}")
        local = local_btf[mspec.value_type_id]
        tname = local.name
        vmlinux = self.vmlinux()
        kern_ids = vmlinux.find_by_name(tname, BtfKind.STRUCT)
        wrap_ids = vmlinux.find_by_name("bpf_struct_ops_" + tname, BtfKind.STRUCT)
        if not kern_ids or not wrap_ids:
            raise NotFoundError("kernel struct_ops type", tname, detail=f"map {mspec.name!r}")
        kern = vmlinux[kern_ids[0]]
        wrapper = vmlinux[wrap_ids[0]]
        data_member = [mb for mb in getattr(wrapper, "members") if mb.name == "data"]
        if not data_member:
            raise NotFoundError("member", "data", detail=f"kernel type bpf_struct_ops_{tname}")
        data_off = data_member[0].bit_offset // 8
        value = bytearray(vmlinux.size_of(wrap_ids[0]))
        local_bytes = _section_bytes(self.spec, mspec.section, mspec.section_offset, mspec.value_size)
        kmembers = {mb.name: (index, mb) for index, mb in enumerate(getattr(kern, "members"))}
        progs_by_slot = dict(mspec.initial_values)
        func_slots: List[Tuple[int, str]] = []
        for lm in getattr(local, "members"):
            found = kmembers.get(lm.name)
            loff = lm.bit_offset // 8
            ltype = local_btf[local_btf.skip_modifiers(lm.type)]
            is_func_ptr = (ltype.kind == BtfKind.PTR and
                           local_btf[local_btf.skip_modifiers(getattr(ltype, "type"))].kind == BtfKind.FUNC_PROTO)
            if is_func_ptr:
                prog_name = progs_by_slot.get(loff // 8)
                if prog_name is None:
                    continue
                if found is None:
                    raise NotFoundError("member", lm.name, detail=f"kernel struct {tname}")
                index, km = found
                self.struct_ops_attach[prog_name] = (kern_ids[0], index)
                func_slots.append((data_off + km.bit_offset // 8, prog_name))
                continue
            size = local_btf.size_of(lm.type)
            chunk = local_bytes[loff:loff + size]
            if not any(chunk):
                continue
            if found is None:
                raise NotFoundError("member", lm.name, detail=f"kernel struct {tname} (object sets it)")
            _, km = found
            if vmlinux.size_of(km.type) != size:
                raise NotSupportedError("struct_ops member of another size",
                                        detail=f"{tname}.{lm.name}: object {size}, kernel "
                                               f"{vmlinux.size_of(km.type)} bytes")
            koff = data_off + km.bit_offset // 8
            value[koff:koff + size] = chunk
        # as libbpf: the object's BTF fd goes along (the value type is vmlinux's)
        btf_fd = self._btf_fd_int()
        if btf_fd is None:
            raise NotSupportedError("struct_ops without the object's BTF in the kernel",
                                    detail=f"map {mspec.name!r}")
        fd = commands.map_create(MapType.STRUCT_OPS, 4, len(value), 1, flags=int(mspec.flags),
                                 name=kernel_map_name(mspec.name), btf_fd=btf_fd,
                                 btf_vmlinux_value_type_id=wrap_ids[0])
        live = Map(fd, name=mspec.name, type=MapType.STRUCT_OPS, key_size=4, value_size=len(value),
                   max_entries=1, flags=int(mspec.flags), spec=mspec)
        self.owned.append(live)
        self.maps[om.name] = live
        self.struct_ops_values[om.name] = (value, func_slots)

    def create_data_map(self, sec: "DataSectionSpec") -> None:
        """A data section as an array map of one entry holding its bytes
        (libbpf bpf_object__init_internal_map / populate_internal_map):
        created, written, frozen if read-only, mmap'ed."""
        from purebpf.maps.globals import GlobalData, internal_map_name

        name = internal_map_name(self.obj.name, sec.name)
        if sec.kind == "kconfig":
            data = self.kconfig_data if self.kconfig_data is not None else bytes(sec.size)
            view = GlobalData(replace(sec, data=data.ljust(sec.size, b"\0")[: sec.size]), self.spec.btf)
        else:
            view = self.obj._view_for_load(sec)
            # kept so that a failed load leaves the open object as it was
            self.snapshots[sec.name] = bytes(view.raw)
        btf_fd = self._btf_fd_int() if sec.btf_datasec_id else None
        live = view.create_map(name=name, btf_fd=btf_fd, mmapable=_section_is_mmapable(self.spec, sec))
        self.owned.append(view)
        self.maps[name] = live
        self.section_maps[sec.name] = name
        # .kconfig too: Object.close must unmap it, and reading it shows the
        # values the programs see
        self.views[sec.name] = view

    # -- 5. programs -------------------------------------------------------------------------

    def load_programs(self, relocated: Mapping[str, Tuple[Any, ...]]) -> None:
        from purebpf.loader.linker import link_program

        resolver = _Resolver(self)
        for op in self.autoloaded():
            linked = link_program(self.spec, op.spec, relocated, resolver,
                                  btf_ext_info=self.btf_fd is not None and self.btf_func_info)
            self.load_one(op, linked)

    def attach_btf_id(self, op: OpenProgram) -> int:
        kind = op.spec.kind
        if kind is None or not kind.needs_attach_btf_id:
            return 0
        ptype = int(op.prog_type)
        if ptype == int(ProgType.STRUCT_OPS):
            found = self.struct_ops_attach.get(op.name)
            if found is None:
                raise NotFoundError("struct_ops map using program", op.name)
            return found[0]
        if ptype == int(ProgType.EXT):
            raise NotSupportedError("freplace (BPF_PROG_TYPE_EXT) programs", detail=f"program {op.name!r}")
        target = op.attach_target
        if not target:
            raise NotFoundError("attach target", op.name, detail=f"section {op.spec.section!r} names none")
        eat = int(op.expected_attach_type) if op.expected_attach_type is not None else -1
        prefix, kind_name = _ATTACH_BTF_PREFIX.get(eat, ("", "FUNC"))
        from purebpf.btf.types import BtfKind

        btf = self.vmlinux()
        ids = btf.find_by_name(prefix + target, BtfKind[kind_name])
        if not ids:
            raise NotFoundError("kernel BTF " + kind_name.lower(), prefix + target,
                                detail=f"attach target of program {op.name!r}")
        return int(ids[0])

    def load_one(self, op: OpenProgram, linked: Any) -> None:
        from purebpf.syscall import commands

        features = _features()

        spec = self.spec
        ptype = op.prog_type
        eat = op.expected_attach_type
        attach_btf_id = self.attach_btf_id(op)
        if int(ptype) == int(ProgType.STRUCT_OPS):
            eat = self.struct_ops_attach[op.name][1]  # the member index, as libbpf sets it
        name = op.name[: OBJ_NAME_LEN - 1] if _feature(features, "has_prog_name", True) else ""
        use_btf = self.btf_fd is not None
        func_info = linked.func_info if use_btf else b""
        line_info = linked.line_info if use_btf else b""
        kw: Dict[str, Any] = dict(
            name=name,
            expected_attach_type=eat,
            attach_btf_id=attach_btf_id,
            kern_version=_kern_version(spec, features),
            prog_flags=op.flags,
            prog_btf_fd=self.btf_fd.fileno() if use_btf and self.btf_fd is not None else None,
            func_info=func_info,
            func_info_rec_size=getattr(linked, "func_info_rec_size", 8),
            line_info=line_info,
            line_info_rec_size=getattr(linked, "line_info_rec_size", 16),
            fd_array=getattr(linked, "fd_array", None) or None,
        )
        insns = _insn_bytes(linked)
        level = self.log_level
        size = self.log_size if level else 0
        if level and not size:
            size = LOG_BUF_START
        try:
            fd, vlog = commands.prog_load(ptype, insns, spec.license, log_level=level, log_size=size, **kw)
        except VerifierError as exc:
            fd, vlog = self._retry_with_log(op, linked, ptype, insns, kw, exc)
        except KernelError as exc:
            if exc.errno == errno.EPERM:
                # privileges or lockdown: a verifier log would not help
                raise KernelError(errno.EPERM, "BPF_PROG_LOAD", hint=_eperm_hint(ptype, exc.hint),
                                  detail=f"program {op.name!r}") from exc
            fd, vlog = self._retry_with_log(op, linked, ptype, insns, kw, exc)
        self.owned.append(fd)
        prog = Program(op.name, fd, ptype, spec=op.spec,
                       expected_attach_type=int(eat) if eat is not None else None,
                       attach_target=op.attach_target, line_info=line_info,
                       line_info_rec_size=kw["line_info_rec_size"])
        prog.log = vlog
        self.programs[op.name] = prog

    def _retry_with_log(self, op: OpenProgram, linked: Any, ptype: Any, insns: bytes,
                        kw: Dict[str, Any], first: KernelError) -> Tuple["FD", str]:
        """Reload with log_level 1 (or the level asked for) and a growing buffer
        -- 64 KiB, then what ``log_true_size`` says or four times more, up to
        16 MiB -- and raise VerifierError with the whole log and a summary."""
        from purebpf.syscall import commands

        size = max(LOG_BUF_START, self.log_size)
        level = self.log_level or 1
        while True:
            try:
                return commands.prog_load(ptype, insns, self.spec.license, log_level=level,
                                          log_size=size, **kw)
            except VerifierError as exc:
                vlog = exc.log or ""
                true_size = int(getattr(exc, "log_true_size", 0) or 0)
                if exc.truncated and size < LOG_BUF_MAX:
                    size = min(LOG_BUF_MAX, max(size * 4, true_size + 1))
                    continue
                raise VerifierError(exc.errno or first.errno or errno.EINVAL, op.name, vlog,
                                    summary=verifier_summary(vlog, linked, self.core_explanations),
                                    hint=exc.hint or first.hint, truncated=exc.truncated) from exc

    # -- 6. prog arrays, globals ------------------------------------------------------

    def fill_struct_ops(self) -> None:
        """Put the loaded programs' fds into the struct_ops values."""
        import struct as _struct

        for value, slots in self.struct_ops_values.values():
            for offset, prog_name in slots:
                prog = self.programs.get(prog_name)
                fd = prog.fd.fileno() if prog is not None else 0
                _struct.pack_into("<Q" if self.spec.byteorder == "little" else ">Q", value, offset, fd)

    def init_prog_arrays(self) -> None:
        for m in self.spec.maps:
            if int(m.type) != int(MapType.PROG_ARRAY) or not m.initial_values:
                continue
            live = self.maps[m.name]
            for index, prog_name in m.initial_values:
                prog = self.programs.get(prog_name)
                if prog is None:
                    if prog_name in self.obj.programs:
                        continue  # not autoloaded: libbpf leaves the slot empty too
                    raise NotFoundError("program", prog_name, detail=f"initial value of {m.name!r}")
                live.update(index, prog.fd.fileno())



def _section_bytes(spec: "ObjectSpec", section: str, offset: int, size: int) -> bytes:
    """``size`` bytes at ``offset`` of ELF section ``section`` of the object's
    file (struct_ops initial values are not kept in the spec)."""
    info = next((s for s in spec.sections if s.name == section), None)
    if info is None or info.type == "SHT_NOBITS":
        return bytes(size)
    try:
        with open(spec.name, "rb") as f:
            f.seek(info.offset + offset)
            data = f.read(size)
    except OSError:
        log.warning("cannot re-read %s for the struct_ops data of %s; using zeros", spec.name, section)
        return bytes(size)
    return data.ljust(size, b"\0")


def _section_is_mmapable(spec: "ObjectSpec", sec: "DataSectionSpec") -> bool:
    """libbpf's ``map_is_mmapable``: the section's DATASEC holds a variable that
    is not static -- counting ``__hidden`` (STV_HIDDEN/STV_INTERNAL) globals as
    static, since libbpf's ``btf_fixup_datasec`` turns them static at open."""
    if not sec.btf_datasec_id:
        return False
    hidden = {sym.name for sym in spec.symbols
              if sym.section_name == sec.name and sym.visibility in ("STV_HIDDEN", "STV_INTERNAL")}
    return any(var.linkage != "static" and var.name not in hidden for var in sec.variables)


def _check_pinned_compatible(live: Any, mspec: "MapSpec", path: str) -> None:
    """libbpf's map_is_reuse_compat: type, key/value size, max_entries, flags must match."""
    want = [("type", int(mspec.type), int(live.type)),
            ("key_size", mspec.key_size, live.key_size),
            ("value_size", mspec.value_size, live.value_size),
            ("max_entries", mspec.max_entries, live.max_entries),
            ("map_flags", int(mspec.flags), int(live.flags))]
    for attr, expected, actual in want:
        if int(expected) != int(actual):
            raise KernelError(errno.EINVAL, "BPF_OBJ_GET",
                              detail=(f"cannot reuse the map pinned at {path}: {attr} is {actual} there, "
                                      f"map {mspec.name!r} wants {expected}"))


class _Resolver:
    """The linker's :class:`~purebpf.loader.linker.Resolver` over this load's maps and externs."""

    def __init__(self, loader: _Loader) -> None:
        self._loader = loader

    def map_fd(self, name: str) -> int:
        m = self._loader.maps.get(name)
        if m is None:
            raise NotFoundError("map", name, candidates=sorted(self._loader.maps))
        return int(m.fd.fileno())

    def data_map_fd(self, section: str) -> int:
        mname = self._loader.section_maps.get(section)
        if mname is None:
            raise NotFoundError("data section map", section, candidates=sorted(self._loader.section_maps))
        return int(self._loader.maps[mname].fd.fileno())

    def ksym_var(self, ext: "ExternSpec") -> "Optional[KsymTarget]":
        return self._loader.ksyms().ksym_var(ext)  # type: ignore[no-any-return]

    def kfunc(self, ext: "ExternSpec") -> "Optional[KfuncTarget]":
        return self._loader.ksyms().kfunc(ext)  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------

def _eperm_hint(ptype: Any, hint: Optional[str]) -> Optional[str]:
    """EPERM as root for tracing/LSM/extension programs means kernel lockdown
    (``lockdown=integrity`` refuses BPF that reads or changes kernel memory)."""
    if os.geteuid() == 0 and int(ptype) in (int(ProgType.TRACING), int(ProgType.LSM), int(ProgType.EXT)):
        return ("refused although running as root: the kernel is probably in lockdown mode, which forbids "
                "fentry/fexit/fmod_ret/lsm programs")
    return hint


def _features() -> Any:
    """purebpf.syscall.features (kernel feature probes), or None if unavailable."""
    try:
        from purebpf.syscall import features
    except ImportError:
        return None
    return features


def _feature(features: Any, name: str, default: bool) -> bool:
    fn = getattr(features, name, None)
    if fn is None:
        return default
    try:
        return bool(fn())
    except PurebpfError:
        return default


def _kern_version(spec: "ObjectSpec", features: Any) -> int:
    """libbpf passes the object's ``version`` section, else the running kernel's version."""
    if spec.kernel_version:
        return int(spec.kernel_version)
    fn = getattr(features, "kernel_version", None)
    return int(fn()) if fn is not None else 0


def _insn_bytes(linked: Any) -> bytes:
    insns = linked.insns
    if isinstance(insns, (bytes, bytearray, memoryview)):
        return bytes(insns)
    from purebpf.insn import encode

    return bytes(encode(list(insns)))


def _last_line(text: str) -> Optional[str]:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else None


_INSN_LINE = re.compile(r"^(\d+): \([0-9a-f]{2}\) ")
_NOISE = (
    "processed ", "verification time", "stack depth", "-- END PROG LOAD LOG --",
    "func#", "mark_precise", "Validating ", "from ", "last_idx", "regs=", "parent ",
)


#: The helper id libbpf (and purebpf's CO-RE) calls in a poisoned instruction.
_POISON_HELPER = 0xBAD2310


def verifier_summary(vlog: str, linked: Any,
                     core_explanations: Optional[Mapping[str, Sequence[Any]]] = None) -> Optional[str]:
    """A short account of a rejection: failing instruction, its C line, the message.

    The failing instruction is the last ``N: (op) ...`` line of the log; the
    message is the first line after it that is not register-state noise (or
    the last meaningful line of the log); the C source line comes from the
    linked program's line_info (the record covering slot N).
    """
    lines = vlog.splitlines()
    insn_idx = None
    insn_text = None
    for i in range(len(lines) - 1, -1, -1):
        m = _INSN_LINE.match(lines[i])
        if m:
            insn_idx = i
            insn_text = lines[i].strip()
            break
    message = None
    tail = lines[insn_idx + 1:] if insn_idx is not None else lines
    for ln in tail:
        s = ln.strip()
        if not s or s.startswith(_NOISE) or s.startswith(";") or _INSN_LINE.match(s):
            continue
        message = s
        break
    if message is None:
        meaningful = [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith(_NOISE)]
        message = meaningful[-1] if meaningful else None
    parts: List[str] = []
    if message:
        parts.append(message)
    if insn_text is not None:
        parts.append(f"at insn {insn_text}")
        slot = int(insn_text.split(":", 1)[0])
        src = source_line_for_slot(linked, slot)
        if src:
            parts.append(f"source: {src}")
        if f"unknown#{_POISON_HELPER}" in insn_text and core_explanations:
            why = _poisoned_by(linked, slot, core_explanations)
            if why:
                parts.append(why)
    return "; ".join(parts) if parts else None


def _poisoned_by(linked: Any, slot: int, explanations: Mapping[str, Sequence[Any]]) -> Optional[str]:
    """Which CO-RE relocation poisoned the instruction at ``slot`` of a linked
    program (as libbpf's log fix-up says: the instruction's relocation could
    not be resolved against the target kernel's types)."""
    starts = [(getattr(linked, "name", ""), 0)] + list(getattr(linked, "subprograms", ()))
    owner, start = max(((n, st) for n, st in starts if st <= slot), key=lambda item: item[1])
    for exp in explanations.get(owner, ()):
        if exp.slot in (slot - start, slot - start - 1):
            reason = exp.error or ("the target BTF has no type of that name" if not exp.candidates
                                   else f"none of {len(exp.candidates)} candidate types matched")
            return (f"CO-RE relocation at insn #{exp.insn_index} ({exp.kind_name} of {exp.access}) "
                    f"could not be resolved, so the instruction was poisoned: {reason}")
    return "the instruction was poisoned by a CO-RE relocation that could not be resolved"


def source_line_for_slot(linked: Any, slot: int) -> Optional[str]:
    """``text @ file:line`` of the C line instruction ``slot`` of a linked
    program comes from (its line_info), or None."""
    finder = getattr(linked, "source_line", None)
    if finder is None:
        return None
    try:
        line = finder(slot)
    except PurebpfError:
        return None
    if line is None or not line.text:
        return None
    return f"{line.text.strip()} @ {os.path.basename(line.file_name)}:{line.line}"
