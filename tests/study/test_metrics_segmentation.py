"""mIoU, boundary F1 and per-object IoU on hand-made masks, and against brute-force oracles."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stridelab.study.metrics import scene_segmentation_metrics, segmentation_metrics
from stridelab.study.metrics_segmentation import boundary_tolerance_px
from stridelab.study.scenes import make_scenes


def _square(size: int, top: int, left: int, side: int, label: int = 1) -> np.ndarray:
    mask = np.zeros((size, size), np.int64)
    mask[top:top + side, left:left + side] = label
    return mask


def test_miou_by_hand() -> None:
    # 4 x 4 image: gt class 1 is a 2 x 2 square, the prediction a 2 x 3 block over it:
    # class 1 IoU = 4 / 6, background IoU = 10 / 12 (12 gt background pixels, 10 predicted so)
    gt = np.zeros((1, 4, 4), np.int64)
    gt[0, 1:3, 1:3] = 1
    pred = np.zeros((1, 4, 4), np.int64)
    pred[0, 1:3, 1:4] = 1
    result = segmentation_metrics(pred, gt, num_classes=3)
    assert result["mIoU"] == pytest.approx(4 / 6)  # classes 2 and 3 are absent: left out
    assert result["mIoU_with_background"] == pytest.approx((4 / 6 + 10 / 12) / 2)
    assert result["pixel_accuracy"] == pytest.approx(14 / 16)
    assert result["per_class_IoU"][0] == pytest.approx(4 / 6)
    assert math.isnan(result["per_class_IoU"][1]) and math.isnan(result["per_class_IoU"][2])


def test_class_predicted_but_absent_counts_zero_and_ignore_pixels_are_skipped() -> None:
    gt = np.zeros((1, 4, 4), np.int64)
    gt[0, :2, :2] = 1
    pred = gt.copy()
    pred[0, 3, 3] = 2                      # class 2 only in the prediction: IoU 0
    assert segmentation_metrics(pred, gt, num_classes=2)["mIoU"] == pytest.approx(0.5)
    gt_ignored = gt.copy()
    gt_ignored[0, 3, 3] = -1               # ... unless that pixel is ignored (e.g. a COCO crowd)
    assert segmentation_metrics(pred, gt_ignored, num_classes=2)["mIoU"] == pytest.approx(1.0)


def test_miou_matches_sklearn_jaccard_on_random_maps() -> None:
    from sklearn.metrics import jaccard_score

    rng = np.random.default_rng(0)
    gt = rng.integers(0, 4, size=(3, 9, 7))
    pred = np.where(rng.random(gt.shape) < 0.7, gt, rng.integers(0, 4, size=gt.shape))
    result = segmentation_metrics(pred, gt, num_classes=3)
    reference = jaccard_score(gt.ravel(), pred.ravel(), labels=[1, 2, 3], average=None)
    assert result["per_class_IoU"] == pytest.approx(reference.tolist())
    assert result["mIoU"] == pytest.approx(reference.mean())


def test_boundary_f1_by_hand() -> None:
    # gt: 4 x 4 square at rows/cols 2..5 of a 10 x 10 image; its boundary is 12 pixels (16 - 4
    # inner). The prediction is the same square one pixel to the right.
    gt = _square(10, 2, 2, 4)[None]
    shifted = _square(10, 2, 3, 4)[None]
    # tolerance 1: every boundary pixel has a counterpart at distance <= 1 -> F1 = 1
    assert segmentation_metrics(shifted, gt, num_classes=1, boundary_tolerance=1)["boundary_F1"] == 1.0
    # tolerance 0: only the 6 shared pixels of the top and bottom rows (cols 3..5) match: P = R = 1/2
    exact = segmentation_metrics(shifted, gt, num_classes=1, boundary_tolerance=0)
    assert exact["boundary_precision"] == pytest.approx(0.5)
    assert exact["boundary_F1"] == pytest.approx(0.5)
    # nothing predicted: P = 1 (no boundary to check), R = 0 -> F1 = 0
    empty = segmentation_metrics(np.zeros_like(gt), gt, num_classes=1)
    assert empty["boundary_F1"] == 0.0 and empty["boundary_recall"] == 0.0


def test_boundary_f1_averages_classes_then_images() -> None:
    gt = np.stack([_square(10, 2, 2, 4, 1) + _square(10, 0, 7, 3, 2), _square(10, 1, 1, 5, 1)])
    pred = gt.copy()
    pred[0][pred[0] == 2] = 0              # image 0: class 1 perfect (1), class 2 missed (0)
    result = segmentation_metrics(pred, gt, num_classes=2, boundary_tolerance=1)
    assert result["boundary_F1"] == pytest.approx(((1 + 0) / 2 + 1) / 2)
    full = np.ones((1, 5, 5), np.int64)    # filling the image: no boundary in either, identical
    assert segmentation_metrics(full, full, num_classes=1)["boundary_F1"] == 1.0


def _brute_boundary(mask: np.ndarray) -> np.ndarray:
    h, w = mask.shape
    out = np.zeros_like(mask)
    for y in range(h):
        for x in range(w):
            if mask[y, x]:
                for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                    yy, xx = y + dy, x + dx
                    if 0 <= yy < h and 0 <= xx < w and not mask[yy, xx]:
                        out[y, x] = True
    return out


def _brute_bf(pred: np.ndarray, gt: np.ndarray, num_classes: int, tolerance: float) -> float:
    """Independent boundary F1: loops for the boundary, scipy's exact Euclidean distance."""
    from scipy.ndimage import distance_transform_edt

    def distance_to(boundary: np.ndarray) -> np.ndarray:
        return (distance_transform_edt(~boundary) if boundary.any()
                else np.full(boundary.shape, np.inf))

    per_image = []
    for p_map, g_map in zip(pred, gt):
        scores = []
        for c in range(1, num_classes + 1):
            p, g = p_map == c, g_map == c
            if not (p.any() or g.any()):
                continue
            pb, gb = _brute_boundary(p), _brute_boundary(g)
            precision = (distance_to(gb)[pb] <= tolerance).mean() if pb.any() else 1.0
            recall = (distance_to(pb)[gb] <= tolerance).mean() if gb.any() else 1.0
            total = precision + recall
            scores.append(2 * precision * recall / total if total else 0.0)
        if scores:
            per_image.append(np.mean(scores))
    return float(np.mean(per_image))


@pytest.mark.parametrize("tolerance", [0.0, 1.0, 1.5, 2.0, 3.0])
def test_boundary_f1_matches_brute_force_with_exact_distances(tolerance: float) -> None:
    rng = np.random.default_rng(int(tolerance * 10))
    gt = np.zeros((4, 16, 16), np.int64)
    for i in range(4):
        for _ in range(3):
            top, left, side = rng.integers(0, 12), rng.integers(0, 12), rng.integers(2, 7)
            gt[i, top:top + side, left:left + side] = rng.integers(1, 4)
    noise = rng.random(gt.shape) < 0.15
    pred = np.where(noise, rng.integers(0, 4, size=gt.shape), np.roll(gt, 1, axis=2))
    ours = segmentation_metrics(pred, gt, num_classes=3, boundary_tolerance=tolerance)
    assert ours["boundary_F1"] == pytest.approx(_brute_bf(pred, gt, 3, tolerance))


def test_default_tolerance_is_csurkas_diagonal_fraction() -> None:
    assert boundary_tolerance_px(64, 64) == 1.0               # 0.0075 * 90.5 = 0.68 -> at least 1
    assert boundary_tolerance_px(480, 640) == pytest.approx(6.0)  # 0.0075 * 800


def test_object_iou_by_size_by_hand() -> None:
    # a 2 x 3 object (box area 6: small) fully found; an L-shaped object of 36 pixels whose tight
    # box is 10 x 10 (area 100: medium), 20 of its pixels found plus 4 wrong pixels inside its box
    # -> 20 / (36 + 4); predicted pixels outside its box do not count against it
    gt = np.zeros((1, 32, 32), np.int64)
    instances = np.zeros_like(gt)
    gt[0, 1:3, 1:4] = 1
    instances[0, 1:3, 1:4] = 1
    ring = np.zeros((32, 32), bool)
    ring[10:20, 10:20] = True
    ring[12:20, 12:20] = False              # an L-shaped object: 100 - 64 = 36 px, box 10 x 10
    gt[0][ring] = 2
    instances[0][ring] = 2
    pred = np.zeros_like(gt)
    pred[0, 1:3, 1:4] = 1
    pred[0, 10:12, 10:20] = 2               # 20 of the L's pixels ...
    pred[0, 14:16, 14:16] = 2               # ... and 4 pixels in its box that are not the object
    pred[0, 25:30, 25:30] = 2               # outside every box: does not count for the object
    result = segmentation_metrics(pred, gt, num_classes=2, instances=instances,
                                  area_thresholds=(64.0, 576.0))
    assert result["IoU_small"] == pytest.approx(1.0)
    assert result["IoU_medium"] == pytest.approx(20 / (36 + 4))
    assert math.isnan(result["IoU_large"])
    assert (result["objects_small"], result["objects_medium"], result["objects_large"]) == (1, 1, 0)


def test_scene_segmentation_metrics_perfect_and_empty() -> None:
    scenes = make_scenes(8, seed=9, split="val")
    perfect = scene_segmentation_metrics(scenes, scenes.masks)
    for key in ("mIoU", "boundary_F1", "pixel_accuracy"):
        assert perfect[key] == pytest.approx(1.0)
    for bucket in ("small", "medium", "large"):
        assert perfect[f"objects_{bucket}"] == 0 or perfect[f"IoU_{bucket}"] == pytest.approx(1.0)
    nothing = scene_segmentation_metrics(scenes, np.zeros_like(scenes.masks))
    assert nothing["mIoU"] == 0.0 and nothing["boundary_F1"] == 0.0


@pytest.mark.parametrize(("pred", "gt", "word"), [
    (np.zeros((1, 4, 4), np.int64), np.zeros((1, 4, 5), np.int64), "shape|both"),
    (np.full((1, 4, 4), 7, np.int64), np.zeros((1, 4, 4), np.int64), "pred_masks"),
    (np.zeros((1, 4, 4), np.int64), np.full((1, 4, 4), -2, np.int64), "gt_masks"),
    (np.zeros((1, 4, 4), np.float32), np.zeros((1, 4, 4), np.int64), "integer"),
])
def test_bad_masks_are_rejected(pred: np.ndarray, gt: np.ndarray, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        segmentation_metrics(pred, gt, num_classes=2)
