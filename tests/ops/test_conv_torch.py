"""conv / conv_backward against torch.nn.functional.conv{1,2,3}d and torch.autograd."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from stridelab import ops
from tests._budget import budget
from tests.ops import _torch_ref as ref
from tests.ops._configs import ConvCase, conv_cases


def _arrays(case: ConvCase, seed: int, dtype: type) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((case.batch, case.in_channels, *case.size)).astype(dtype)
    w = rng.standard_normal((case.out_channels, case.in_channels // case.groups, *case.kernel))
    b = rng.standard_normal(case.out_channels)
    return x, w.astype(dtype), b.astype(dtype)


def _check(case: ConvCase, seed: int, dtype: type, rtol: float) -> None:
    x, w, b = _arrays(case, seed, dtype)
    y = ops.conv(x, w, b, case.stride, case.padding, case.dilation, case.groups)
    g = np.random.default_rng(seed + 1).standard_normal(y.shape).astype(dtype)
    y_ref, gx_ref, gw_ref, gb_ref = ref.conv(case, x, w, b, g)
    ref.assert_close(y, y_ref, rtol, f"output {case}")
    gx, gw, gb = ops.conv_backward(g, x, w, case.stride, case.padding, case.dilation,
                                   case.groups)
    ref.assert_close(gx, gx_ref, rtol, f"grad_x {case}")
    ref.assert_close(gw, gw_ref, rtol, f"grad_weight {case}")
    assert gb is not None
    ref.assert_close(gb, gb_ref, rtol, f"grad_bias {case}")


@settings(max_examples=budget(900))
@given(case=conv_cases(), seed=st.integers(0, 2**31))
def test_conv_matches_torch_float64(case: ConvCase, seed: int) -> None:
    _check(case, seed, np.float64, 1e-10)


@settings(max_examples=budget(150))
@given(case=conv_cases(), seed=st.integers(0, 2**31))
def test_conv_matches_torch_float32(case: ConvCase, seed: int) -> None:
    _check(case, seed, np.float32, 2e-5)


@settings(max_examples=budget(100))
@given(case=conv_cases(ndims=(2,)), seed=st.integers(0, 2**31))
def test_channels_last_input_gives_the_same_result(case: ConvCase, seed: int) -> None:
    """An input whose memory is channels-last (as the engine's own outputs) changes nothing."""
    x, w, b = _arrays(case, seed, np.float64)
    x_cl = np.moveaxis(np.ascontiguousarray(np.moveaxis(x, 1, -1)), -1, 1)
    y = ops.conv(x, w, b, case.stride, case.padding, case.dilation, case.groups)
    y_cl = ops.conv(x_cl, w, b, case.stride, case.padding, case.dilation, case.groups)
    ref.assert_close(y_cl, y, 1e-12, "channels-last input")
    g = np.random.default_rng(seed).standard_normal(y.shape)
    g_cl = np.moveaxis(np.ascontiguousarray(np.moveaxis(g, 1, -1)), -1, 1)
    for a, e in zip(ops.conv_backward(g_cl, x_cl, w, case.stride, case.padding, case.dilation,
                                      case.groups),
                    ops.conv_backward(g, x, w, case.stride, case.padding, case.dilation,
                                      case.groups)):
        assert a is not None and e is not None
        ref.assert_close(a, e, 1e-12, "channels-last gradients")


def test_resnet_strided_layers_float32() -> None:
    """The benchmark's layer shapes (batch 1, smaller inputs) through the fast paths."""
    rng = np.random.default_rng(0)
    for cin, cout, k, s, p, size in [(3, 16, 7, 2, 3, 32), (16, 16, 3, 2, 1, 15),
                                     (32, 64, 1, 2, 0, 14), (8, 8, 3, 1, 1, 9)]:
        case = ConvCase(1, cin, cout, 1, (size, size), (k, k), (s, s), (1, 1), p,
                        ((p, p), (p, p)))
        _check(case, int(rng.integers(1000)), np.float32, 2e-5)


def test_bias_false_returns_none() -> None:
    x = np.ones((1, 2, 5), np.float64)
    w = np.ones((3, 2, 2), np.float64)
    y = ops.conv(x, w)
    assert ops.conv_backward(np.ones_like(y), x, w, bias=False)[2] is None


def test_windows_that_read_only_padding() -> None:
    """Stride so large that the only window lies in the leading padding: output is the bias."""
    x = np.random.default_rng(0).standard_normal((2, 3, 5))
    w = np.ones((2, 3, 1))
    case = ConvCase(2, 3, 2, 1, (5,), (1,), (8,), (1,), ((3, 0),), ((3, 0),))
    y = ops.conv(x, w, np.ones(2), 8, ((3, 0),))
    y_ref = ref.conv(case, x, w, np.ones(2), None)[0]
    ref.assert_close(y, y_ref, 1e-12, "padding-only window")
    gx, gw, _ = ops.conv_backward(np.ones_like(y), x, w, 8, ((3, 0),))
    assert not gx.any() and not gw.any()
