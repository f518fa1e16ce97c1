"""TensorTable: identity semantics, no tensor kept alive, no value inherited by a reused id."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch

from stridelab.inspect.tensortable import TensorTable


def test_identity_not_equality() -> None:
    table: TensorTable[str] = TensorTable()
    a = torch.zeros(2)
    b = torch.zeros(2)  # equal values, another tensor
    table[a] = "a"
    assert a in table and b not in table
    assert table[a] == "a" and table.get(b) is None and table.get(b, "none") == "none"
    view = a.view(2)  # a view is another tensor object
    assert view not in table
    with pytest.raises(KeyError, match="not in the table"):
        table[b]
    table[a] = "again"
    assert table[a] == "again" and len(table) == 1


def test_does_not_keep_tensors_alive() -> None:
    table: TensorTable[int] = TensorTable()
    t = torch.empty(3, device="meta")
    table[t] = 1
    ref = weakref.ref(t)
    del t
    gc.collect()
    assert ref() is None
    assert len(table) == 0


def test_reused_id_does_not_inherit_the_dead_tensors_value() -> None:
    table: TensorTable[int] = TensorTable()
    found_reuse = False
    for attempt in range(200):  # CPython reuses the memory (and so the id) of a freed object
        t = torch.empty(1)
        dead_id = id(t)
        table[t] = attempt
        del t
        fresh = torch.empty(1)
        if id(fresh) == dead_id:
            found_reuse = True
            assert fresh not in table
            assert table.get(fresh) is None
            table[fresh] = -1
            assert table[fresh] == -1
            break
    assert found_reuse, "CPython never reused an id: the test did not exercise reuse"
