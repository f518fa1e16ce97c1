"""conv_transpose / conv_transpose_backward against torch conv_transpose{1,2,3}d + autograd."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from stridelab import arith, ops
from tests._budget import budget
from tests.ops import _torch_ref as ref
from tests.ops._configs import TransposeCase, conv_cases, transpose_cases


def _check(case: TransposeCase, seed: int, dtype: type, rtol: float) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((case.batch, case.in_channels, *case.size)).astype(dtype)
    w = rng.standard_normal((case.in_channels, case.out_channels // case.groups, *case.kernel))
    w = w.astype(dtype)
    b = rng.standard_normal(case.out_channels).astype(dtype)
    args = (case.stride, case.padding, case.output_padding, case.dilation, case.groups)
    y = ops.conv_transpose(x, w, b, *args)
    assert y.shape[2:] == arith.transposed_output_size(case.size, case.kernel, case.stride,
                                                       case.padding, case.dilation,
                                                       case.output_padding)
    g = rng.standard_normal(y.shape).astype(dtype)
    y_ref, gx_ref, gw_ref, gb_ref = ref.conv_transpose(case, x, w, b, g)
    ref.assert_close(y, y_ref, rtol, f"output {case}")
    gx, gw, gb = ops.conv_transpose_backward(g, x, w, *args)
    ref.assert_close(gx, gx_ref, rtol, f"grad_x {case}")
    ref.assert_close(gw, gw_ref, rtol, f"grad_weight {case}")
    assert gb is not None
    ref.assert_close(gb, gb_ref, rtol, f"grad_bias {case}")


@settings(max_examples=budget(400))
@given(case=transpose_cases(), seed=st.integers(0, 2**31))
def test_conv_transpose_matches_torch_float64(case: TransposeCase, seed: int) -> None:
    _check(case, seed, np.float64, 1e-10)


@settings(max_examples=budget(60))
@given(case=transpose_cases(), seed=st.integers(0, 2**31))
def test_conv_transpose_matches_torch_float32(case: TransposeCase, seed: int) -> None:
    _check(case, seed, np.float32, 2e-5)


@settings(max_examples=budget(100))
@given(case=conv_cases(), seed=st.integers(0, 2**31))
def test_transpose_is_the_adjoint_of_conv(case, seed: int) -> None:  # type: ignore[no-untyped-def]
    """<conv(x), y> == <x, conv_transpose(y)> for any padding, 'same' with stride included."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((case.batch, case.in_channels, *case.size))
    w = rng.standard_normal((case.out_channels, case.in_channels // case.groups, *case.kernel))
    cx = ops.conv(x, w, None, case.stride, case.pads, case.dilation, case.groups)
    y = rng.standard_normal(cx.shape)
    out_pad = []
    for i, o, k, s, pads, d in zip(case.size, cx.shape[2:], case.kernel, case.stride, case.pads,
                                   case.dilation):
        out_pad.append(arith.output_padding_for(o, i, k, s, (pads,), d))
    ty = ops.conv_transpose(y, w, None, case.stride, case.pads, tuple(out_pad), case.dilation,
                            case.groups)
    assert ty.shape == x.shape
    lhs, rhs = float(np.sum(cx * y)), float(np.sum(x * ty))
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs), float(np.sum(np.abs(cx * y))))


def test_output_padding_beyond_the_stride_with_dilation() -> None:
    """PyTorch allows output_padding < max(stride, dilation): 1x1 kernels must honour it too."""
    for case in (TransposeCase(1, 2, 3, 1, (3,), (1,), (1,), (2,), (0,), (1,)),
                 TransposeCase(2, 2, 2, 1, (3, 2), (1, 2), (2, 1), (3, 3), (0, 1), (2, 2))):
        _check(case, 0, np.float64, 1e-10)
