"""The engine against the loop definitions in _bruteforce.py (second oracle, small sizes).

These cover what PyTorch cannot check directly: 'same' / 'same_lower' with stride > 1,
asymmetric pooling padding, and pooling windows made partly of padding in ceil mode.
"""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from stridelab import arith, ops
from tests._budget import budget
from tests.ops import _bruteforce as brute
from tests.ops._configs import ConvCase, PoolCase, TransposeCase, conv_cases, pool_cases, transpose_cases
from tests.ops._torch_ref import assert_close


@settings(max_examples=budget(150))
@given(case=conv_cases(ndims=(1, 2), max_size=5), seed=st.integers(0, 2**31))
def test_conv_matches_loops(case: ConvCase, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((case.batch, case.in_channels, *case.size))
    w = rng.standard_normal((case.out_channels, case.in_channels // case.groups, *case.kernel))
    y = ops.conv(x, w, None, case.stride, case.padding, case.dilation, case.groups)
    expected = brute.conv(x, w, case.stride, case.pads, case.dilation, case.groups)
    assert_close(y, expected, 1e-12, f"output {case}")
    g = rng.standard_normal(y.shape)
    gx, gw, _ = ops.conv_backward(g, x, w, case.stride, case.padding, case.dilation, case.groups)
    gx_ref, gw_ref = brute.conv_backward(g, x, w, case.stride, case.pads, case.dilation,
                                         case.groups)
    assert_close(gx, gx_ref, 1e-12, f"grad_x {case}")
    assert_close(gw, gw_ref, 1e-12, f"grad_weight {case}")


@settings(max_examples=budget(100))
@given(case=transpose_cases(ndims=(1, 2)), seed=st.integers(0, 2**31))
def test_conv_transpose_matches_scatter_definition(case: TransposeCase, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((case.batch, case.in_channels, *case.size))
    w = rng.standard_normal((case.in_channels, case.out_channels // case.groups, *case.kernel))
    y = ops.conv_transpose(x, w, None, case.stride, case.padding, case.output_padding,
                           case.dilation, case.groups)
    pads = tuple((p, p) for p in case.padding)
    expected = brute.conv_transpose(x, w, case.stride, pads, case.output_padding, case.dilation,
                                    case.groups)
    assert_close(y, expected, 1e-12, f"output {case}")


@st.composite
def _asymmetric_pools(draw: st.DrawFn) -> tuple[PoolCase, tuple[tuple[int, int], ...]]:
    case = draw(pool_cases(ndims=(1, 2), dilated=False))
    pads = tuple((draw(st.integers(0, k // 2)), draw(st.integers(0, k // 2))) for k in case.kernel)
    assume(all(i + pb + pa >= k for i, (pb, pa), k in zip(case.size, pads, case.kernel)))
    return case, pads


@settings(max_examples=budget(150))
@given(item=_asymmetric_pools(), seed=st.integers(0, 2**31), include_pad=st.booleans())
def test_pools_with_asymmetric_padding_match_loops(
    item: tuple[PoolCase, tuple[tuple[int, int], ...]], seed: int, include_pad: bool,
) -> None:
    case, pads = item
    x = np.random.default_rng(seed).standard_normal((case.batch, case.channels, *case.size))
    stride = case.stride or case.kernel
    out = arith.pool_output_size(case.size, case.kernel, stride, pads, 1, case.ceil_mode)
    assert isinstance(out, tuple)
    y, idx = ops.max_pool(x, case.kernel, case.stride, pads, 1, case.ceil_mode, True)
    y_ref, idx_ref = brute.max_pool(x, case.kernel, stride, pads, (1,) * case.ndim, out)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(idx, idx_ref)
    avg = ops.avg_pool(x, case.kernel, case.stride, pads, case.ceil_mode, include_pad)
    avg_ref = brute.avg_pool(x, case.kernel, stride, pads, out, include_pad)
    assert_close(avg, avg_ref, 1e-12, f"avg {case} {pads}")


@settings(max_examples=budget(60))
@given(case=pool_cases(ndims=(1, 2), dilated=False), seed=st.integers(0, 2**31),
       include_pad=st.booleans())
def test_avg_pool_backward_is_the_adjoint(case: PoolCase, seed: int, include_pad: bool) -> None:
    """<avg_pool(x), g> == <x, avg_pool_backward(g)>: the gradient is the exact adjoint."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((case.batch, case.channels, *case.size))
    args = (case.kernel, case.stride, case.padding, case.ceil_mode, include_pad)
    y = ops.avg_pool(x, *args)
    g = rng.standard_normal(y.shape)
    lhs, rhs = float(np.sum(y * g)), float(np.sum(x * ops.avg_pool_backward(g, x, *args)))
    assert abs(lhs - rhs) <= 1e-12 * max(1.0, float(np.sum(np.abs(y * g))))
