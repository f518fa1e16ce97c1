"""dropped_pixels in ceil mode against the pixels a real PyTorch pool reads (autograd)."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from stridelab import arith
from tests._budget import budget


@st.composite
def pools(draw: st.DrawFn) -> tuple[int, int, int, int, bool]:
    kernel = draw(st.integers(1, 5))
    stride = draw(st.integers(1, 5))
    padding = draw(st.integers(0, kernel // 2))
    size = draw(st.integers(max(kernel - 2 * padding, 1), 30))
    return size, kernel, stride, padding, draw(st.booleans())


@settings(max_examples=budget(300))
@given(pools())
def test_dropped_pixels_equals_unread_tail_of_a_real_pool(case: tuple[int, int, int, int, bool]
                                                          ) -> None:
    size, kernel, stride, padding, ceil_mode = case
    x = torch.ones(1, 1, size, dtype=torch.float64, requires_grad=True)
    out = torch.nn.functional.avg_pool1d(x, kernel, stride, padding, ceil_mode=ceil_mode)
    out.sum().backward()
    assert x.grad is not None
    read = (x.grad[0, 0] != 0).nonzero().flatten().tolist()
    expected = size - 1 - max(read)
    got = arith.dropped_pixels(size, kernel, stride, padding, ceil_mode=ceil_mode)
    assert got == expected, (size, kernel, stride, padding, ceil_mode)
    layer = arith.Layer("avgpool", kernel, stride, padding, ceil_mode=ceil_mode)
    assert arith.trace(size, [layer])[0].dropped == (expected,)
