"""arith's ONNX conventions: the branch-free 'same' formula, pooling padding rules, ConvTranspose
padding (ONNX's documented equations)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from stridelab import arith


def test_same_total_padding_matches_the_definition_and_works_on_arrays() -> None:
    """``max((ceil(i / s) - 1) * s + k_eff - i, 0)`` (TF 'SAME'), also evaluated on a whole array
    at once: the formula uses only + - * // %, so any integer-like type gives the same answer."""
    sizes = np.arange(1, 200)
    for k_eff, s in itertools.product(range(1, 13), range(1, 9)):
        expected = [max((-(-i // s) - 1) * s + k_eff - i, 0) for i in range(1, 200)]
        assert [arith.same_total_padding(i, k_eff, s) for i in range(1, 200)] == expected
        assert arith.same_total_padding(sizes, k_eff, s).tolist() == expected
        for mode in ("upper", "lower"):
            pairs = [arith.split_same_padding(t, mode) for t in expected]
            assert pairs == [arith.same_padding(i, k_eff, s, mode=mode) for i in range(1, 200)]


def test_pool_padding_beyond_half_kernel_needs_the_onnx_convention() -> None:
    with pytest.raises(ValueError, match="convention='onnx'"):
        arith.pool_output_size(5, 3, 1, 2)
    with pytest.raises(ValueError, match="convention"):
        arith.pool_output_size(5, 3, 1, 1, convention="tf")
    # ONNX: any padding; the count of windows is the conv formula (brute force below).
    for i, k, s, pb, pa, d in itertools.product(range(1, 8), range(1, 4), range(1, 4), range(4),
                                                range(4), range(1, 3)):
        k_eff = d * (k - 1) + 1
        starts = [u for u in range(-pb, i + pa) if (u + pb) % s == 0 and u + k_eff <= i + pa]
        if not starts:
            continue
        got = arith.pool_output_size(i, k, s, ((pb, pa),), d, convention="onnx")
        assert got == len(starts)


def test_transposed_padding_follows_onnx_equations() -> None:
    # total = (i - 1) * s + output_padding + k_eff - o, split SAME_UPPER: total // 2 first.
    assert arith.transposed_padding(5, 3, 2, "same") == ((0, 1),)
    assert arith.transposed_padding(5, 3, 2, "same", output_padding=1) == ((1, 1),)
    assert arith.transposed_padding(5, 4, 2, "same_lower", output_padding=1) == ((2, 1),)
    # output_shape with numeric padding (ONNX NOTSET): the odd pixel goes first; pads ignored.
    assert arith.transposed_padding(3, 3, 3, 5, output_shape=6) == ((2, 1),)
    assert arith.transposed_padding(3, 3, 3, 0, output_shape=10) == ((0, -1),)
    assert arith.transposed_padding((3, 3), 3, (3, 2), 0, output_shape=(10, 8)) == ((0, -1), (0, -1))
    assert arith.transposed_padding(4, 3, 2, ((1, 0),)) == ((1, 0),)
    for i, k, s, op in itertools.product(range(1, 6), range(1, 6), range(1, 4), range(3)):
        if op >= s:
            continue
        (b, a), = arith.transposed_padding(i, k, s, "same", output_padding=op)
        assert (i - 1) * s + op + k - b - a == i * s  # the output is i * s
