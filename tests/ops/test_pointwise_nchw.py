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
from tests.ops._configs import ConvCase


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
