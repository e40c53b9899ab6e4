"""Random operation sequences on live hash and array maps, checked against a
Python dict as the model (hypothesis).  The kernel's answers -- lookups,
iteration, ENOENT/EEXIST refusals -- are the observations compared."""

from __future__ import annotations

import errno
import os
import struct
from typing import Dict, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from purebpf.errors import KernelError, MapKeyError
from purebpf.maps import Map
from purebpf.spec import MapSpec
from purebpf.uapi import MapType, MapUpdateFlags

pytestmark = pytest.mark.kernel

if os.geteuid() != 0:
    pytest.skip("needs root", allow_module_level=True)

MAX = 16
KEYS = st.integers(min_value=0, max_value=MAX + 3)
OPS = st.lists(st.tuples(st.sampled_from(["set", "set_new", "set_old", "del", "get",
                                          "pop", "walk_del"]),
                         KEYS, st.integers(min_value=0, max_value=2**64 - 1)),
               max_size=40)


def k(i: int) -> bytes:
    return struct.pack("=I", i)


def v(i: int) -> bytes:
    return struct.pack("=Q", i)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPS)
def test_hash_behaves_like_a_dict(ops: List[Tuple[str, int, int]]) -> None:
    model: Dict[bytes, bytes] = {}
    spec = MapSpec(name="model_hash", type=MapType.HASH, key_size=4, value_size=8,
                   max_entries=MAX)
    with Map.create(spec) as m:
        for op, key, val in ops:
            kb, vb = k(key), v(val)
            if op in ("set", "set_new", "set_old"):
                flags = {"set": MapUpdateFlags.ANY, "set_new": MapUpdateFlags.NOEXIST,
                         "set_old": MapUpdateFlags.EXIST}[op]
                expect_err = None
                if op == "set_new" and kb in model:
                    expect_err = errno.EEXIST
                elif op == "set_old" and kb not in model:
                    expect_err = errno.ENOENT
                elif kb not in model and len(model) >= MAX:
                    expect_err = errno.E2BIG
                if expect_err is None:
                    m.update(key, val, flags)
                    model[kb] = vb
                else:
                    with pytest.raises(KernelError) as exc:
                        m.update(key, val, flags)
                    assert exc.value.errno == expect_err
            elif op == "del":
                if kb in model:
                    del m[key]
                    del model[kb]
                else:
                    with pytest.raises(MapKeyError):
                        del m[key]
            elif op == "get":
                assert m.lookup(key) == model.get(kb)
            elif op == "pop":
                assert m.lookup_and_delete(key) == model.pop(kb, None)
            elif op == "walk_del":  # delete every key whose value is even, while walking
                for key_b in m.keys():
                    assert key_b in model
                    if int.from_bytes(model[key_b], "little") % 2 == 0:
                        del m[key_b]
                        del model[key_b]
        assert dict(m.items()) == model
        assert sorted(m.keys()) == sorted(model)
        assert dict(m.lookup_batch(count=3)) == model


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(KEYS, st.integers(min_value=0, max_value=2**64 - 1)), max_size=30))
def test_array_behaves_like_a_fixed_list(writes: List[Tuple[int, int]]) -> None:
    model = [v(0)] * MAX
    spec = MapSpec(name="model_array", type=MapType.ARRAY, key_size=4, value_size=8,
                   max_entries=MAX)
    with Map.create(spec) as m:
        for index, val in writes:
            if index < MAX:
                m[index] = val
                model[index] = v(val)
            else:
                with pytest.raises(KernelError) as exc:
                    m[index] = val
                assert exc.value.errno == errno.E2BIG
        assert [m[i] for i in range(MAX)] == model
        assert [value for _, value in m.items()] == model
