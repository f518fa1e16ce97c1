"""Blocks and shortcuts against hand-written definitions; where padding is resolved."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from stridelab.nn import AvgPool2d, BasicBlock, BlurPool2d, Bottleneck, Conv2d, MaxPool2d
from stridelab.nn.blocks import ShortcutA
from stridelab.nn.layers import split_padding
from stridelab.nn.space_to_depth import SpaceToDepthConv


def test_shortcut_a_is_subsample_plus_zero_channels() -> None:
    x = torch.randn(2, 3, 7, 6)
    y = ShortcutA(3, 5, 2)(x)
    assert y.shape == (2, 5, 4, 3)
    torch.testing.assert_close(y[:, :3], x[:, :, 0::2, 0::2])
    assert float(y[:, 3:].abs().sum()) == 0.0


@pytest.mark.parametrize("shortcut", ["A", "B", "D"])
@pytest.mark.parametrize("downsample", ["stride", "maxpool", "avgpool", "blurpool",
                                        "space_to_depth"])
def test_basic_block_shapes_and_parts(shortcut: str, downsample: str) -> None:
    block = BasicBlock(4, 8, 2, shortcut=shortcut, downsample=downsample)
    assert block(torch.randn(1, 4, 9, 10)).shape == (1, 8, 5, 5)
    pool = {"maxpool": MaxPool2d, "avgpool": AvgPool2d, "blurpool": BlurPool2d}.get(downsample)
    if pool is None:
        assert block.pool is None
        expected = SpaceToDepthConv if downsample == "space_to_depth" else Conv2d
        assert isinstance(block.conv1, expected) and block.conv1.stride == (2, 2)
    else:
        assert isinstance(block.pool, pool) and block.conv1.stride == (1, 1)
    names = [type(m).__name__ for m in block.downsample.modules()]  # type: ignore[union-attr]
    if shortcut == "D":
        assert names[1:] == ["AvgPool2d", "Conv2d", "BatchNorm2d"]
    if shortcut == "A":
        assert sum(p.numel() for p in block.downsample.parameters()) == 0  # type: ignore[union-attr]


def test_shortcut_d_is_avgpool_then_projection() -> None:
    block = BasicBlock(4, 8, 2, shortcut="D").eval()
    x = torch.randn(1, 4, 8, 8)
    conv, bn = block.downsample[1], block.downsample[2]  # type: ignore[index]
    expected = bn(conv(F.avg_pool2d(x, 2, 2)))
    torch.testing.assert_close(block.downsample(x), expected)  # type: ignore[misc]


@pytest.mark.parametrize("stride_on", ["3x3", "1x1"])
def test_bottleneck_stride_position(stride_on: str) -> None:
    block = Bottleneck(16, 8, 2, stride_on=stride_on, groups=2, width_per_group=32)
    assert block.conv2.groups == 2 and block.conv2.out_channels == 8  # type: ignore[union-attr]
    strided = block.conv2 if stride_on == "3x3" else block.conv1
    other = block.conv1 if stride_on == "3x3" else block.conv2
    assert strided.stride == (2, 2) and other.stride == (1, 1)
    assert block(torch.randn(1, 16, 7, 7)).shape == (1, 32, 4, 4)


def test_dilated_block_keeps_size() -> None:
    block = Bottleneck(64, 16, 1, dilation=4)
    assert block.conv2.dilation == (4, 4) and block.conv2.padding == (4, 4)  # type: ignore
    assert block(torch.randn(1, 64, 11, 9)).shape == (1, 64, 11, 9)


def test_padding_resolved_statically_unless_needed() -> None:
    assert Conv2d(1, 1, 3, padding="same")._resolver.static_split == ((1, 1), None)
    assert Conv2d(1, 1, 4, padding="same")._resolver.static_split == ((1, 1), [0, 1, 0, 1])
    assert Conv2d(1, 1, 3, stride=2, padding=1)._resolver.static_split == ((1, 1), None)
    assert Conv2d(1, 1, 3, stride=2, padding="same")._resolver.static_split is None
    assert Conv2d(1, 1, 1, stride=2, padding="same")._resolver.static_split == ((0, 0), None)
    # fold the symmetric part, pad only the excess (last axis first, as F.pad wants)
    assert split_padding(((2, 3), (1, 0)), fold=True) == ((2, 0), [1, 0, 0, 1])
    assert split_padding(((2, 3), (1, 0)), fold=False) == ((0, 0), [1, 0, 2, 3])
