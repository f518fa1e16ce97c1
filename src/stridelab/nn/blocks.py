"""Residual blocks with every common way of putting a stride in them.

Naming follows torchvision's ``resnet.py`` (``conv1``, ``bn1``, ..., ``downsample`` for the
shortcut projection) so that the default variants have identical ``state_dict`` keys.

* ``stride_on``: ``"3x3"`` puts the stride on the 3x3 conv (torchvision, "ResNet v1.5");
  ``"1x1"`` on the first 1x1 conv of a bottleneck (He et al. 2016, the original paper).
* ``downsample`` (how the block reduces resolution, main path and projection shortcut alike):
  ``"stride"`` a strided conv; ``"space_to_depth"`` the same conv computed by
  :func:`space_to_depth_conv` (identical maths); ``"maxpool"`` / ``"avgpool"`` / ``"blurpool"``
  the conv at stride 1, then after its activation a pool that subsamples (kernel = stride, 'same'
  padding; BlurPool: binomial 3x3, Zhang 2019).
* ``shortcut`` when the shape changes: ``"B"`` 1x1 conv + BN projection; ``"A"`` subsample and
  append zero channels (parameter-free, He 2016 CIFAR); ``"D"`` average pool, then 1x1 conv + BN
  (He et al. 2019, "Bag of Tricks"; always an average pool, whatever ``downsample`` says). In the
  pool modes, B and A subsample with the block's pool instead of a stride.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from stridelab.nn.blur import BlurPool2d
from stridelab.nn.layers import AvgPool2d, Conv2d, MaxPool2d
from stridelab.nn.plan import (
    BLUR_FILTER_SIZE,
    DOWNSAMPLES,
    PADDINGS,
    SHORTCUTS,
    STRIDE_ON,
    _check_choice,
    _check_int,
    conv_padding,
)
from stridelab.nn.space_to_depth import space_to_depth_conv


def conv3x3(in_channels: int, out_channels: int, stride: int = 1, groups: int = 1,
            dilation: int = 1, padding: str = "symmetric") -> Conv2d:
    """3x3 conv without bias (BN follows); ``padding`` style from :data:`plan.PADDINGS`."""
    return Conv2d(in_channels, out_channels, 3, stride=stride,
                  padding=conv_padding(padding, 3, dilation), dilation=dilation, groups=groups,
                  bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1,
            padding: str = "symmetric") -> Conv2d:
    """1x1 conv without bias."""
    return Conv2d(in_channels, out_channels, 1, stride=stride, padding=conv_padding(padding, 1),
                  bias=False)


def make_pool(downsample: str, channels: int, stride: int) -> nn.Module:
    """The subsampling layer of a pool ``downsample`` mode (kernel = stride, 'same' padding)."""
    if downsample == "maxpool":
        return MaxPool2d(stride, stride, padding="same")
    if downsample == "avgpool":
        return AvgPool2d(stride, stride, padding="same", count_include_pad=False)
    if downsample == "blurpool":
        return BlurPool2d(channels, stride=stride, filter_size=BLUR_FILTER_SIZE)
    raise ValueError(f"downsample={downsample!r} has no pooling layer")


class ShortcutA(nn.Module):
    """Option A: subsample by ``stride`` (``x[..., ::s, ::s]``, or the block's pool), then append
    ``out_channels - in_channels`` zero channels. No parameters."""

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 pool: nn.Module | None = None) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.pool = pool

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"

    def forward(self, x: Tensor) -> Tensor:
        if self.pool is not None:
            x = self.pool(x)
        elif self.stride > 1:
            x = x[:, :, ::self.stride, ::self.stride]
        extra = self.out_channels - self.in_channels
        if extra:
            x = torch.cat([x, x.new_zeros(x.shape[0], extra, x.shape[2], x.shape[3])], dim=1)
        return x


def make_shortcut(shortcut: str, in_channels: int, out_channels: int, stride: int,
                  downsample: str, padding: str) -> nn.Module | None:
    """The shortcut branch, or ``None`` for identity (same shape)."""
    if stride == 1 and in_channels == out_channels:
        return None
    pooled = downsample in ("maxpool", "avgpool", "blurpool") and stride > 1
    if shortcut == "A":
        if stride == 1 or out_channels < in_channels:
            raise ValueError(
                f"shortcut='A' needs stride > 1 and out_channels >= in_channels when the shape "
                f"changes; got stride={stride}, {in_channels} -> {out_channels} channels")
        pool = make_pool(downsample, in_channels, stride) if pooled else None
        return ShortcutA(in_channels, out_channels, stride, pool)
    if shortcut == "D" and stride > 1:
        pool = AvgPool2d(stride, stride, padding="same", count_include_pad=False)
        return nn.Sequential(pool, conv1x1(in_channels, out_channels, 1, padding),
                             nn.BatchNorm2d(out_channels))
    if pooled:
        return nn.Sequential(make_pool(downsample, in_channels, stride),
                             conv1x1(in_channels, out_channels, 1, padding),
                             nn.BatchNorm2d(out_channels))
    # Option B (and D at stride 1): strided 1x1 projection, torchvision's downsample.0 / .1
    return nn.Sequential(conv1x1(in_channels, out_channels, stride, padding),
                         nn.BatchNorm2d(out_channels))


def _check_block_args(stride: int, dilation: int, stride_on: str, shortcut: str,
                      downsample: str, padding: str) -> None:
    _check_int("stride", stride, 1)
    _check_int("dilation", dilation, 1)
    _check_choice("stride_on", stride_on, STRIDE_ON)
    _check_choice("shortcut", shortcut, SHORTCUTS)
    _check_choice("downsample", downsample, DOWNSAMPLES)
    _check_choice("padding", padding, PADDINGS)


class _Block(nn.Module):
    """Shared wiring: the conv that carries the stride, and the pool that may replace it."""

    expansion = 1
    pool: nn.Module | None

    @staticmethod
    def _strided_3x3_or_1x1(kernel: int, in_channels: int, out_channels: int, stride: int,
                            groups: int, dilation: int, downsample: str,
                            padding: str) -> tuple[nn.Module, nn.Module | None]:
        """The conv that carries the block's stride and the pool that follows it, if any
        (``downsample`` decides which)."""
        pooled = stride > 1 and downsample in ("maxpool", "avgpool", "blurpool")
        conv_stride = 1 if pooled else stride
        if kernel == 3:
            conv = conv3x3(in_channels, out_channels, conv_stride, groups, dilation, padding)
        else:
            conv = conv1x1(in_channels, out_channels, conv_stride, padding)
        if pooled:
            return conv, make_pool(downsample, out_channels, stride)
        if stride > 1 and downsample == "space_to_depth":
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            return space_to_depth_conv(conv), None
        return conv, None


class BasicBlock(_Block):
    """3x3 conv (stride) -> BN -> ReLU -> 3x3 conv -> BN, plus shortcut, then ReLU (width x1)."""

    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int = 1, *, stride_on: str = "3x3",
                 shortcut: str = "B", downsample: str = "stride", dilation: int = 1,
                 groups: int = 1, width_per_group: int = 64, padding: str = "symmetric") -> None:
        super().__init__()
        _check_block_args(stride, dilation, stride_on, shortcut, downsample, padding)
        if stride_on != "3x3":
            raise ValueError("stride_on='1x1' needs a Bottleneck; BasicBlock has only 3x3 convs")
        if groups != 1 or width_per_group != 64:
            raise ValueError("BasicBlock supports only groups=1 and width_per_group=64")
        # The stride sits on conv1 (the first 3x3), or moves to a pool after relu(bn1).
        self.conv1, pool = self._strided_3x3_or_1x1(3, in_channels, width, stride, 1, dilation,
                                                    downsample, padding)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.pool = pool
        self.conv2 = conv3x3(width, width, 1, 1, dilation, padding)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = make_shortcut(shortcut, in_channels, width, stride, downsample, padding)
        self.stride = stride

    def zero_init_residual(self) -> None:
        nn.init.zeros_(self.bn2.weight)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out: Tensor = self.relu(self.bn1(self.conv1(x)))
        if self.pool is not None:
            out = self.pool(out)
        out = self.bn2(self.conv2(out))
        out = self.relu(out + identity)
        return out


class Bottleneck(_Block):
    """1x1 -> 3x3 -> 1x1 (x4 width) with BN and ReLU, plus shortcut, then ReLU.

    Inner width ``int(width * width_per_group / 64) * groups`` (ResNeXt's rule, as torchvision).
    """

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int = 1, *, stride_on: str = "3x3",
                 shortcut: str = "B", downsample: str = "stride", dilation: int = 1,
                 groups: int = 1, width_per_group: int = 64, padding: str = "symmetric") -> None:
        super().__init__()
        _check_block_args(stride, dilation, stride_on, shortcut, downsample, padding)
        _check_int("groups", groups, 1)
        _check_int("width_per_group", width_per_group, 1)
        inner = int(width * (width_per_group / 64.0)) * groups
        out_channels = width * self.expansion
        on_3x3 = stride_on == "3x3"
        # The stride sits on conv2 (3x3, v1.5) or conv1 (1x1, original), or moves to a pool.
        pool: nn.Module | None = None
        if on_3x3:
            self.conv1: nn.Module = conv1x1(in_channels, inner, 1, padding)
        else:
            self.conv1, pool = self._strided_3x3_or_1x1(1, in_channels, inner, stride, 1, 1,
                                                        downsample, padding)
        self.bn1 = nn.BatchNorm2d(inner)
        if not on_3x3:
            self.pool = pool  # registered where it runs: after relu(bn1)
        if on_3x3:
            self.conv2, pool = self._strided_3x3_or_1x1(3, inner, inner, stride, groups,
                                                        dilation, downsample, padding)
        else:
            self.conv2 = conv3x3(inner, inner, 1, groups, dilation, padding)
        self.bn2 = nn.BatchNorm2d(inner)
        if on_3x3:
            self.pool = pool  # after relu(bn2)
        self.pool_after = 2 if on_3x3 else 1
        self.conv3 = conv1x1(inner, out_channels, 1, padding)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = make_shortcut(shortcut, in_channels, out_channels, stride, downsample,
                                        padding)
        self.stride = stride

    def zero_init_residual(self) -> None:
        nn.init.zeros_(self.bn3.weight)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out: Tensor = self.relu(self.bn1(self.conv1(x)))
        if self.pool is not None and self.pool_after == 1:
            out = self.pool(out)
        out = self.relu(self.bn2(self.conv2(out)))
        if self.pool is not None and self.pool_after == 2:
            out = self.pool(out)
        out = self.bn3(self.conv3(out))
        out = self.relu(out + identity)
        return out
