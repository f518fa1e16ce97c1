"""PyTorch layers and ResNets in which stride and padding are explicit (imports torch).

* Layers: :class:`Conv1d` / :class:`Conv2d` / :class:`Conv3d`, :class:`MaxPool2d`,
  :class:`AvgPool2d` (torch subclasses with 'same' / 'same_lower' / 'valid' / (before, after)
  padding for any stride), :class:`BlurPool2d`, :class:`SpaceToDepth`, :func:`space_to_depth_conv`.
* Networks: :class:`BasicBlock`, :class:`Bottleneck`, :class:`Stage`, :class:`StridePlan`,
  :class:`ResNet`, ``resnet18 ... resnet152``, :func:`cifar_plan`, :func:`cifar_resnet`,
  :class:`SegmentationModel`, and :data:`presets` (name -> builder).
* Heads: :class:`FeaturePyramid` (FPN neck / skip decoder), :class:`CenterNet` (anchor-free
  centre-based detector on one stride or a pyramid; targets, loss and decoding in
  :mod:`stridelab.nn.centernet`).
"""

from stridelab.nn.blocks import BasicBlock, Bottleneck, ShortcutA, conv1x1, conv3x3
from stridelab.nn.blur import BlurPool2d
from stridelab.nn.centernet import CenterNet
from stridelab.nn.layers import AvgPool2d, Conv1d, Conv2d, Conv3d, MaxPool2d
from stridelab.nn.plan import Stage, StridePlan
from stridelab.nn.presets import fcn_resnet18, presets
from stridelab.nn.pyramid import FeaturePyramid
from stridelab.nn.resnet import (
    ResNet,
    cifar_plan,
    cifar_resnet,
    imagenet_plan,
    resnet18,
    resnet34,
    resnet50,
    resnet101,
    resnet152,
)
from stridelab.nn.segmentation import SegmentationModel, TransposedUpsample
from stridelab.nn.space_to_depth import SpaceToDepth, SpaceToDepthConv, space_to_depth_conv

__all__ = [
    "AvgPool2d", "BasicBlock", "BlurPool2d", "Bottleneck", "CenterNet", "Conv1d", "Conv2d",
    "Conv3d", "FeaturePyramid", "MaxPool2d", "ResNet", "SegmentationModel", "ShortcutA",
    "SpaceToDepth", "SpaceToDepthConv",
    "Stage", "StridePlan", "TransposedUpsample", "cifar_plan", "cifar_resnet", "conv1x1",
    "conv3x3", "fcn_resnet18", "imagenet_plan", "presets", "resnet18", "resnet34", "resnet50",
    "resnet101", "resnet152", "space_to_depth_conv",
]
