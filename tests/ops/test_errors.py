"""Bad input raises ValueError / TypeError naming the argument and the shapes involved."""

from __future__ import annotations

import re

import numpy as np
import pytest

from stridelab import ops

X = np.zeros((2, 4, 8, 8))
W = np.zeros((6, 4, 3, 3))


@pytest.mark.parametrize(
    ("call", "error", "pattern"),
    [
        (lambda: ops.conv(X.tolist(), W), TypeError, r"x must be a numpy.ndarray.*list"),
        (lambda: ops.conv(X, "w"), TypeError, r"weight must be a numpy.ndarray"),
        (lambda: ops.conv(X.astype(np.int64), W), TypeError, r"x must have dtype.*int64"),
        (lambda: ops.conv(X[0], W), ValueError,
         r"weight must be 3-D .* to match x of shape \(4, 8, 8\); got 4-D shape \(6, 4, 3, 3\)"),
        (lambda: ops.conv(X[:, :, :, :, None, None], W), ValueError, r"got 6-D shape"),
        (lambda: ops.conv(X, W[..., 0]), ValueError, r"weight must be 4-D.*\(6, 4, 3\)"),
        (lambda: ops.conv(X, np.zeros((6, 3, 3, 3))), ValueError,
         r"channel mismatch: x has 4 channels .*\(2, 4, 8, 8\).*\(6, 3, 3, 3\)"),
        (lambda: ops.conv(X, np.zeros((6, 1, 3, 3)), groups=3), ValueError,
         r"divisible by groups=3"),
        (lambda: ops.conv(X, np.zeros((5, 2, 3, 3)), groups=2), ValueError,
         r"weight.shape\[0\].*\(5, 2, 3, 3\).*groups=2"),
        (lambda: ops.conv(X, np.zeros((6, 4, 11, 3))), ValueError,
         r"kernel is larger than the padded input.*x shape \(2, 4, 8, 8\).*\(6, 4, 11, 3\)"),
        (lambda: ops.conv(X, W, stride=-1), ValueError, r"stride must be an int >= 1, got -1"),
        (lambda: ops.conv(X, W, stride=(1, 0)), ValueError, r"stride\[1\] must be an int >= 1"),
        (lambda: ops.conv(X, W, dilation=(1, 2, 3)), ValueError, r"dilation must be .* 2 ints"),
        (lambda: ops.conv(X, W, padding=-2), ValueError, r"padding must be an int >= 0"),
        (lambda: ops.conv(X, W, padding="full"), ValueError, r"padding must be .*'same'"),
        (lambda: ops.conv(X, W, groups=0), ValueError, r"groups must be an int >= 1"),
        (lambda: ops.conv(X.astype(np.float32), W), TypeError,
         r"dtypes must match.*x float32 \(2, 4, 8, 8\), weight float64 \(6, 4, 3, 3\)"),
        (lambda: ops.conv(X, W, bias=np.zeros(5)), ValueError, r"bias must have shape \(6,\)"),
        (lambda: ops.conv(X, W, bias=np.zeros(6, np.float32)), TypeError, r"bias dtype float32"),
        (lambda: ops.conv_backward(np.zeros((2, 6, 5, 5)), X, W), ValueError,
         r"grad_out must have the forward output's shape \(2, 6, 6, 6\), got \(2, 6, 5, 5\)"),
        (lambda: ops.conv_backward(np.zeros((2, 6, 6, 6), np.float32), X, W), TypeError,
         r"grad_out dtype float32"),
        (lambda: ops.conv_transpose(X, np.zeros((3, 2, 3, 3))), ValueError,
         r"weight.shape\[0\] must equal the channels of x.*\(3, 2, 3, 3\).*\(2, 4, 8, 8\)"),
        (lambda: ops.conv_transpose(X, np.zeros((4, 2, 3, 3)), stride=2, output_padding=2),
         ValueError, r"output_padding must be in \[0, max\(stride, dilation\)\)"),
        (lambda: ops.conv_transpose(X, np.zeros((4, 2, 3, 3)), padding=9), ValueError,
         r"transposed conv output would be .* < 1.*x shape \(2, 4, 8, 8\)"),
        (lambda: ops.max_pool(X, 3, padding=2), ValueError, r"padding must be at most half"),
        (lambda: ops.max_pool(X, 9), ValueError, r"kernel is larger than the padded input.*"
                                                 r"x shape \(2, 4, 8, 8\)"),
        (lambda: ops.max_pool(X, 0), ValueError, r"kernel must be an int >= 1"),
        (lambda: ops.max_pool(X, 2, stride=-2), ValueError, r"stride must be an int >= 1"),
        (lambda: ops.max_pool(X, 2, ceil_mode=1), TypeError, r"ceil_mode must be True or False"),
        (lambda: ops.avg_pool(X, 2, divisor_override=0), ValueError, r"divisor_override"),
        (lambda: ops.avg_pool(X[0, 0], 2), ValueError, r"x must be 3-D .*got 2-D shape \(8, 8\)"),
        (lambda: ops.max_pool_backward(np.zeros((2, 4, 3, 3)), X, 2), ValueError,
         r"grad_out must have the forward output's shape \(2, 4, 4, 4\)"),
        (lambda: ops.max_pool_backward(np.zeros((2, 4, 4, 4)), X, 2, indices=np.zeros(3)),
         ValueError, r"indices must be an integer array of shape \(2, 4, 4, 4\)"),
    ],
)
def test_bad_input_is_rejected_with_a_useful_message(call, error, pattern) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error) as info:
        call()
    assert re.search(pattern, str(info.value)), str(info.value)
