"""Strided 1x1 on channels-first memory (``_pointwise_nchw``): the stride-1 product per band.

Oracle: PyTorch (forward and autograd) at float64 1e-10; tiny budgets force many bands per
image and a last short band; odd sizes, 1-D to 3-D, batch 1; thread counts must not change a
bit (float32).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stridelab import ops
from stridelab.ops import _pointwise_nchw
from stridelab.ops._geometry import conv_geometry
from tests._budget import budget
from tests.ops import _torch_ref as ref
from tests.ops._configs import ConvCase, TransposeCase


@st.composite
def strided_pointwise_cases(draw: st.DrawFn) -> ConvCase:
    nd = draw(st.integers(1, 3))
    size = tuple(draw(st.integers(1, 11)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    if all(s == 1 or n == 1 for s, n in zip(stride, size)):  # out == in: the stride-1 path
        stride = (stride[0] + 1, *stride[1:])
        size = (max(size[0], 2), *size[1:])
    return ConvCase(draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 6)),
                    1, size, (1,) * nd, stride, (1,) * nd, 0, ((0, 0),) * nd)


@settings(max_examples=budget(30), deadline=None)
@given(case=strided_pointwise_cases(), seed=st.integers(0, 2**31),
       budget_bytes=st.integers(1, 400), threads=st.integers(1, 3))
def test_channels_first_strided_pointwise_matches_torch(case: ConvCase, seed: int,
                                                         budget_bytes: int, threads: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((case.batch, case.in_channels, *case.size))
    w = rng.standard_normal((case.out_channels, case.in_channels, *case.kernel))
    b = rng.standard_normal(case.out_channels)
    expected_y = ref.conv(case, x, w, b, None)[0]
    g = rng.standard_normal(expected_y.shape)
    expected = ref.conv(case, x, w, b, g)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_pointwise_nchw, "column_bytes", lambda: budget_bytes)
        y = ops.conv(x, w, b, stride=case.stride, threads=threads)
        gx, gw, gb = ops.conv_backward(g, x, w, stride=case.stride, threads=threads)
    assert y.flags.c_contiguous  # the channels-first path, NCHW result
    ref.assert_close(y, expected[0], 1e-10, f"y {case}")
    ref.assert_close(gx, expected[1], 1e-10, f"grad_x {case}")
    ref.assert_close(gw, expected[2], 1e-10, f"grad_weight {case}")
    assert gb is not None
    ref.assert_close(gb, expected[3], 1e-10, f"grad_bias {case}")


@settings(max_examples=budget(40), deadline=None)
@given(rows=st.integers(1, 300), channels=st.integers(1, 64), width=st.integers(1, 40),
       limit=st.integers(1, 1 << 16))
def test_row_bands_tile_the_output_rows(rows: int, channels: int, width: int, limit: int) -> None:
    """Brute force: the bands tile ``range(rows)`` in order, differ by at most one row, and hold
    at most ``limit`` bytes of subsample unless a band is a single row."""
    geom = conv_geometry((1, channels, 2 * rows, 2 * width), (1, channels, 1, 1), 2, 0, 1, 1)
    assert geom.out_size == (rows, width)
    bands = _pointwise_nchw.row_bands(geom, 4, limit)
    covered = [i for band in bands for i in range(band.start, band.stop)]
    assert covered == list(range(rows))
    sizes = [band.stop - band.start for band in bands]
    assert max(sizes) - min(sizes) <= 1
    assert max(sizes) == 1 or max(sizes) * channels * width * 4 <= limit


@pytest.mark.parametrize("shape, stride", [((5, 24, 13, 11), 2), ((1, 16, 9, 10), (3, 2)),
                                           ((4, 8, 7, 5, 6), (2, 1, 3))])
def test_channels_first_strided_pointwise_bits_do_not_depend_on_threads(
        shape: tuple[int, ...], stride: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """Several bands per image and several stripes of images, float32, 1 to 3 threads."""
    monkeypatch.setattr(_pointwise_nchw, "column_bytes", lambda: 600)
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((40, shape[1], *(1,) * (len(shape) - 2))).astype(np.float32)
    y = ops.conv(x, w, stride=stride, threads=1)
    g = rng.standard_normal(y.shape).astype(np.float32)
    one = ops.conv_backward(g, x, w, stride=stride, bias=False, threads=1)
    for threads in (2, 3):
        assert np.array_equal(y, ops.conv(x, w, stride=stride, threads=threads))
        other = ops.conv_backward(g, x, w, stride=stride, bias=False, threads=threads)
        for a, b in zip(one[:2], other[:2]):
            assert a is not None and b is not None and np.array_equal(a, b)


@settings(max_examples=budget(30), deadline=None)
@given(nd=st.integers(1, 3), batch=st.integers(2, 4), cin=st.integers(2, 5),
       cout=st.integers(1, 6), seed=st.integers(0, 2**31), threads=st.integers(1, 3),
       x_channels_last=st.booleans(), data=st.data())
def test_stride_one_pointwise_backward_on_channels_first_grad_matches_torch(
        nd: int, batch: int, cin: int, cout: int, seed: int, threads: int,
        x_channels_last: bool, data: st.DataObject) -> None:
    """Stride 1 with a C-contiguous output gradient: ``grad_x[n] = W^T @ grad_out[n]`` written
    straight into a C-contiguous input gradient, ``grad_w`` from the images themselves (a view
    when ``x`` is C-contiguous, a copy per image when it is channels-last). Oracle: torch."""
    size = tuple(data.draw(st.integers(1, 9)) for _ in range(nd))
    case = ConvCase(batch, cin, cout, 1, size, (1,) * nd, (1,) * nd, (1,) * nd, 0, ((0, 0),) * nd)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, cin, *size))
    w = rng.standard_normal((cout, cin, *(1,) * nd))
    b = rng.standard_normal(cout)
    expected_y = ref.conv(case, x, w, b, None)[0]
    g = rng.standard_normal(expected_y.shape)
    expected = ref.conv(case, x, w, b, g)
    x_in = np.moveaxis(np.ascontiguousarray(np.moveaxis(x, 1, -1)), -1, 1) if x_channels_last else x
    gx, gw, gb = ops.conv_backward(g, x_in, w, threads=threads)
    assert gx.flags.c_contiguous  # the channels-first path (the channels-last one is not)
    ref.assert_close(gx, expected[1], 1e-10, f"grad_x {case}")
    ref.assert_close(gw, expected[2], 1e-10, f"grad_weight {case}")
    assert gb is not None
    ref.assert_close(gb, expected[3], 1e-10, f"grad_bias {case}")


def test_stride_one_pointwise_transpose_on_channels_first_input_matches_torch() -> None:
    """The same path computes a stride-1 1x1 transposed convolution (input gradient only) and
    its weight gradient (weight gradient only)."""
    case = TransposeCase(3, 6, 4, 1, (5, 7), (1, 1), (1, 1), (1, 1), (0, 0), (0, 0))
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 6, 5, 7))
    w = rng.standard_normal((6, 4, 1, 1))
    b = rng.standard_normal(4)
    g = rng.standard_normal((3, 4, 5, 7))
    expected = ref.conv_transpose(case, x, w, b, g)
    y = ops.conv_transpose(x, w, b)
    gx, gw, gb = ops.conv_transpose_backward(g, x, w)
    ref.assert_close(y, expected[0], 1e-10, "y")
    ref.assert_close(gx, expected[1], 1e-10, "grad_x")
    ref.assert_close(gw, expected[2], 1e-10, "grad_weight")
    assert gb is not None
    ref.assert_close(gb, expected[3], 1e-10, "grad_bias")


def test_stride_one_pointwise_backward_bits_do_not_depend_on_threads() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((7, 24, 9, 10)).astype(np.float32)
    w = rng.standard_normal((40, 24, 1, 1)).astype(np.float32)
    g = rng.standard_normal((7, 40, 9, 10)).astype(np.float32)
    one = ops.conv_backward(g, x, w, bias=False, threads=1)
    for threads in (2, 3):
        other = ops.conv_backward(g, x, w, bias=False, threads=threads)
        for a, b in zip(one[:2], other[:2]):
            assert a is not None and b is not None and np.array_equal(a, b)
