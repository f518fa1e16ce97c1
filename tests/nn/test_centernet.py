"""CenterNet head, targets, decoding and NMS; the feature pyramid; the skip decoder.

Oracles: pycocotools (perfect outputs decode to AP 1), hand-computed IoUs, a brute-force NMS,
exact output shapes from stridelab.arith's ceil(i / s) rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from stridelab.nn import CenterNet, FeaturePyramid, ResNet, SegmentationModel, Stage, StridePlan
from stridelab.nn.centernet import (
    assign_level,
    box_iou,
    box_nms,
    centernet_loss,
    decode_detections,
    encode_targets,
)
from tests._budget import budget

PLAN = StridePlan(tuple(Stage(1, w, 2) for w in (4, 8, 8, 8, 8)), stem="cifar", stem_width=4)


def _backbone(output_stride: int | None = None) -> ResNet:
    plan = StridePlan.from_dict({**PLAN.to_dict(), "output_stride": output_stride})
    return ResNet(plan, num_classes=0, in_channels=1)


def _perfect(targets: dict[int, tuple[torch.Tensor, ...]]) -> dict[int, torch.Tensor]:
    """The raw outputs a perfect detector would give: logit of the target heatmap + targets."""
    return {s: torch.cat([torch.logit(hm.clamp(1e-4, 1 - 1e-4)), reg], dim=1)
            for s, (hm, reg, _) in targets.items()}


@pytest.mark.parametrize("levels", [(8,), (8, 16, 32)])
def test_perfect_outputs_decode_to_coco_ap_1(levels: tuple[int, ...]) -> None:
    from stridelab.study.metrics import detection_metrics
    from stridelab.study.scenes import make_scenes

    # at stride 8 no two digits of these scenes share a cell (at 32 they would collide)
    scenes = make_scenes(8, canvas=64, seed=3, split="test", max_digits=2)
    boxes = [torch.from_numpy(b) for b in scenes.boxes]
    labels = [torch.from_numpy(c) for c in scenes.labels]
    targets = encode_targets(boxes, labels, strides=levels, image_size=(64, 64), num_classes=10)
    decoded = decode_detections(_perfect(targets), num_classes=10, image_size=(64, 64))
    predictions = [(b.numpy(), s.numpy(), c.numpy()) for b, s, c in decoded]
    for (found, _, classes), truth, truth_labels in zip(predictions, scenes.boxes, scenes.labels,
                                                        strict=True):
        top = found[:len(truth)]
        # every true box comes back (up to float rounding of log / exp)
        for box, label in zip(truth, truth_labels, strict=True):
            assert np.abs(top - box).max(axis=1).min() < 1e-3
            assert label in classes[:len(truth)]
    metrics = detection_metrics(scenes, predictions)
    assert metrics["AP"] == pytest.approx(1.0) and metrics["AP_small"] == pytest.approx(1.0)


def test_loss_is_small_for_perfect_outputs_and_large_for_flat_ones() -> None:
    boxes = [torch.tensor([[3.0, 4.0, 11.0, 14.0], [20.0, 20.0, 50.0, 52.0]])]
    labels = [torch.tensor([3, 7])]
    targets = encode_targets(boxes, labels, strides=(8, 16, 32), image_size=(64, 64),
                             num_classes=10)
    # level assignment: longer sides 10 -> 8 (16 > 15), 32 -> 32
    assert int(targets[8][2].sum()) == 1 and int(targets[32][2].sum()) == 1
    assert int(targets[16][2].sum()) == 0
    perfect = centernet_loss(_perfect(targets), targets)
    flat = centernet_loss({s: torch.zeros_like(o) for s, o in _perfect(targets).items()},
                          targets)
    assert float(perfect) < 0.01 < 1.0 < float(flat)


def test_assign_level() -> None:
    assert [assign_level(m, (8, 16, 32)) for m in (3, 6, 10, 11, 21, 22, 64)] == [
        8, 8, 8, 16, 16, 32, 32]


def test_box_iou_hand_computed() -> None:
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [2.0, 2.0, 4.0, 4.0], [0.0, 0.0, 2.0, 2.0]])
    assert box_iou(a, b).tolist() == [[pytest.approx(1 / 7), 0.0, 1.0]]


@settings(max_examples=budget(40), deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20), st.integers(1, 12),
                          st.integers(1, 12), st.integers(0, 2), st.integers(0, 1000)),
                min_size=0, max_size=12, unique_by=lambda t: t[5]))
def test_nms_matches_brute_force(raw: list[tuple[int, ...]]) -> None:
    boxes = torch.tensor([[x, y, x + w, y + h] for x, y, w, h, _, _ in raw],
                         dtype=torch.float32).reshape(-1, 4)
    labels = torch.tensor([c for *_, c, _ in raw], dtype=torch.int64)
    scores = torch.tensor([s / 1000 for *_, s in raw], dtype=torch.float32)
    kept = box_nms(boxes, scores, labels, 0.5).tolist()
    # brute force: walk by score; keep a box unless a kept same-class box overlaps > 0.5
    expected: list[int] = []
    for i in sorted(range(len(raw)), key=lambda k: -raw[k][5]):
        x, y, w, h, c, _ = raw[i]
        if all(raw[j][4] != c or _iou((x, y, w, h), raw[j][:4]) <= 0.5 for j in expected):
            expected.append(i)
    assert kept == expected


def _iou(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


@pytest.mark.parametrize(("size", "strides"), [((64, 64), (8, 16, 32)), ((37, 45), (8, 16, 32)),
                                               ((64, 64), None)])
def test_centernet_output_shapes(size: tuple[int, int], strides: tuple[int, ...] | None) -> None:
    model = CenterNet(_backbone(), num_classes=5, strides=strides)
    with torch.no_grad():
        out = model(torch.zeros(2, 1, *size))
    expected = strides or (32,)
    assert sorted(out) == list(expected)
    for stride, raw in out.items():
        assert raw.shape == (2, 5 + 4, math.ceil(size[0] / stride), math.ceil(size[1] / stride))
    decoded = decode_detections(out, num_classes=5, image_size=size)
    assert len(decoded) == 2
    # the centre logits start at the focal-loss prior
    assert float(torch.sigmoid(out[expected[0]][:, :5]).mean()) == pytest.approx(0.1, abs=0.05)


def test_single_head_on_a_dilated_backbone_uses_every_stage() -> None:
    model = CenterNet(_backbone(output_stride=8), num_classes=3)
    out = model(torch.randn(2, 1, 64, 64))
    centernet_loss(out, encode_targets([torch.tensor([[1.0, 1.0, 9.0, 9.0]])] * 2,
                                       [torch.tensor([1])] * 2, strides=(8,),
                                       image_size=(64, 64), num_classes=3)).backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize(("strides", "fragment"), [((4, 32), None), ((8, 16), "coarsest"),
                                                   ((3, 32), "feature strides")])
def test_centernet_rejects_bad_levels(strides: tuple[int, ...], fragment: str | None) -> None:
    if fragment is None:
        CenterNet(_backbone(), num_classes=2, strides=strides)
        return
    with pytest.raises(ValueError, match=fragment):
        CenterNet(_backbone(), num_classes=2, strides=strides)


def test_feature_pyramid_sizes_and_errors() -> None:
    backbone = _backbone()
    features = backbone.features(torch.zeros(1, 1, 37, 45))
    pyramid = FeaturePyramid({s: features[s].shape[1] for s in (2, 8, 32)}, channels=6)
    merged = pyramid(features)
    assert {s: tuple(t.shape) for s, t in merged.items()} == {
        s: (1, 6, *features[s].shape[-2:]) for s in (2, 8, 32)}
    with pytest.raises(ValueError, match="lack stride"):
        pyramid({2: features[2]})
    with pytest.raises(ValueError, match="in_channels"):
        FeaturePyramid({})


@pytest.mark.parametrize("output_stride", [8, 16, None])
def test_skip_decoder_segmentation_keeps_any_input_size(output_stride: int | None) -> None:
    model = SegmentationModel(_backbone(output_stride), num_classes=4, upsample="skip",
                              decoder_channels=8)
    assert model.decoder is not None and model.decoder.strides[0] == 2
    assert model.decoder.strides[-1] == (output_stride or 32)
    out = model(torch.randn(2, 1, 37, 45))
    assert out.shape == (2, 4, 37, 45)
    out.square().mean().backward()  # DDP needs every parameter to take part
    assert all(p.grad is not None for p in model.parameters())
