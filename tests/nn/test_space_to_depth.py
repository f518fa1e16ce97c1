"""SpaceToDepth / space_to_depth_conv equal the strided conv; BlurPool equals its definition."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from stridelab.nn import BlurPool2d, Conv2d, SpaceToDepth, space_to_depth_conv
from tests._budget import budget


@settings(max_examples=budget(40))
@given(h=st.integers(1, 17), w=st.integers(1, 17), k=st.integers(1, 7), s=st.integers(2, 4),
       d=st.integers(1, 2),
       padding=st.one_of(st.integers(0, 3), st.sampled_from(["same", "same_lower", "valid"]),
                         st.tuples(st.tuples(st.integers(0, 3), st.integers(0, 3)),
                                   st.tuples(st.integers(0, 3), st.integers(0, 3)))))
def test_space_to_depth_conv_equals_conv(h: int, w: int, k: int, s: int, d: int,
                                         padding: object) -> None:
    torch.manual_seed(1)
    conv = Conv2d(3, 5, k, stride=s, padding=padding, dilation=d)  # type: ignore[arg-type]
    x = torch.randn(2, 3, h, w, dtype=torch.float64)
    conv = conv.double()
    pairs = conv.padding_for((h, w))
    k_eff = d * (k - 1) + 1
    if any(n + b + a < k_eff for n, (b, a) in zip((h, w), pairs)):
        return  # the conv itself is undefined here
    rewritten = space_to_depth_conv(conv)
    torch.testing.assert_close(rewritten(x), conv(x))


def test_space_to_depth_conv_of_torch_conv_and_stem() -> None:
    stem = torch.nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
    rewritten = space_to_depth_conv(stem)
    assert rewritten.conv.stride == (1, 1) and rewritten.conv.kernel_size == (4, 4)
    assert rewritten.conv.in_channels == 12
    x = torch.randn(1, 3, 57, 64)
    torch.testing.assert_close(rewritten(x), stem(x), atol=1e-4, rtol=1e-4)


def test_space_to_depth_conv_rejects_groups() -> None:
    with pytest.raises(ValueError, match="groups"):
        space_to_depth_conv(torch.nn.Conv2d(4, 4, 3, stride=2, groups=2))
    with pytest.raises(ValueError, match="padding_mode"):
        space_to_depth_conv(torch.nn.Conv2d(4, 4, 3, stride=2, padding_mode="reflect"))


@settings(max_examples=budget(20))
@given(h=st.integers(1, 13), w=st.integers(1, 13), block=st.integers(1, 4))
def test_space_to_depth_layout(h: int, w: int, block: int) -> None:
    x = torch.randn(1, 2, h, w)
    y = SpaceToDepth(block)(x)
    oh, ow = math.ceil(h / block), math.ceil(w / block)
    assert y.shape == (1, 2 * block * block, oh, ow)
    padded = F.pad(x, [0, ow * block - w, 0, oh * block - h])
    torch.testing.assert_close(y, F.pixel_unshuffle(padded, block))  # torch's own layout
    for c, r, q in [(0, 0, 0), (1, block - 1, block - 1), (1, 0, block - 1)]:
        channel = c * block * block + r * block + q
        torch.testing.assert_close(y[0, channel], padded[0, c, r::block, q::block])


def binomial(n: int) -> np.ndarray:
    row = np.array([1.0])
    for _ in range(n - 1):
        row = np.convolve(row, [1.0, 1.0])
    return row / row.sum()


@pytest.mark.parametrize("filter_size", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("size", [(7, 8), (16, 16)])
def test_blurpool_definition(filter_size: int, stride: int, size: tuple[int, int]) -> None:
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    pool = BlurPool2d(3, stride=stride, filter_size=filter_size)
    got = pool(x)
    row = binomial(filter_size)
    kernel = torch.from_numpy(np.outer(row, row)).expand(3, 1, filter_size, filter_size)
    before, after = (filter_size - 1) // 2, filter_size // 2
    padded = F.pad(x, [before, after, before, after], mode="reflect") if filter_size > 1 else x
    expected = F.conv2d(padded, kernel, stride=stride, groups=3)
    assert got.shape[-2:] == tuple(math.ceil(n / stride) for n in size)
    torch.testing.assert_close(got, expected)
    assert list(pool.state_dict()) == []  # the filter is fixed, not a checkpointed weight


def test_blurpool_tiny_inputs_and_constants() -> None:
    pool = BlurPool2d(1, stride=2, filter_size=3)
    assert pool(torch.randn(1, 1, 1, 1)).shape == (1, 1, 1, 1)  # too small to reflect
    const = torch.full((1, 1, 9, 10), 3.0)
    torch.testing.assert_close(pool(const), torch.full((1, 1, 5, 5), 3.0))  # filter sums to 1
    with pytest.raises(ValueError, match="stride"):
        BlurPool2d(1, stride=0)
