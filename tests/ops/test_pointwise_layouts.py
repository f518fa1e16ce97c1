"""1x1 convolutions take a layout-specific path (NCHW batched GEMM vs channels-last gather):
both must equal torch, for every stride and for float32 / float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stridelab import ops


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
