"""Bad input raises ValueError / TypeError naming the parameter and the allowed values."""

from __future__ import annotations

import pytest

from stridelab import arith

BAD = [
    (lambda: arith.conv_output_size(0, 3), ValueError, "size must be an int >= 1"),
    (lambda: arith.conv_output_size(8, 0), ValueError, "kernel must be an int >= 1"),
    (lambda: arith.conv_output_size(8, 3, 0), ValueError, "stride must be an int >= 1"),
    (lambda: arith.conv_output_size(8, 3, 1, 0, 0), ValueError, "dilation must be an int >= 1"),
    (lambda: arith.conv_output_size(8, 3, 1, -1), ValueError, "padding must be an int >= 0"),
    (lambda: arith.conv_output_size(2, 5), ValueError, "kernel is larger than the padded input"),
    (lambda: arith.conv_output_size(8, 3, 1, "full"), ValueError, "'valid', 'same', 'same_lower'"),
    (lambda: arith.conv_output_size((8, 8), (3, 3, 3)), ValueError, "kernel must be an int or a tuple of 2"),
    (lambda: arith.conv_output_size(8.0, 3), TypeError, "size must be an int"),
    (lambda: arith.conv_output_size(8, True), TypeError, "kernel must be an int"),
    (lambda: arith.conv_output_size((8, 8), 3, 1, (1, 2, 3)), ValueError, "padding must be"),
    (lambda: arith.pool_output_size(8, 3, 2, 2), ValueError, "at most half the kernel"),
    (lambda: arith.transposed_output_size(4, 3, 2, 0, 1, 2), ValueError, "output_padding must be in"),
    (lambda: arith.output_padding_for(4, 20, 3, 2, 1), ValueError, "no output_padding"),
    (lambda: arith.same_padding(8, 3, mode="middle"), ValueError, "mode must be one of"),
    (lambda: arith.parse_layers("x3"), ValueError, "layer spec"),
    (lambda: arith.solve(8, 4, kernels=()), ValueError, "kernels must list"),
]


@pytest.mark.parametrize("call,error,text", BAD)
def test_bad_input_is_named(call, error, text) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=text.replace("(", r"\(").replace(")", r"\)")):
        call()


def test_one_d_pair_is_before_after() -> None:
    assert arith.padding_pairs((0, 1), 8, 3) == ((0, 1),)
    assert arith.padding_pairs((1, 2), (8, 8), 3) == ((1, 1), (2, 2))
    assert arith.conv_output_size((224, 224), 7, 2, 3) == (112, 112)
