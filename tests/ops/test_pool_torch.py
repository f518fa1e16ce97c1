"""max_pool / avg_pool and their backward against torch.nn.functional pooling + autograd."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from stridelab import arith, ops
from tests._budget import budget
from tests.ops import _torch_ref as ref
from tests.ops._configs import PoolCase, pool_cases


def _every_window_reads_a_pixel(case: PoolCase) -> bool:
    """PyTorch crashes (double free) when a dilated window covers only padding: avoid those."""
    stride = case.stride or case.kernel
    out = arith.pool_output_size(case.size, case.kernel, stride, case.padding, case.dilation,
                                 case.ceil_mode)
    assert isinstance(out, tuple)
    for i, k, s, p, d, o in zip(case.size, case.kernel, stride, case.padding, case.dilation, out):
        for u in range(o):
            if not any(0 <= u * s - p + t * d < i for t in range(k)):
                return False
    return True


def _input(case: PoolCase, seed: int, dtype: type) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((case.batch, case.channels, *case.size)).astype(dtype)


@settings(max_examples=budget(400))
@given(case=pool_cases(), seed=st.integers(0, 2**31), dtype=st.sampled_from([np.float64,
                                                                            np.float32]))
def test_max_pool_matches_torch(case: PoolCase, seed: int, dtype: type) -> None:
    assume(_every_window_reads_a_pixel(case))
    x = _input(case, seed, dtype)
    args = (case.kernel, case.stride, case.padding, case.dilation, case.ceil_mode)
    y, idx = ops.max_pool(x, *args, return_indices=True)
    assert y.shape[2:] == arith.pool_output_size(case.size, case.kernel, case.stride,
                                                 case.padding, case.dilation, case.ceil_mode)
    g = np.random.default_rng(seed + 1).standard_normal(y.shape).astype(dtype)
    y_ref, idx_ref, gx_ref = ref.max_pool(case, x, g)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(idx, idx_ref)
    gx = ops.max_pool_backward(g, x, *args)
    ref.assert_close(gx, gx_ref, 1e-6 if dtype is np.float32 else 1e-12, f"grad_x {case}")
    ref.assert_close(ops.max_pool_backward(g, x, *args, indices=idx), gx, 0.0, "via indices")


@settings(max_examples=budget(400))
@given(case=pool_cases(dilated=False), seed=st.integers(0, 2**31), include_pad=st.booleans(),
       dtype=st.sampled_from([np.float64, np.float32]))
def test_avg_pool_matches_torch(case: PoolCase, seed: int, include_pad: bool, dtype: type
                                ) -> None:
    if case.ndim == 3:  # PyTorch's avg_pool3d wants the unpadded input >= kernel
        assume(all(i >= k for i, k in zip(case.size, case.kernel)))
    x = _input(case, seed, dtype)
    args = (case.kernel, case.stride, case.padding, case.ceil_mode, include_pad)
    y = ops.avg_pool(x, *args)
    g = np.random.default_rng(seed + 1).standard_normal(y.shape).astype(dtype)
    y_ref, gx_ref = ref.avg_pool(case, x, include_pad, g)
    rtol = 2e-6 if dtype is np.float32 else 1e-12
    ref.assert_close(y, y_ref, rtol, f"output {case}")
    ref.assert_close(ops.avg_pool_backward(g, x, *args), gx_ref, rtol, f"grad_x {case}")


def test_max_pool_nan_propagates_and_ties_pick_the_first() -> None:
    x = np.array([[[1.0, 3.0, 3.0, np.nan, 2.0, 2.0]]])
    y, idx = ops.max_pool(x, 2, return_indices=True)
    y_ref, idx_ref = ref.max_pool(PoolCase(1, 1, (6,), (2,), None, (1,), (0,), False), x, None)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(idx, idx_ref)
    assert idx.ravel().tolist() == [1, 3, 4]


def test_avg_pool_divisor_override_matches_torch() -> None:
    import torch
    import torch.nn.functional as F

    x = np.random.default_rng(0).standard_normal((2, 3, 7, 6))
    y = ops.avg_pool(x, 3, 2, 1, ceil_mode=True, divisor_override=5)
    y_ref = F.avg_pool2d(torch.tensor(x), 3, 2, 1, ceil_mode=True, divisor_override=5)
    ref.assert_close(y, y_ref.numpy(), 1e-12, "divisor_override")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pool_keeps_dtype(dtype: type) -> None:
    x = np.ones((1, 1, 4, 4), dtype=dtype)
    assert ops.max_pool(x, 2).dtype == dtype
    assert ops.avg_pool(x, 2).dtype == dtype
    assert ops.avg_pool_backward(np.ones((1, 1, 2, 2), dtype), x, 2).dtype == dtype
    assert ops.max_pool_backward(np.ones((1, 1, 2, 2), dtype), x, 2).dtype == dtype


def test_window_of_only_padding_is_minus_inf_and_sends_no_gradient() -> None:
    """Size 1, kernel 2, dilation 2, padding 1: the window reads positions -1 and 1 only."""
    x = np.array([[[5.0], [7.0]]])
    y, idx = ops.max_pool(x, 2, 1, 1, dilation=2, return_indices=True)
    assert y.shape == (1, 2, 1) and np.all(y == -np.inf)
    assert np.all(idx == -1)
    gx = ops.max_pool_backward(np.ones_like(y), x, 2, 1, 1, dilation=2)
    assert np.all(gx == 0.0)
