"""The open phase and the pure helpers of purebpf.object (no root, no kernel)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import pytest

from purebpf.errors import NotFoundError, StateError
from purebpf.loader.linker import SourceLine
from purebpf.object import object_name, open_object, pin_name, verifier_summary
from purebpf.spec import ObjectSpec

ROOT = Path(__file__).resolve().parent.parent
OBJ = ROOT / "fixtures" / "obj"

LOG = """\
0: R1=ctx() R10=fp0
; int idx = ctx->rx_queue_index; @ bad.bpf.c:8
0: (61) r1 = *(u32 *)(r1 +16)         ; R1=scalar()
; return table[idx]; @ bad.bpf.c:9
4: (18) r2 = 0xffffc90001007000       ; R2=map_value(map=bad.bss,ks=4,vs=16)
6: (0f) r2 += r1
math between map_value pointer and register with unbounded min value is not allowed
processed 6 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
"""


def test_object_and_pin_names() -> None:
    assert object_name("/x/y/globals.bpf.o") == "globals"
    assert object_name("a_very_long_object_name.bpf.o") == "a_very_long_obj"
    assert pin_name("globals.bss") == "globals_bss"


def test_verifier_summary_names_instruction_message_and_source() -> None:
    class Linked:
        """Stands for a LinkedProgram: only its source_line lookup is used."""

        asked: List[int] = []

        def source_line(self, slot: int) -> Optional[SourceLine]:
            self.asked.append(slot)
            if slot >= 3:
                return SourceLine(3, "/tmp/bad.bpf.c", 9, 5, "return table[idx];")
            return SourceLine(0, "/tmp/bad.bpf.c", 8, 5, "int idx = ctx->rx_queue_index;")

    linked = Linked()
    summary = verifier_summary(LOG, linked)
    assert linked.asked == [6]  # the failing instruction's slot
    assert summary is not None
    assert summary.startswith("math between map_value pointer")
    assert "6: (0f) r2 += r1" in summary
    assert "return table[idx]; @ bad.bpf.c:9" in summary


def test_verifier_summary_without_instruction_lines() -> None:
    assert verifier_summary("unknown opcode 8d\nprocessed 0 insns\n", None) == "unknown opcode 8d"
    assert verifier_summary("", None) is None


def test_open_phase_edits_and_checks() -> None:
    opened = open_object(OBJ / "globals.bpf.o")
    assert set(opened.programs) == {"count_packets", "report_static"}
    opened.rodata["cfg_verdict"] = 1
    assert opened.rodata["cfg_verdict"] == 1
    assert opened.globals["cfg_verdict"] == 1
    assert opened.globals.section_of("bytes_seen") == ".bss"
    assert "no_such_variable" not in opened.globals
    with pytest.raises(NotFoundError):
        opened.globals["no_such_variable"]
    with pytest.raises(NotFoundError):
        opened.data_section(".nope")
    opened.programs["report_static"].autoload = False
    opened.close()  # a no-op before load: nothing is held
    assert opened.rodata["cfg_verdict"] == 1


def test_open_maps_resizing_rules() -> None:
    opened = open_object(OBJ / "maps.bpf.o")
    sized = opened.maps["sized_array"]
    sized.max_entries = 128
    assert sized.effective_spec().max_entries == 128
    assert opened.spec.map("sized_array").max_entries == 16  # the spec is never changed
    with pytest.raises(ValueError):
        sized.max_entries = -1
    with pytest.raises(StateError):
        opened.maps["flows"].value_size = 64
    assert opened.maps["pinned_config"].pin_path == "/sys/fs/bpf/pinned_config"
    assert opened.maps["flows"].pin_path is None


def test_open_from_spec_and_question_mark_sections() -> None:
    spec = ObjectSpec.from_file(OBJ / "sections_new.bpf.o")
    opened = open_object(spec, pin_root="/tmp/pins")
    assert opened.spec is spec
    assert opened.programs["xdp_not_autoloaded"].autoload is False
    assert opened.programs["tcx_in"].autoload is True
