"""The agreed stridelab.nn interface (other areas import these names)."""

from __future__ import annotations

import dataclasses
import inspect

import torch

import stridelab.nn as nn_api
from stridelab.nn import Stage, StridePlan, presets

CONTRACT = ("Conv1d Conv2d Conv3d MaxPool2d AvgPool2d BlurPool2d SpaceToDepth space_to_depth_conv "
            "BasicBlock Bottleneck Stage StridePlan ResNet resnet18 resnet34 resnet50 resnet101 "
            "resnet152 cifar_resnet cifar_plan SegmentationModel presets").split()


def test_contract_names_exist() -> None:
    for name in CONTRACT:
        assert hasattr(nn_api, name), name


def test_dataclass_fields_and_defaults() -> None:
    stage = {f.name: f.default for f in dataclasses.fields(Stage)}
    assert stage == {"blocks": dataclasses.MISSING, "width": dataclasses.MISSING, "stride": 1,
                     "dilation": 1}
    plan = {f.name: f.default for f in dataclasses.fields(StridePlan)}
    expected = {"stem": "imagenet", "stem_width": 64, "block": "basic", "stride_on": "3x3",
                "shortcut": "B", "downsample": "stride", "groups": 1, "width_per_group": 64,
                "output_stride": None}
    assert {k: plan[k] for k in expected} == expected
    params = inspect.signature(nn_api.ResNet).parameters
    assert params["num_classes"].default == 1000 and params["in_channels"].default == 3
    assert params["num_classes"].kind is inspect.Parameter.KEYWORD_ONLY


def test_presets_build() -> None:
    required = {"resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "cifar_resnet20",
                "cifar_resnet56", "fcn_resnet18"}
    assert required <= set(presets)
    with torch.device("meta"):
        for name, build in presets.items():
            assert isinstance(build(), torch.nn.Module), name
