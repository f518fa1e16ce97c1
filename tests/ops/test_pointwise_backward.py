"""The 1x1 backward in bands of output rows: grad_weight from the subsample, grad_x scattered.

Oracle: PyTorch autograd at float64 1e-10 (``tests/ops/_torch_ref.py``). Tiny bands force many
pieces per image, last short bands and pieces of several images; inputs and output gradients
come in both memory layouts; thread counts must not change a bit.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stridelab import ops
from stridelab.ops import _pointwise
from tests._budget import budget
from tests.ops import _torch_ref as ref
from tests.ops._configs import ConvCase


def _channels_last(a: np.ndarray) -> np.ndarray:
    """Same values, channels-last memory (a channels-first view of it)."""
    return np.moveaxis(np.ascontiguousarray(np.moveaxis(a, 1, -1)), -1, 1)


@st.composite
def pointwise_cases(draw: st.DrawFn) -> ConvCase:
    nd = draw(st.integers(1, 3))
    size = tuple(draw(st.integers(1, 9)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    return ConvCase(draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 5)),
                    1, size, (1,) * nd, stride, (1,) * nd, 0, ((0, 0),) * nd)


@settings(max_examples=budget(30), deadline=None)
@given(case=pointwise_cases(), seed=st.integers(0, 2**31), budget_bytes=st.integers(1, 256),
       x_last=st.booleans(), g_last=st.booleans(), threads=st.integers(1, 3))
def test_banded_pointwise_backward_matches_torch(case: ConvCase, seed: int, budget_bytes: int,
                                                 x_last: bool, g_last: bool, threads: int
                                                 ) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((case.batch, case.in_channels, *case.size))
    w = rng.standard_normal((case.out_channels, case.in_channels, *case.kernel))
    y = ops.conv(x, w, stride=case.stride)
    g = rng.standard_normal(y.shape)
    expected = ref.conv(case, x, w, np.zeros(case.out_channels), g)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_pointwise, "column_bytes", lambda: budget_bytes)
        gx, gw, _ = ops.conv_backward(g if not g_last or g.ndim < 3 else _channels_last(g),
                                      x if not x_last or x.ndim < 3 else _channels_last(x), w,
                                      stride=case.stride, bias=False, threads=threads)
    ref.assert_close(gx, expected[1], 1e-10, f"grad_x {case}")
    ref.assert_close(gw, expected[2], 1e-10, f"grad_weight {case}")


@pytest.mark.parametrize("stride", [1, 2, (3, 1)])
def test_pointwise_backward_bits_do_not_depend_on_threads(stride: object,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_pointwise, "column_bytes", lambda: 2048)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((5, 24, 13, 11)).astype(np.float32)
    w = rng.standard_normal((40, 24, 1, 1)).astype(np.float32)
    g = rng.standard_normal(ops.conv(x, w, stride=stride).shape).astype(np.float32)
    one = ops.conv_backward(g, x, w, stride=stride, bias=False, threads=1)
    for threads in (2, 3):
        other = ops.conv_backward(g, x, w, stride=stride, bias=False, threads=threads)
        for a, b in zip(one[:2], other[:2]):
            assert a is not None and b is not None and np.array_equal(a, b)


@settings(max_examples=budget(20), deadline=None)
@given(case=pointwise_cases().filter(lambda c: any(s > 1 for s in c.stride)),
       seed=st.integers(0, 2**31), weight_rows=st.integers(1, 4), band_bytes=st.integers(1, 512),
       x_last=st.booleans(), threads=st.integers(1, 3))
def test_strided_backward_in_weight_blocks_matches_torch(case: ConvCase, seed: int,
                                                         weight_rows: int, band_bytes: int,
                                                         x_last: bool, threads: int) -> None:
    """The strided channels-last path (a channels-last output gradient; a C-contiguous one goes
    to ``_pointwise_nchw``, tested in test_pointwise_nchw.py): weight gradient by blocks of
    output channels (one whole product each), input gradient by bands; blocks of one channel, a
    last short block, one block for all."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((case.batch, case.in_channels, *case.size))
    w = rng.standard_normal((case.out_channels, case.in_channels, *case.kernel))
    g = rng.standard_normal(ops.conv(x, w, stride=case.stride).shape)
    expected = ref.conv(case, x, w, np.zeros(case.out_channels), g)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_pointwise, "WEIGHT_ROWS", weight_rows)
        patch.setattr(_pointwise, "column_bytes", lambda: band_bytes)
        gx, gw, _ = ops.conv_backward(_channels_last(g),
                                      x if not x_last or x.ndim < 3 else _channels_last(x), w,
                                      stride=case.stride, bias=False, threads=threads)
    ref.assert_close(gx, expected[1], 1e-10, f"grad_x {case}")
    ref.assert_close(gw, expected[2], 1e-10, f"grad_weight {case}")


def test_strided_backward_blocks_bits_do_not_depend_on_threads(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Several weight blocks and input-gradient bands taken by 1, 2 or 3 threads: same bits."""
    monkeypatch.setattr(_pointwise, "WEIGHT_ROWS", 7)
    monkeypatch.setattr(_pointwise, "column_bytes", lambda: 4096)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 32, 15, 14)).astype(np.float32)
    w = rng.standard_normal((45, 32, 1, 1)).astype(np.float32)
    g = _channels_last(rng.standard_normal(ops.conv(x, w, stride=2).shape).astype(np.float32))
    one = ops.conv_backward(g, x, w, stride=2, bias=False, threads=1)
    for threads in (2, 3):
        other = ops.conv_backward(g, x, w, stride=2, bias=False, threads=threads)
        for a, b in zip(one[:2], other[:2]):
            assert a is not None and b is not None and np.array_equal(a, b)
