"""Built-in models by name (used by ``stridelab inspect <name>``)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import nn

from stridelab.nn.resnet import (
    cifar_resnet,
    resnet18,
    resnet34,
    resnet50,
    resnet101,
    resnet152,
)
from stridelab.nn.segmentation import SegmentationModel


def fcn_resnet18(num_classes: int = 21, output_stride: int = 8,
                 upsample: str = "bilinear") -> SegmentationModel:
    """FCN on a dilated ResNet-18 backbone (output stride 8 by default, DeepLab-style)."""
    backbone = resnet18(num_classes=0, output_stride=output_stride)
    return SegmentationModel(backbone, num_classes=num_classes, upsample=upsample)


presets: dict[str, Callable[[], nn.Module]] = {
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "resnet101": resnet101,
    "resnet152": resnet152,
    "resnet18_blurpool": partial(resnet18, downsample="blurpool"),
    "resnet18_space_to_depth": partial(resnet18, stem="space_to_depth"),
    "resnet50_1x1": partial(resnet50, stride_on="1x1"),
    "resnet50_d": partial(resnet50, stem="deep", shortcut="D"),
    "resnet50_os16": partial(resnet50, output_stride=16),
    "resnet50_os8": partial(resnet50, output_stride=8),
    **{f"cifar_resnet{d}": partial(cifar_resnet, d) for d in (20, 32, 44, 56, 110)},
    "fcn_resnet18": fcn_resnet18,
    "fcn_resnet18_transposed": partial(fcn_resnet18, upsample="transposed"),
}
