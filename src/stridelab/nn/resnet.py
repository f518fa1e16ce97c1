"""ResNet built from a :class:`StridePlan`, and the standard builders.

With the default variant fields, ``resnet18/34/50/101/152`` have torchvision's architecture
exactly (module names, parameter shapes, order of operations), so a torchvision checkpoint loads
with ``strict=True``. Weight init follows torchvision: Kaiming-normal (fan_out, ReLU) convs,
BN weight 1 / bias 0, optionally the last BN of each block zeroed (``zero_init_residual``,
Goyal et al. 2017).
"""

from __future__ import annotations

from typing import TypedDict

import torch
from torch import Tensor, nn
from typing_extensions import Unpack  # typing.Unpack needs 3.11; torch depends on this package

from stridelab.nn.blocks import BasicBlock, Bottleneck
from stridelab.nn.layers import Conv2d, MaxPool2d
from stridelab.nn.plan import SPACE_TO_DEPTH_STEM_BLOCK, Stage, StridePlan, conv_padding
from stridelab.nn.space_to_depth import SpaceToDepth, SpaceToDepthConv


class Variant(TypedDict, total=False):
    """Keyword arguments the builders accept on top of ``num_classes`` (StridePlan fields)."""

    stem: str
    stem_width: int
    stride_on: str
    shortcut: str
    downsample: str
    groups: int
    width_per_group: int
    output_stride: int | None
    padding: str
    in_channels: int
    zero_init_residual: bool


_MODEL_ONLY = ("in_channels", "zero_init_residual")


def _make_stem(plan: StridePlan, in_channels: int) -> tuple[nn.Module, nn.Module]:
    """``conv1`` (a conv or a small Sequential) and ``maxpool`` (or Identity) of the stem."""
    width, pad = plan.stem_width, plan.padding
    if plan.stem == "imagenet":  # 7x7/2 conv, then 3x3/2 max pool: stride 4 (He et al. 2016)
        conv: nn.Module = Conv2d(in_channels, width, 7, stride=2, padding=conv_padding(pad, 7),
                                 bias=False)
    elif plan.stem == "deep":  # three 3x3 convs, the first /2 (ResNet-C, "Bag of Tricks")
        half = width // 2
        conv = nn.Sequential(
            Conv2d(in_channels, half, 3, 2, conv_padding(pad, 3), bias=False),
            nn.BatchNorm2d(half), nn.ReLU(inplace=True),
            Conv2d(half, half, 3, 1, conv_padding(pad, 3), bias=False),
            nn.BatchNorm2d(half), nn.ReLU(inplace=True),
            Conv2d(half, width, 3, 1, conv_padding(pad, 3), bias=False))
    elif plan.stem == "space_to_depth":  # /4 by rearrangement, then a 3x3 conv (TResNet)
        block = SPACE_TO_DEPTH_STEM_BLOCK
        conv = nn.Sequential(SpaceToDepth(block),
                             Conv2d(in_channels * block * block, width, 3, 1,
                                    conv_padding(pad, 3), bias=False))
    else:  # cifar: one 3x3/1 conv (He et al. 2016, section 4.2)
        conv = Conv2d(in_channels, width, 3, 1, conv_padding(pad, 3), bias=False)
    pool: nn.Module = nn.Identity()
    if plan.stem in ("imagenet", "deep"):
        pool = MaxPool2d(3, 2, conv_padding(pad, 3))
    return conv, pool


class ResNet(nn.Module):
    """A ResNet following ``plan``: stem, ``layer1..layerN``, global average pool, ``fc``.

    ``num_classes=0`` drops the classifier (``fc`` is Identity; the model returns pooled features).
    :meth:`features` returns ``{effective_stride: tensor}`` for the stem and every stage.
    """

    def __init__(self, plan: StridePlan, *, num_classes: int = 1000, in_channels: int = 3,
                 zero_init_residual: bool = False) -> None:
        super().__init__()
        if not isinstance(plan, StridePlan):
            raise TypeError(f"plan must be a StridePlan, got {type(plan).__name__}")
        for name, value, minimum in (("num_classes", num_classes, 0),
                                     ("in_channels", in_channels, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
        self.plan = plan
        stem_conv, stem_pool = _make_stem(plan, in_channels)
        self.conv1 = stem_conv
        self.bn1 = nn.BatchNorm2d(plan.stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = stem_pool
        block_type = BasicBlock if plan.block == "basic" else Bottleneck
        channels = plan.stem_width
        self.stage_names: list[str] = []
        self.feature_strides: list[int] = [plan.stem_stride]
        for index, stage in enumerate(plan.resolved_stages(), start=1):
            blocks = []
            for b in range(stage.blocks):
                blocks.append(block_type(
                    channels, stage.width, stage.stride if b == 0 else 1,
                    stride_on=plan.stride_on, shortcut=plan.shortcut,
                    downsample=plan.downsample,
                    dilation=stage.first_dilation if b == 0 else stage.dilation,
                    groups=plan.groups, width_per_group=plan.width_per_group,
                    padding=plan.padding))
                channels = stage.width * block_type.expansion
            self.add_module(f"layer{index}", nn.Sequential(*blocks))
            self.stage_names.append(f"layer{index}")
            self.feature_strides.append(stage.effective_stride)
        self.out_channels = channels
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc: nn.Module = nn.Linear(channels, num_classes) if num_classes else nn.Identity()
        self._init_weights(zero_init_residual)

    def _init_weights(self, zero_init_residual: bool) -> None:
        rewritten = {id(m.conv) for m in self.modules() if isinstance(m, SpaceToDepthConv)}
        for module in self.modules():
            if isinstance(module, nn.Conv2d) and id(module) not in rewritten:
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if zero_init_residual:
            for module in self.modules():
                if isinstance(module, (BasicBlock, Bottleneck)):
                    module.zero_init_residual()

    @property
    def output_stride(self) -> int:
        return self.feature_strides[-1]

    def stem(self, x: Tensor) -> Tensor:
        out: Tensor = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return out

    def stage_outputs(self, x: Tensor) -> list[Tensor]:
        """Outputs of the stem and of every stage, in order."""
        outputs = [self.stem(x)]
        for name in self.stage_names:
            outputs.append(getattr(self, name)(outputs[-1]))
        return outputs

    def features(self, x: Tensor) -> dict[int, Tensor]:
        """``{effective_stride: tensor}``; when stages share a stride (dilation, stride-1 stages)
        the deepest one is kept."""
        return dict(zip(self.feature_strides, self.stage_outputs(x)))

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        for name in self.stage_names:
            x = getattr(self, name)(x)
        logits: Tensor = self.fc(torch.flatten(self.avgpool(x), 1))
        return logits


IMAGENET_DEPTHS = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)),
                   50: ("bottleneck", (3, 4, 6, 3)), 101: ("bottleneck", (3, 4, 23, 3)),
                   152: ("bottleneck", (3, 8, 36, 3))}


def imagenet_plan(depth: int = 50, **fields: Unpack[Variant]) -> StridePlan:
    """torchvision's ResNet-``depth`` plan (widths 64/128/256/512, strides 1/2/2/2)."""
    if depth not in IMAGENET_DEPTHS:
        raise ValueError(f"depth must be one of {sorted(IMAGENET_DEPTHS)}, got {depth!r}")
    block, counts = IMAGENET_DEPTHS[depth]
    stages = tuple(Stage(n, w, s) for n, w, s in zip(counts, (64, 128, 256, 512), (1, 2, 2, 2)))
    return _plan(StridePlan(stages, block=block), fields)


def _plan(base: StridePlan, fields: Variant) -> StridePlan:
    allowed = set(Variant.__annotations__)
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise TypeError(f"unknown variant field(s) {unknown}; allowed: {sorted(allowed)}")
    plan_fields = {k: v for k, v in fields.items() if k not in _MODEL_ONLY}
    data = base.to_dict()
    data.update(plan_fields)
    return StridePlan.from_dict(data)


def _model(plan: StridePlan, num_classes: int, fields: Variant) -> ResNet:
    return ResNet(plan, num_classes=num_classes, in_channels=fields.get("in_channels", 3),
                  zero_init_residual=fields.get("zero_init_residual", False))


def resnet18(num_classes: int = 1000, **variant: Unpack[Variant]) -> ResNet:
    """ResNet-18 (11,689,512 parameters at 1000 classes)."""
    return _model(imagenet_plan(18, **variant), num_classes, variant)


def resnet34(num_classes: int = 1000, **variant: Unpack[Variant]) -> ResNet:
    """ResNet-34 (21,797,672 parameters at 1000 classes)."""
    return _model(imagenet_plan(34, **variant), num_classes, variant)


def resnet50(num_classes: int = 1000, **variant: Unpack[Variant]) -> ResNet:
    """ResNet-50 (25,557,032 parameters; 4,089,184,256 MACs at 224x224)."""
    return _model(imagenet_plan(50, **variant), num_classes, variant)


def resnet101(num_classes: int = 1000, **variant: Unpack[Variant]) -> ResNet:
    """ResNet-101 (44,549,160 parameters at 1000 classes)."""
    return _model(imagenet_plan(101, **variant), num_classes, variant)


def resnet152(num_classes: int = 1000, **variant: Unpack[Variant]) -> ResNet:
    """ResNet-152 (60,192,808 parameters at 1000 classes)."""
    return _model(imagenet_plan(152, **variant), num_classes, variant)


CIFAR_DEPTHS = (20, 32, 44, 56, 110)


def cifar_plan(depth: int = 20, **fields: Unpack[Variant]) -> StridePlan:
    """He et al. 2016 (section 4.2) CIFAR ResNet: depth 6n + 2, three stages of n basic blocks,
    widths 16/32/64, stride 2 at stages 2 and 3, 3x3/1 stem, option-A shortcuts."""
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth must be 6n + 2 with n >= 1 (e.g. {CIFAR_DEPTHS}), got {depth!r}")
    n = (depth - 2) // 6
    stages = (Stage(n, 16, 1), Stage(n, 32, 2), Stage(n, 64, 2))
    return _plan(StridePlan(stages, stem="cifar", stem_width=16, shortcut="A"), fields)


def cifar_resnet(depth: int = 20, *, num_classes: int = 10,
                 **variant: Unpack[Variant]) -> ResNet:
    """CIFAR ResNet-``depth`` (ResNet-20: 269,722 parameters with option A, 272,474 with B)."""
    return _model(cifar_plan(depth, **variant), num_classes, variant)
