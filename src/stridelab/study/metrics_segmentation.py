"""Semantic segmentation metrics: mIoU, boundary F1 and IoU per object by size bucket.

Label maps are integer arrays (N, H, W): 0 background, ``1 + c`` class ``c`` of ``num_classes``
object classes; ground truth may also hold ``ignore_index`` (-1, e.g. COCO crowd regions), which is
left out of every count.

* **mIoU**: one confusion matrix accumulated over all pixels of all images (as in PASCAL VOC and
  Cityscapes); IoU of a label = TP / (TP + FP + FN). ``mIoU`` averages the *object* classes whose
  union is non-empty (present in the ground truth or the prediction); ``mIoU_with_background``
  also averages the background label.
* **Boundary F1** (the BF score of Csurka, Larlus and Perronnin, "What is a good evaluation measure
  for semantic segmentation?", BMVC 2013; the contour accuracy F of DAVIS, Perazzi et al. 2016):
  the boundary of a binary mask is its pixels with at least one 4-neighbour inside the image that
  is not in the mask (the image border is not a boundary). A predicted boundary pixel is correct
  if a ground-truth boundary pixel of the same class lies within Euclidean distance ``tolerance``
  pixels, and vice versa for recall; F1 = 2PR / (P + R); as in DAVIS, P = 1 when there is no
  predicted boundary and R = 1 when there is no ground-truth one. Computed per image and object
  class present in either map (a class in only one of them scores 0), averaged over those classes
  per image, then over images (images without any object class in either map are skipped). The
  default tolerance is Csurka et al.'s 0.75 % of the image diagonal, at least 1 pixel (1 px at
  64 x 64).
* **IoU by object size**: for every ground-truth object (an instance of ``instances``), the IoU of
  its pixels G with the pixels P predicted as its class inside its tight box, not counting pixels of
  other ground-truth objects: |P & G| / |P | G|. Averaged per size bucket of the tight box's area.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from stridelab.study.scene_set import SIZE_BUCKETS, SceneSet, box_area, bucket_of_area, tight_box

IGNORE_INDEX = -1
CSURKA_DIAGONAL_FRACTION = 0.0075


def boundary_tolerance_px(height: int, width: int) -> float:
    """Csurka et al. (2013): 0.75 % of the image diagonal, here at least 1 pixel."""
    return max(1.0, CSURKA_DIAGONAL_FRACTION * math.hypot(height, width))


def _check_maps(pred: np.ndarray, gt: np.ndarray, num_classes: int, ignore_index: int) -> None:
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be an int >= 1; got {num_classes!r}")
    if pred.ndim != 3 or pred.shape != gt.shape:
        raise ValueError(f"pred_masks and gt_masks must both be (N, H, W); got {pred.shape} and "
                         f"{gt.shape}")
    for name, array in (("pred_masks", pred), ("gt_masks", gt)):
        if not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"{name} must hold integer labels; got dtype {array.dtype}")
    if pred.size and (pred.min() < 0 or pred.max() > num_classes):
        raise ValueError(f"pred_masks must hold labels 0..{num_classes}")
    valid = gt[gt != ignore_index]
    if valid.size and (valid.min() < 0 or valid.max() > num_classes):
        raise ValueError(f"gt_masks must hold labels 0..{num_classes} or {ignore_index} (ignored)")


def confusion_matrix(pred: np.ndarray, gt: np.ndarray, num_labels: int,
                     ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """``(num_labels, num_labels)`` int64 counts, rows ground truth, columns prediction."""
    keep = gt != ignore_index
    codes = gt[keep].astype(np.int64) * num_labels + pred[keep].astype(np.int64)
    return np.bincount(codes, minlength=num_labels ** 2).reshape(num_labels, num_labels)


def _boundary(masks: np.ndarray) -> np.ndarray:
    """Pixels of (N, H, W) boolean masks with a 4-neighbour (inside the image) outside the mask."""
    padded = np.pad(masks, ((0, 0), (1, 1), (1, 1)), mode="edge")
    inner = (padded[:, :-2, 1:-1] & padded[:, 2:, 1:-1] & padded[:, 1:-1, :-2] & padded[:, 1:-1, 2:])
    edge: np.ndarray = masks & ~inner
    return edge


def _dilate_disk(masks: np.ndarray, radius: float) -> np.ndarray:
    """Pixels within Euclidean distance ``radius`` of a True pixel of (N, H, W) masks."""
    reach = int(math.floor(radius))
    out: np.ndarray = masks.copy()
    n, h, w = masks.shape
    padded = np.pad(masks, ((0, 0), (reach, reach), (reach, reach)))
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            if (dy or dx) and dy * dy + dx * dx <= radius * radius:
                out |= padded[:, reach + dy:reach + dy + h, reach + dx:reach + dx + w]
    return out


def boundary_f1(pred: np.ndarray, gt: np.ndarray, *, num_classes: int, tolerance: float,
                ignore_index: int = IGNORE_INDEX) -> dict[str, float]:
    """Mean boundary F1 / precision / recall over images (see the module docstring)."""
    n = len(pred)
    f1_sum, p_sum, r_sum = np.zeros(n), np.zeros(n), np.zeros(n)
    classes_seen = np.zeros(n)
    valid = gt != ignore_index
    for label in range(1, num_classes + 1):
        gt_c, pred_c = gt == label, (pred == label) & valid
        gt_b, pred_b = _boundary(gt_c), _boundary(pred_c) & valid
        n_gt, n_pred = gt_b.sum(axis=(1, 2)), pred_b.sum(axis=(1, 2))
        present = (gt_c.any(axis=(1, 2)) | pred_c.any(axis=(1, 2)))
        if not present.any():
            continue
        hit_pred = (pred_b & _dilate_disk(gt_b, tolerance)).sum(axis=(1, 2))
        hit_gt = (gt_b & _dilate_disk(pred_b, tolerance)).sum(axis=(1, 2))
        # DAVIS's convention: no boundary to check counts as fully correct (P = 1 without a
        # predicted boundary, R = 1 without a ground-truth one), so identical masks without any
        # boundary (filling the image) score 1 and a missed class still scores 0.
        precision = np.divide(hit_pred, n_pred, out=np.ones(n), where=n_pred > 0)
        recall = np.divide(hit_gt, n_gt, out=np.ones(n), where=n_gt > 0)
        total = precision + recall
        f1 = np.divide(2 * precision * recall, total, out=np.zeros(n), where=total > 0)
        f1_sum += np.where(present, f1, 0.0)
        p_sum += np.where(present, precision, 0.0)
        r_sum += np.where(present, recall, 0.0)
        classes_seen += present
    scored = classes_seen > 0
    if not scored.any():
        return {"boundary_F1": math.nan, "boundary_precision": math.nan, "boundary_recall": math.nan}
    per = classes_seen[scored]
    return {"boundary_F1": float(np.mean(f1_sum[scored] / per)),
            "boundary_precision": float(np.mean(p_sum[scored] / per)),
            "boundary_recall": float(np.mean(r_sum[scored] / per))}


def object_iou_by_size(pred: np.ndarray, gt: np.ndarray, instances: np.ndarray,
                       area_thresholds: tuple[float, float],
                       ignore_index: int = IGNORE_INDEX) -> dict[str, float]:
    """Mean per-object IoU per size bucket (``IoU_small`` ...) and object counts (``objects_*``)."""
    per_bucket: dict[str, list[float]] = {name: [] for name in SIZE_BUCKETS}
    for i in range(len(gt)):
        for obj in np.unique(instances[i]):
            if obj <= 0:
                continue
            own = instances[i] == obj
            x0, y0, x1, y1 = (int(v) for v in tight_box(own))
            window = (slice(y0, y1), slice(x0, x1))
            label = int(gt[i][own][0])
            counted = ((instances[i][window] == 0) | own[window]) & (gt[i][window] != ignore_index)
            predicted = (pred[i][window] == label) & counted
            g = own[window]
            union = int((predicted | g).sum())
            bucket = bucket_of_area(box_area(np.array([x0, y0, x1, y1], np.float64)), area_thresholds)
            per_bucket[bucket].append(int((predicted & g).sum()) / union)
    out: dict[str, float] = {}
    for name, values in per_bucket.items():
        out[f"IoU_{name}"] = float(np.mean(values)) if values else math.nan
        out[f"objects_{name}"] = float(len(values))
    return out


def segmentation_metrics(pred_masks: np.ndarray, gt_masks: np.ndarray, *, num_classes: int,
                         instances: np.ndarray | None = None,
                         area_thresholds: tuple[float, float] | None = None,
                         boundary_tolerance: float | None = None,
                         ignore_index: int = IGNORE_INDEX) -> dict[str, Any]:
    """mIoU, boundary F1 and (given ``instances`` and ``area_thresholds``) IoU by object size.

    ``pred_masks`` / ``gt_masks``: integer (N, H, W) label maps (0 background, 1..num_classes).
    ``boundary_tolerance``: pixels; default :func:`boundary_tolerance_px`. Returns ``mIoU``,
    ``mIoU_with_background``, ``per_class_IoU`` (list of num_classes, NaN where absent),
    ``pixel_accuracy``, ``boundary_F1`` / ``_precision`` / ``_recall``,
    ``boundary_tolerance_px`` and, with instances, ``IoU_small|medium|large`` and
    ``objects_small|medium|large``. See the module docstring for the definitions.
    """
    pred = np.asarray(pred_masks)
    gt = np.asarray(gt_masks)
    _check_maps(pred, gt, num_classes, ignore_index)
    if boundary_tolerance is None:
        boundary_tolerance = boundary_tolerance_px(*gt.shape[1:])
    elif not (isinstance(boundary_tolerance, (int, float)) and boundary_tolerance >= 0):
        raise ValueError(f"boundary_tolerance must be a number >= 0; got {boundary_tolerance!r}")
    matrix = confusion_matrix(pred, gt, num_classes + 1, ignore_index)
    tp = np.diag(matrix).astype(np.float64)
    union = matrix.sum(axis=0) + matrix.sum(axis=1) - tp
    iou = np.divide(tp, union, out=np.full(len(tp), math.nan), where=union > 0)
    objects = iou[1:][union[1:] > 0]
    total = matrix.sum()
    result: dict[str, Any] = {
        "mIoU": float(objects.mean()) if objects.size else math.nan,
        "mIoU_with_background": float(np.nanmean(iou)) if (union > 0).any() else math.nan,
        "per_class_IoU": [float(v) for v in iou[1:]],
        "pixel_accuracy": float(tp.sum() / total) if total else math.nan,
        **boundary_f1(pred, gt, num_classes=num_classes, tolerance=float(boundary_tolerance),
                      ignore_index=ignore_index),
        "boundary_tolerance_px": float(boundary_tolerance),
    }
    if instances is not None:
        instances = np.asarray(instances)
        if instances.shape != gt.shape:
            raise ValueError(f"instances must have the shape of gt_masks {gt.shape}; got "
                             f"{instances.shape}")
        if area_thresholds is None:
            raise ValueError("area_thresholds is needed with instances (the size buckets)")
        result.update(object_iou_by_size(pred, gt, instances, area_thresholds, ignore_index))
    return result


def scene_segmentation_metrics(gt: SceneSet, pred_masks: np.ndarray, *,
                               boundary_tolerance: float | None = None) -> dict[str, Any]:
    """:func:`segmentation_metrics` of ``pred_masks`` against a SceneSet's masks, instances and
    size buckets."""
    return segmentation_metrics(pred_masks, gt.masks, num_classes=gt.num_classes,
                                instances=gt.instances, area_thresholds=gt.area_thresholds,
                                boundary_tolerance=boundary_tolerance)
