"""Equivalent windows of adaptive pooling and resizes, the misaligned-merge hull and slicing,
against the input positions torch really reads (autograd)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from stridelab import arith
from stridelab.arith import ReceptiveField
from tests._budget import budget


def reads(fn, size: int, unit: int) -> list[int]:  # type: ignore[no-untyped-def]
    x = torch.rand(1, 1, size, dtype=torch.float64, requires_grad=True)
    fn(x)[0, 0, unit].backward()
    assert x.grad is not None
    return [i for i, g in enumerate(x.grad[0, 0].tolist()) if g != 0]


@settings(max_examples=budget(200))
@given(size_in=st.integers(1, 40), size_out=st.integers(1, 40))
def test_adaptive_window_contains_torch_window(size_in: int, size_out: int) -> None:
    if size_out > size_in:
        with pytest.raises(ValueError, match="size_out must be <= size_in"):
            arith.adaptive_window(size_in, size_out)
        return
    kernel, stride = arith.adaptive_window(size_in, size_out)
    for u in range(size_out):
        got = reads(lambda x: F.adaptive_avg_pool1d(x, size_out), size_in, u)
        assert u * stride <= got[0] and got[-1] <= u * stride + kernel - 1
        if size_in % size_out == 0:
            assert (got[0], got[-1]) == (u * stride, u * stride + kernel - 1)


@settings(max_examples=budget(60))
@given(size=st.integers(2, 12), scale=st.integers(1, 4), mode=st.sampled_from(["nearest", "linear"]))
def test_resize_window_contains_what_interpolate_reads(size: int, scale: int, mode: str) -> None:
    kernel, pad = arith.resize_window(scale, mode)
    field = ReceptiveField.identity().then(kernel, scale, pad, transposed=True)
    for u in range(size * scale):
        got = reads(lambda x: F.interpolate(x, scale_factor=scale, mode=mode), size, u)
        inside = [g for g in got if 0 < g < size - 1]  # edge clamping aside
        assert all(field.start(u) <= g <= field.end(u) for g in inside)


def test_hull_equals_merge_when_aligned_and_contains_both_otherwise() -> None:
    a = ReceptiveField.identity(1).then(3, 2, 1)
    b = ReceptiveField.identity(1).then(1, 2, 0)
    assert arith.hull([a, b], [5]) == a.merge(b)
    c = ReceptiveField.identity(1).then(2, 2, 0)  # centre at 1/2: misaligned with a
    joined = arith.hull([a, c], [6])
    for u in range(6):
        for f in (a, c):
            assert joined.start(u) <= f.start(u) and f.end(u) <= joined.end(u)
    coarse = ReceptiveField.identity(1).then(1, 4, 0)
    mixed = arith.hull([a, coarse], [3])
    for u in range(3):
        assert mixed.start(u) <= min(a.start(u), coarse.start(u))
        assert mixed.end(u) >= max(a.end(u), coarse.end(u))


def test_sliced_matches_a_real_slice() -> None:
    field = ReceptiveField.identity(1).then(3, 1, 1).sliced(0, 2, 3)
    for u in range(3):
        got = reads(lambda x: F.conv1d(x, torch.ones(1, 1, 3, dtype=x.dtype), padding=1)[..., 2::3],
                    12, u)
        assert (got[0], got[-1]) == (field.start(u), field.end(u))
