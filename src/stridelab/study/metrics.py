"""Metrics of the three study tasks, each computed by a maintained implementation where one exists.

* :func:`detection_metrics`: COCO AP@[.5:.95], AP50, AP75, AP / AR by object size, by
  pycocotools' ``COCOeval`` (its printing silenced). Its size ranges are the ground truth's
  ``area_thresholds`` (scaled to the canvas, see :mod:`stridelab.study.scene_set`) instead of COCO's
  fixed 32^2 / 96^2, and an object's area is its box area (see :func:`stridelab.study.coco.to_coco`).
* :func:`multilabel_map`: mean over classes (with at least one positive) of scikit-learn's
  ``average_precision_score``, for the scenes classification task (which digits are present).
* :func:`segmentation_metrics` and :func:`scene_segmentation_metrics` (in
  :mod:`stridelab.study.metrics_segmentation`, re-exported here): mIoU, boundary F1, IoU by object
  size.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from stridelab.study.metrics_segmentation import (
    boundary_tolerance_px,
    scene_segmentation_metrics,
    segmentation_metrics,
)
from stridelab.study.scene_set import SIZE_BUCKETS, SceneSet, box_area, bucket_of_area

__all__ = ["DETECTION_KEYS", "Prediction", "boundary_tolerance_px", "detection_metrics",
           "multilabel_map", "scene_segmentation_metrics", "segmentation_metrics"]

#: (boxes (k, 4) xyxy pixels, scores (k,), labels (k,) classes 0..K-1) for one image
Prediction = tuple[np.ndarray, np.ndarray, np.ndarray]
#: keys of :func:`detection_metrics` in the order of COCOeval's ``stats`` vector
DETECTION_KEYS = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
                  "AR1", "AR10", "AR100", "AR_small", "AR_medium", "AR_large")
_HUGE_AREA = 1e10


def _check_predictions(gt: SceneSet, predictions: Sequence[Prediction]) -> list[Prediction]:
    if len(predictions) != len(gt):
        raise ValueError(f"predictions needs one (boxes, scores, labels) per image: {len(gt)}; "
                         f"got {len(predictions)}")
    checked = []
    for i, item in enumerate(predictions):
        if not isinstance(item, (tuple, list)) or len(item) != 3:
            raise ValueError(f"predictions[{i}] must be a (boxes, scores, labels) tuple")
        boxes = np.asarray(item[0], dtype=np.float64).reshape(-1, 4) if np.size(item[0]) else \
            np.zeros((0, 4))
        scores = np.asarray(item[1], dtype=np.float64).reshape(-1)
        labels = np.asarray(item[2]).reshape(-1)
        if not len(boxes) == len(scores) == len(labels):
            raise ValueError(f"predictions[{i}]: boxes, scores and labels differ in length "
                             f"({len(boxes)}, {len(scores)}, {len(labels)})")
        if not (np.isfinite(boxes).all() and np.isfinite(scores).all()):
            raise ValueError(f"predictions[{i}]: boxes and scores must be finite")
        if (boxes[:, 2] < boxes[:, 0]).any() or (boxes[:, 3] < boxes[:, 1]).any():
            raise ValueError(f"predictions[{i}]: boxes must be x0, y0, x1, y1 with x1 >= x0, y1 >= y0")
        if len(labels) and (not np.issubdtype(labels.dtype, np.integer)
                            or labels.min() < 0 or labels.max() >= gt.num_classes):
            raise ValueError(f"predictions[{i}]: labels must be integers in 0..{gt.num_classes - 1}")
        checked.append((boxes, scores, labels.astype(np.int64)))
    return checked


def _bucket_counts(gt: SceneSet) -> dict[str, int]:
    counts = {name: 0 for name in SIZE_BUCKETS}
    for boxes in gt.boxes:
        for box in boxes:
            counts[bucket_of_area(box_area(box), gt.area_thresholds)] += 1
    return counts


def detection_metrics(gt: SceneSet, predictions: Sequence[Prediction], *,
                      max_detections: int = 100) -> dict[str, float]:
    """COCO box metrics of ``predictions`` (one ``(boxes, scores, labels)`` per image of ``gt``).

    Boxes are ``x0, y0, x1, y1`` in pixels (x1, y1 exclusive, as in :class:`SceneSet`). Returns
    the keys of :data:`DETECTION_KEYS` (AP over IoU .50:.05:.95, 101-point interpolated, averaged
    over classes; AR at 1 / 10 / ``max_detections`` detections per image) plus ``gt_small``,
    ``gt_medium``, ``gt_large`` (object counts per size bucket). A value COCOeval cannot compute
    (no ground truth in that bucket) is NaN. AP_small etc. use ``max_detections`` per image.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from stridelab.study.coco import to_coco

    if not isinstance(max_detections, int) or max_detections < 10:
        raise ValueError(f"max_detections must be an int >= 10; got {max_detections!r}")
    checked = _check_predictions(gt, predictions)
    assert gt.image_ids is not None and gt.category_ids is not None
    counts = _bucket_counts(gt)
    detections = []
    for image_id, (boxes, scores, labels) in zip(gt.image_ids, checked):
        for box, score, label in zip(boxes, scores, labels):
            detections.append({"image_id": int(image_id), "category_id": int(gt.category_ids[label]),
                               "bbox": [float(box[0]), float(box[1]), float(box[2] - box[0]),
                                        float(box[3] - box[1])], "score": float(score)})
    extra = {f"gt_{name}": float(n) for name, n in counts.items()}
    if not detections:  # COCO.loadRes cannot take an empty list; nothing detected scores 0
        total = sum(counts.values())
        values = {key: (0.0 if total else math.nan) for key in DETECTION_KEYS}
        for name in SIZE_BUCKETS:
            values[f"AP_{name}"] = values[f"AR_{name}"] = 0.0 if counts[name] else math.nan
        return {**values, **extra}
    t_small, t_large = gt.area_thresholds
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = to_coco(gt, include_masks=False)
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(detections)
        evaluator = COCOeval(coco_gt, coco_dt, iouType="bbox")
        evaluator.params.imgIds = [int(i) for i in gt.image_ids]
        evaluator.params.areaRng = [[0.0, _HUGE_AREA], [0.0, t_small], [t_small, t_large],
                                    [t_large, _HUGE_AREA]]
        evaluator.params.maxDets = [1, 10, max_detections]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = [float(v) for v in evaluator.stats]
    values = {key: (math.nan if value < 0 else value) for key, value in zip(DETECTION_KEYS, stats)}
    return {**values, **extra}


def multilabel_map(scores: np.ndarray, targets: np.ndarray) -> float:
    """Mean average precision of multi-label ``scores`` (N, K) against 0/1 ``targets`` (N, K).

    Macro average of :func:`sklearn.metrics.average_precision_score` over the classes that have at
    least one positive (AP is undefined without one).
    """
    from sklearn.metrics import average_precision_score

    scores = np.asarray(scores, dtype=np.float64)
    targets = np.asarray(targets)
    if scores.ndim != 2 or scores.shape != targets.shape:
        raise ValueError(f"scores and targets must both be (N, K); got {scores.shape} and "
                         f"{targets.shape}")
    if not np.isin(targets, (0, 1)).all():
        raise ValueError("targets must contain only 0 and 1")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite")
    present = [c for c in range(targets.shape[1]) if targets[:, c].any()]
    if not present:
        raise ValueError("targets have no positive in any class; mAP is undefined")
    per_class = [average_precision_score(targets[:, c], scores[:, c]) for c in present]
    return float(np.mean(per_class))


def describe_detection_metrics(values: dict[str, Any]) -> str:
    """One line, e.g. ``AP 41.2  AP50 70.3  AP75 40.1  S/M/L 12.0/45.3/60.2`` (percent)."""
    def pct(key: str) -> str:
        value = float(values.get(key, math.nan))
        return "n/a" if math.isnan(value) else f"{100 * value:.1f}"

    return (f"AP {pct('AP')}  AP50 {pct('AP50')}  AP75 {pct('AP75')}  "
            f"S/M/L {pct('AP_small')}/{pct('AP_medium')}/{pct('AP_large')}")
