"""Scene variant names: the output stride they reach (checked against the built model's feature
maps), how they reach it, and clear errors."""

from __future__ import annotations

import pytest
import torch

from stridelab.study.tasks import parse_tasks, resolve_task_variants, variant_items
from stridelab.study.tasks.scene_variants import parse_scene_variant


@pytest.mark.parametrize(("name", "task", "stride", "dilated"), [
    ("os8-dilated", "classify", 8, True), ("os8-strided", "classify", 8, False),
    ("os16", "detect", 16, False), ("os32-maxpool", "classify", 32, False),
    ("os8-dilated-bilinear", "segment", 8, True), ("os32-strided-transposed", "segment", 32, False),
    ("os16-skip", "segment", 16, False), ("fpn", "detect", 32, False),
])
def test_names_reach_their_output_stride(name: str, task: str, stride: int,
                                         dilated: bool) -> None:
    variant = parse_scene_variant(name, task, depth=8, width=4)
    assert variant.output_stride == stride
    assert (variant.plan.output_stride is not None) == dilated
    model = variant.build(num_classes=10, in_channels=1)
    backbone = model if task == "classify" else model.backbone
    last = backbone.stage_outputs(torch.zeros(1, 1, 64, 64))[-1]
    assert tuple(last.shape[-2:]) == (64 // stride, 64 // stride)
    assert variant.plan.output_sizes(64)[-1][1:] == (64 // stride, 64 // stride)


def test_dilation_keeps_the_weights_and_strides_shrink_the_field() -> None:
    base = parse_scene_variant("os32", "classify", width=4).build(num_classes=10, in_channels=1)
    dilated = parse_scene_variant("os8-dilated", "classify", width=4)
    strided = parse_scene_variant("os8-strided", "classify", width=4)
    count = sum(p.numel() for p in base.parameters())
    counts = [sum(p.numel() for p in v.build(num_classes=10, in_channels=1).parameters())
              for v in (dilated, strided)]
    # same weights either way; only the stride-2 stages 4 and 5 lose their 1x1 projection
    # shortcuts (a stride-1 stage of unchanged width needs none): 2 x (16 x 16 + 2 x 16) fewer
    assert counts[0] == counts[1] == count - 2 * (16 * 16 + 2 * 16)
    assert [s.dilation for s in dilated.plan.resolved_stages()] == [1, 1, 1, 2, 4]
    assert [s.stride for s in strided.plan.resolved_stages()] == [2, 2, 2, 1, 1]
    assert parse_scene_variant("fpn", "detect").levels == (8, 16, 32)
    assert parse_scene_variant("os32-maxpool", "segment").plan.downsample == "maxpool"


@pytest.mark.parametrize(("name", "task", "fragment"), [
    ("os12", "segment", "unknown name"), ("os8-skip", "detect", "unknown part 'skip'"),
    ("os8-dilated-strided", "classify", "conflicting reach"), ("fpn", "segment", "unknown name"),
    ("os8-bilinear-skip", "segment", "conflicting upsampling"),
])
def test_bad_names(name: str, task: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_scene_variant(name, task)


def test_task_lists_and_per_task_variants() -> None:
    assert parse_tasks("segment,detect") == ["segment", "detect"]
    tasks = ["classify", "segment"]
    assert variant_items("auto", "segment", tasks) is None
    assert variant_items("os32,segment:os16-skip", "segment", tasks) == ["os32", "os16-skip"]
    assert variant_items("os32,segment:os16-skip", "classify", tasks) == ["os32"]
    with pytest.raises(ValueError, match="detect"):
        variant_items("detect:fpn", "segment", tasks)
    chosen = resolve_task_variants("classify", "strided,os8-dilated", ["classify"], scenes=True,
                                   depth=8, width=4, input_size=(64, 64))
    assert [v.name for v in chosen] == ["strided", "os8-dilated"]  # CIFAR-style ones work too
    with pytest.raises(ValueError, match="scenes"):
        resolve_task_variants("segment", "strided", ["segment"], scenes=False, depth=8, width=4,
                              input_size=(64, 64))


def test_auto_dataset_follows_the_task() -> None:
    from stridelab.study.config import StudyConfig

    assert StudyConfig().dataset_spec == "digits" and not StudyConfig().scene_dataset
    assert StudyConfig(task="segment").dataset_spec == "scenes"
    assert StudyConfig(task="classify,detect").scene_dataset
    assert StudyConfig(task="segment", dataset="coco:/x").dataset_spec == "coco:/x"
    with pytest.raises(ValueError, match="needs --dataset scenes"):
        StudyConfig(task="detect", dataset="digits").validate()
