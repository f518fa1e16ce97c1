"""StridePlan arithmetic equals the shapes the model really produces; invalid plans fail clearly."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from stridelab.nn import ResNet, Stage, StridePlan, cifar_plan, resnet50
from stridelab.nn.resnet import imagenet_plan
from tests._budget import budget


@st.composite
def plans(draw: st.DrawFn) -> StridePlan:
    block = draw(st.sampled_from(["basic", "bottleneck"]))
    n_stages = draw(st.integers(1, 3))
    stages = tuple(Stage(1, draw(st.sampled_from([2, 4])) * (i + 1),
                         draw(st.integers(1, 3)), draw(st.integers(1, 2)))
                   for i in range(n_stages))
    stem = draw(st.sampled_from(["imagenet", "deep", "space_to_depth", "cifar"]))
    shortcut = draw(st.sampled_from(["B", "D"]))
    plan = StridePlan(
        stages, stem=stem, stem_width=4, block=block,
        stride_on=draw(st.sampled_from(["3x3", "1x1"])) if block == "bottleneck" else "3x3",
        shortcut=shortcut,
        downsample=draw(st.sampled_from(["stride", "maxpool", "avgpool", "blurpool",
                                         "space_to_depth"])),
        padding=draw(st.sampled_from(["symmetric", "same", "same_lower"])))
    output_stride = draw(st.sampled_from([None, *plan.reachable_output_strides()]))
    return StridePlan.from_dict({**plan.to_dict(), "output_stride": output_stride})


@settings(max_examples=budget(30))
@given(plan=plans(), h=st.integers(1, 40), w=st.integers(1, 40))
def test_output_sizes_equal_real_shapes(plan: StridePlan, h: int, w: int) -> None:
    model = ResNet(plan, num_classes=3).eval()
    with torch.no_grad():
        real = [tuple(t.shape[1:]) for t in model.stage_outputs(torch.randn(1, 3, h, w))]
    assert real == plan.output_sizes((3, h, w))


@pytest.mark.parametrize("size", [1, 31, 224, 225, 257])
@pytest.mark.parametrize("output_stride", [None, 8, 16])
def test_resnet50_sizes_meta(size: int, output_stride: int | None) -> None:
    with torch.device("meta"):
        model = resnet50(output_stride=output_stride).eval()
        outs = model.stage_outputs(torch.empty(1, 3, size, size + 3))
    assert [tuple(t.shape[1:]) for t in outs] == model.plan.output_sizes((size, size + 3))


def test_imagenet_plan_224() -> None:
    assert imagenet_plan(50).output_sizes(224) == [
        (64, 56, 56), (256, 56, 56), (512, 28, 28), (1024, 14, 14), (2048, 7, 7)]


@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_output_stride_by_dilation(output_stride: int) -> None:
    plan = imagenet_plan(18, output_stride=output_stride)
    resolved = plan.resolved_stages()
    assert resolved[-1].effective_stride == output_stride
    # torchvision's replace_stride_with_dilation: OS 16 -> stage 4 dilated 2; OS 8 -> 2 and 4
    expected = {32: [1, 1, 1, 1], 16: [1, 1, 1, 2], 8: [1, 1, 2, 4]}[output_stride]
    assert [s.dilation for s in resolved] == expected
    assert plan.output_sizes(64)[-1][1:] == (64 // output_stride,) * 2
    model = ResNet(plan, num_classes=0)
    features = model.features(torch.randn(1, 3, 64, 64))
    assert sorted(features) == sorted({4, 8, 16, 32} & set(range(output_stride + 1)))
    for stride, tensor in features.items():
        assert tuple(tensor.shape[-2:]) == (64 // stride, 64 // stride)


def test_features_pyramid() -> None:
    model = ResNet(imagenet_plan(18), num_classes=5)
    features = model.features(torch.randn(1, 3, 96, 96))
    assert {k: tuple(v.shape[1:]) for k, v in features.items()} == {
        4: (64, 24, 24), 8: (128, 12, 12), 16: (256, 6, 6), 32: (512, 3, 3)}


def test_dict_round_trip_is_json() -> None:
    plan = StridePlan((Stage(2, 8, 1), Stage(1, 16, 4, 2)), stem="deep", block="bottleneck",
                      stride_on="1x1", shortcut="D", downsample="blurpool", output_stride=4)
    data = json.loads(json.dumps(plan.to_dict()))
    assert StridePlan.from_dict(data) == plan
    assert cifar_plan(56).stages == (Stage(9, 16, 1), Stage(9, 32, 2), Stage(9, 64, 2))


@pytest.mark.parametrize(("make", "field"), [
    (lambda: Stage(1, 8, 0), "stride"),
    (lambda: Stage(0, 8), "blocks"),
    (lambda: StridePlan((Stage(1, 8),), stem="vgg"), "stem"),
    (lambda: StridePlan((Stage(1, 8),), block="dense"), "block"),
    (lambda: StridePlan((Stage(1, 8),), shortcut="C"), "shortcut"),
    (lambda: StridePlan((Stage(1, 8),), downsample="unpool"), "downsample"),
    (lambda: StridePlan((Stage(1, 8),), stride_on="5x5"), "stride_on"),
    (lambda: StridePlan((Stage(1, 8),), stride_on="1x1"), "stride_on"),
    (lambda: StridePlan((Stage(1, 8),), padding="full"), "padding"),
    (lambda: StridePlan(()), "stages"),
    (lambda: imagenet_plan(18, output_stride=12), "output_stride"),
    (lambda: imagenet_plan(18, output_stride=64), "output_stride"),
    (lambda: StridePlan((Stage(1, 8, 4),), output_stride=8), "output_stride"),
    (lambda: StridePlan((Stage(1, 32, 1),), stem_width=16, shortcut="A"), "shortcut"),
    (lambda: cifar_plan(20, output_stride=2), "shortcut"),
    (lambda: cifar_plan(21), "depth"),
    (lambda: StridePlan.from_dict({"stages": [{"blocks": 1, "width": 8, "strides": 2}]}),
     "strides"),
    (lambda: StridePlan.from_dict({"stages": [], "colour": 1}), "colour"),
    (lambda: imagenet_plan(18).validate((3, 16, 16)), "input_size"),
    (lambda: cifar_plan(20).validate((3, 3, 32)), "input_size"),
])
def test_invalid_plans_name_the_field(make: object, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        make()  # type: ignore[operator]


def test_validate_accepts_good_input() -> None:
    plan = imagenet_plan(18)
    assert plan.validate((3, 32, 32)) is plan
    assert cifar_plan(20).validate(4) is not None
