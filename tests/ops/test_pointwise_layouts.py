"""1x1 convolutions take a layout-specific path (NCHW batched GEMM vs channels-last gather):
both must equal torch, for every stride and for float32 / float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from stridelab import ops
from stridelab.ops import _pointwise, _rowgemm
from tests._budget import budget


@pytest.mark.parametrize("stride", [1, 2, 3, (2, 1)])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pointwise_matches_torch_in_both_layouts(stride, channels_last: bool, dtype) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 5, 9, 8)).astype(dtype)
    w = rng.standard_normal((4, 5, 1, 1)).astype(dtype)
    if channels_last:
        x = np.moveaxis(np.ascontiguousarray(np.moveaxis(x, 1, -1)), -1, 1)
        assert not x.flags.c_contiguous
    got = ops.conv(x, w, stride=stride)
    expected = F.conv2d(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(w),
                        stride=stride).numpy()
    assert got.dtype == dtype and got.shape == expected.shape
    tol = 1e-10 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)


@settings(max_examples=budget(40), deadline=None)
@given(rows=st.integers(0, 5000), width=st.integers(1, 300), limit=st.integers(1, 1 << 16))
def test_row_bands_partition_rows_evenly(rows: int, width: int, limit: int) -> None:
    """Brute force: the bands tile ``range(rows)`` in order, differ by at most one row, and
    their count is a multiple of BAND_MULTIPLE whenever the rows need more than one band."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_rowgemm, "column_bytes", lambda: limit)
        bands = _rowgemm.row_bands(rows, width, 4)
    covered = [i for band in bands for i in range(band.start, band.stop)]
    assert covered == list(range(rows))
    sizes = [band.stop - band.start for band in bands]
    assert not sizes or max(sizes) - min(sizes) <= 1
    per = max(1, limit // (width * 4))
    if rows > per:
        assert len(bands) % _rowgemm.BAND_MULTIPLE == 0 or len(bands) == rows
        assert max(sizes) <= per


@pytest.mark.parametrize("stride, last", [(1, True), (2, False), (2, True), ((3, 2), False)])
def test_banded_pointwise_forward_matches_torch_and_threads(
        stride: int | tuple[int, int], last: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Many pieces (a budget of a few rows): strided, pieces of output rows gathered and
    multiplied; stride 1 on channels-last memory, row bands of one GEMM. float64 against torch,
    float32 bit-identical for 1, 2 and 3 threads."""
    monkeypatch.setattr(_rowgemm, "column_bytes", lambda: 700)
    monkeypatch.setattr(_pointwise, "column_bytes", lambda: 700)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 24, 13, 11))
    if last:
        x = np.moveaxis(np.ascontiguousarray(np.moveaxis(x, 1, -1)), -1, 1)
    w = rng.standard_normal((10, 24, 1, 1))
    y = ops.conv(x, w, stride=stride)
    expected = F.conv2d(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(w),
                        stride=stride).numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)
    x32, w32 = x.astype(np.float32), w.astype(np.float32)
    one = ops.conv(x32, w32, stride=stride, threads=1)
    for threads in (2, 3):
        assert np.array_equal(one, ops.conv(x32, w32, stride=stride, threads=threads))
