"""Detection AP through pycocotools on hand-made boxes with hand-computed values; multi-label mAP."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stridelab.study.metrics import DETECTION_KEYS, detection_metrics, multilabel_map
from stridelab.study.scenes import SceneSet, make_scenes


def _ground_truth(boxes: list[list[list[float]]], labels: list[list[int]], *, canvas: int = 64,
                  num_classes: int = 2) -> SceneSet:
    n = len(boxes)
    return SceneSet(images=np.zeros((n, 1, canvas, canvas), np.float32),
                    masks=np.zeros((n, canvas, canvas), np.int64),
                    instances=np.zeros((n, canvas, canvas), np.int64),
                    boxes=[np.asarray(b, np.float32).reshape(-1, 4) for b in boxes],
                    labels=[np.asarray(lab, np.int64) for lab in labels],
                    class_names=tuple(f"c{k}" for k in range(num_classes)),
                    area_thresholds=(64.0, 576.0))


def _pred(boxes: list[list[float]], scores: list[float], labels: list[int]
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores, np.float32),
            np.asarray(labels, np.int64))


def test_perfect_predictions_on_scenes_score_one() -> None:
    scenes = make_scenes(25, seed=4, split="test")
    predictions = [(b, np.linspace(1.0, 0.5, len(b)), lab) for b, lab in zip(scenes.boxes, scenes.labels)]
    result = detection_metrics(scenes, predictions)
    for key in ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large", "AR100"):
        assert result[key] == pytest.approx(1.0), key
    assert set(DETECTION_KEYS) <= set(result)
    total = sum(len(b) for b in scenes.boxes)
    assert result["gt_small"] + result["gt_medium"] + result["gt_large"] == total


def test_one_hit_then_one_false_positive_gives_51_of_101() -> None:
    # two objects, the top-scored detection hits one exactly, the second is a false positive:
    # precision 1 up to recall 0.5, nothing beyond -> 51 of COCO's 101 recall points are 1
    gt = _ground_truth([[[4, 4, 20, 20], [30, 30, 50, 50]]], [[0, 0]])
    pred = _pred([[4, 4, 20, 20], [0, 40, 10, 60]], [0.9, 0.8], [0, 0])
    result = detection_metrics(gt, [pred])
    for key in ("AP", "AP50", "AP75"):
        assert result[key] == pytest.approx(51 / 101)
    assert result["AR100"] == pytest.approx(0.5)


def test_false_positive_ranked_first_halves_precision() -> None:
    gt = _ground_truth([[[4, 4, 20, 20]]], [[1]])
    pred = _pred([[40, 40, 60, 60], [4, 4, 20, 20]], [0.9, 0.8], [1, 1])
    assert detection_metrics(gt, [pred])["AP"] == pytest.approx(0.5)


def test_iou_0625_matches_three_of_ten_thresholds() -> None:
    # gt 8 x 10, prediction 5 x 10 inside it: IoU = 50 / 80 = 0.625 -> hit at .50, .55, .60
    gt = _ground_truth([[[0, 0, 8, 10]]], [[0]])
    result = detection_metrics(gt, [_pred([[0, 0, 5, 10]], [0.7], [0])])
    assert result["AP"] == pytest.approx(0.3)
    assert result["AP50"] == pytest.approx(1.0) and result["AP75"] == pytest.approx(0.0)


def test_wrong_class_is_a_miss_and_classes_are_averaged() -> None:
    gt = _ground_truth([[[0, 0, 20, 20], [30, 30, 50, 50]]], [[0, 1]])
    result = detection_metrics(gt, [_pred([[0, 0, 20, 20], [30, 30, 50, 50]], [0.9, 0.8], [0, 0])])
    assert result["AP"] == pytest.approx(0.5)  # class 0 perfect (its extra FP ranks last), class 1 0


def test_size_buckets_use_the_canvas_scaled_thresholds() -> None:
    # areas 25 (small < 64), 100 (medium: COCO's own ranges would call it small), 900 (large >= 576)
    gt = _ground_truth([[[0, 0, 5, 5], [10, 10, 20, 20], [30, 30, 60, 60]]], [[0, 0, 0]])
    result = detection_metrics(gt, [_pred([[10, 10, 20, 20], [30, 30, 60, 60]], [0.9, 0.8], [0, 0])])
    assert result["AP_small"] == pytest.approx(0.0)
    assert result["AP_medium"] == pytest.approx(1.0) and result["AP_large"] == pytest.approx(1.0)
    assert (result["gt_small"], result["gt_medium"], result["gt_large"]) == (1, 1, 1)
    assert result["AP"] == pytest.approx(67 / 101)  # recall 2/3 at precision 1: ceil(66.67)=67 points


def test_empty_bucket_is_nan_and_no_detections_score_zero() -> None:
    gt = _ground_truth([[[30, 30, 60, 60]], []], [[0], []])
    result = detection_metrics(gt, [_pred([[30, 30, 60, 60]], [0.5], [0]), _pred([], [], [])])
    assert result["AP"] == pytest.approx(1.0)
    assert math.isnan(result["AP_small"]) and math.isnan(result["AP_medium"])
    nothing = detection_metrics(gt, [_pred([], [], []), _pred([], [], [])])
    assert nothing["AP"] == 0.0 and nothing["AP_large"] == 0.0 and math.isnan(nothing["AP_small"])


def test_cocoeval_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    gt = _ground_truth([[[0, 0, 20, 20]]], [[0]])
    detection_metrics(gt, [_pred([[0, 0, 20, 20]], [1.0], [0])])
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


@pytest.mark.parametrize(("predictions", "word"), [
    ([], "one"),
    ([(np.zeros((1, 4)), np.zeros(2), np.zeros(1, np.int64))], "length"),
    ([(np.zeros((1, 4)), np.zeros(1), np.array([5]))], "labels"),
    ([(np.full((1, 4), np.nan), np.zeros(1), np.zeros(1, np.int64))], "finite"),
    ([(np.zeros((1, 4)), np.zeros(1))], "tuple"),
    ([(np.array([[10.0, 0, 5, 5]]), np.zeros(1), np.zeros(1, np.int64))], "x1 >= x0"),
])
def test_bad_predictions_are_rejected(predictions: list[object], word: str) -> None:
    gt = _ground_truth([[[0, 0, 20, 20]]], [[0]])
    with pytest.raises(ValueError, match=word):
        detection_metrics(gt, predictions)  # type: ignore[arg-type]


def test_multilabel_map_by_hand() -> None:
    # class 0: positives ranked 1st and 3rd -> AP = (1/1 + 2/3) / 2; class 1: perfect ranking -> 1;
    # class 2 has no positive and is left out
    targets = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 0]])
    scores = np.array([[0.9, 0.1, 0.3], [0.8, 0.9, 0.2], [0.7, 0.2, 0.9], [0.1, 0.3, 0.4]])
    assert multilabel_map(scores, targets) == pytest.approx(((1 + 2 / 3) / 2 + 1.0) / 2)
    with pytest.raises(ValueError, match="targets"):
        multilabel_map(scores, np.zeros_like(targets))
    with pytest.raises(ValueError, match="shape|both"):
        multilabel_map(scores[:, :2], targets)
    with pytest.raises(ValueError, match="0 and 1"):
        multilabel_map(scores, targets * 2)
