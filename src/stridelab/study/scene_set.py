"""The container of the scene tasks: images with class masks, instance masks, boxes and labels.

Conventions (all coordinates in pixels of the image):

* ``images``: float32 ``(N, C, H, W)`` in [0, 1] (C = 1 for scenes).
* ``masks``: int64 ``(N, H, W)``; 0 is background, ``1 + c`` a pixel of an object of class ``c``
  (a COCO folder may also mark crowd regions with -1, which metrics ignore).
* ``instances``: int64 ``(N, H, W)``; 0 is no object, ``1 + j`` a pixel of object ``j`` of that
  image (``boxes[i][j]``, ``labels[i][j]``).
* ``boxes[i]``: float32 ``(k, 4)``, ``x0, y0, x1, y1`` with ``x0, y0`` inclusive and ``x1, y1``
  exclusive, so ``x1 - x0`` is the width in pixels (COCO's ``bbox = [x0, y0, x1 - x0, y1 - y0]``).
* ``labels[i]``: int64 ``(k,)`` classes ``0 .. num_classes - 1``.

Size buckets (:func:`area_thresholds`): COCO calls an object small below 32^2 and large above 96^2
pixels of area in images of about 640 pixels. Scaled literally to a 64-pixel canvas (factor 0.1) the
small bucket would end at a 3.2-pixel side, below the smallest legible digit, and nothing would be
small. We keep COCO's 1:3 ratio of side thresholds and scale them by ``canvas / 256``: small below
``(canvas / 8)^2`` and large from ``(3 * canvas / 8)^2``, i.e. 8^2 = 64 and 24^2 = 576 px^2 at 64
pixels. A COCO folder keeps COCO's own thresholds (see :mod:`stridelab.study.coco`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SIZE_BUCKETS = ("small", "medium", "large")
DIGIT_CLASSES = tuple(str(i) for i in range(10))
#: COCO's side thresholds (32, 96 pixels) are applied at this canvas size; see the module docstring.
BUCKET_REFERENCE_CANVAS = 256
COCO_AREA_THRESHOLDS = (32.0 ** 2, 96.0 ** 2)


def area_thresholds(canvas: int) -> tuple[float, float]:
    """(small / medium, medium / large) box-area thresholds in px^2 for a ``canvas``-pixel image.

    COCO's 32 and 96 pixel sides scaled by ``canvas / 256``: (64.0, 576.0) at 64 pixels.
    """
    if not isinstance(canvas, int) or isinstance(canvas, bool) or canvas < 1:
        raise ValueError(f"canvas must be a positive int; got {canvas!r}")
    scale = canvas / BUCKET_REFERENCE_CANVAS
    return (32.0 * scale) ** 2, (96.0 * scale) ** 2


def bucket_of_area(area: float, thresholds: tuple[float, float]) -> str:
    """'small' if ``area < thresholds[0]``, 'medium' if below ``thresholds[1]``, else 'large'
    (COCOeval's ranges: lower bound inclusive, upper exclusive)."""
    if area < thresholds[0]:
        return "small"
    return "medium" if area < thresholds[1] else "large"


def box_area(box: np.ndarray) -> float:
    """Area in px^2 of one ``x0, y0, x1, y1`` box (x1, y1 exclusive)."""
    return float(max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1]))


def tight_box(mask: np.ndarray) -> np.ndarray:
    """The ``x0, y0, x1, y1`` box (x1, y1 exclusive) of the True pixels of a 2-D mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ValueError("tight_box: the mask has no pixels")
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=np.float32)


@dataclass(frozen=True, eq=False)
class SceneSet:
    """Images with per-pixel class masks, instance masks, boxes and labels (see module docstring).

    ``area_thresholds`` are the small/medium and medium/large box-area limits in px^2 used by
    :meth:`size_bucket` and by the detection metrics' AP_small / AP_medium / AP_large.
    ``image_ids`` / ``category_ids`` are the COCO ids used when writing COCO JSON (1-based by
    default; a loaded COCO folder keeps its own).
    """

    images: np.ndarray
    masks: np.ndarray
    instances: np.ndarray
    boxes: list[np.ndarray]
    labels: list[np.ndarray]
    class_names: tuple[str, ...] = DIGIT_CLASSES
    area_thresholds: tuple[float, float] = (64.0, 576.0)
    image_ids: np.ndarray | None = None
    category_ids: tuple[int, ...] | None = None
    name: str = "scenes"
    file_names: tuple[str, ...] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.ndim != 4:
            raise ValueError(f"images must have shape (N, C, H, W); got {self.images.shape}")
        spatial = (n, *self.images.shape[2:])
        for label, array in (("masks", self.masks), ("instances", self.instances)):
            if array.shape != spatial:
                raise ValueError(f"{label} must have shape {spatial}; got {array.shape}")
        if len(self.boxes) != n or len(self.labels) != n:
            raise ValueError(f"boxes and labels need one entry per image ({n}); "
                             f"got {len(self.boxes)} and {len(self.labels)}")
        if self.image_ids is None:
            object.__setattr__(self, "image_ids", np.arange(1, n + 1, dtype=np.int64))
        if self.category_ids is None:
            object.__setattr__(self, "category_ids", tuple(range(1, len(self.class_names) + 1)))
        if len(self.category_ids or ()) != len(self.class_names):
            raise ValueError("category_ids needs one id per class name")

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int | slice | Sequence[int] | np.ndarray) -> SceneSet:
        """A new SceneSet of the selected images (an int selects one image, still a SceneSet)."""
        if isinstance(index, (int, np.integer)):
            position = int(index) + (len(self) if index < 0 else 0)
            if not 0 <= position < len(self):
                raise IndexError(f"image index {index} out of range for {len(self)} images")
            chosen = np.array([position])
        elif isinstance(index, slice):
            chosen = np.arange(len(self))[index]
        else:
            chosen = np.asarray(index)
            if chosen.dtype == bool:
                chosen = np.flatnonzero(chosen)
        return self.subset(chosen)

    def subset(self, indices: Sequence[int] | np.ndarray) -> SceneSet:
        """The images at ``indices`` (in that order), with everything that belongs to them."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        assert self.image_ids is not None
        names = None if self.file_names is None else tuple(self.file_names[i] for i in idx)
        return SceneSet(
            images=self.images[idx], masks=self.masks[idx], instances=self.instances[idx],
            boxes=[self.boxes[i] for i in idx], labels=[self.labels[i] for i in idx],
            class_names=self.class_names, area_thresholds=self.area_thresholds,
            image_ids=self.image_ids[idx], category_ids=self.category_ids, name=self.name,
            file_names=names)

    @property
    def num_classes(self) -> int:
        """Number of object classes (10 for scenes); masks hold 0 .. num_classes."""
        return len(self.class_names)

    @property
    def in_channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[3])

    def size_bucket(self, box: np.ndarray | Sequence[float]) -> str:
        """'small', 'medium' or 'large' for an ``x0, y0, x1, y1`` box (by its area)."""
        return bucket_of_area(box_area(np.asarray(box, dtype=np.float64)), self.area_thresholds)

    def presence(self) -> np.ndarray:
        """Multi-hot float32 ``(N, num_classes)``: 1 where the image holds a digit of that class
        (the target of the multi-label classification task)."""
        targets = np.zeros((len(self), self.num_classes), dtype=np.float32)
        for i, labels in enumerate(self.labels):
            targets[i, labels] = 1.0
        return targets


def scene_stats(scenes: SceneSet) -> dict[str, Any]:
    """Counts for the report: digits per image, box-side histogram, per-bucket and per-class
    counts, the bucket thresholds and the fraction of pixels that are digit ink."""
    per_image = [len(labels) for labels in scenes.labels]
    all_boxes = [box for boxes in scenes.boxes for box in boxes]
    sides = [float(np.sqrt(box_area(box))) for box in all_boxes]
    buckets = {name: 0 for name in SIZE_BUCKETS}
    for box in all_boxes:
        buckets[scenes.size_bucket(box)] += 1
    classes = np.bincount(np.concatenate(scenes.labels) if all_boxes else np.zeros(0, np.int64),
                          minlength=scenes.num_classes)
    max_side = max(scenes.image_size)
    edges = list(range(0, max_side + 4, 4))
    hist, _ = np.histogram(sides, bins=edges)
    return {
        "images": len(scenes), "objects": len(all_boxes),
        "objects_per_image": {str(k): int(v) for k, v in enumerate(np.bincount(per_image)) if v},
        "mean_objects_per_image": float(np.mean(per_image)) if per_image else 0.0,
        "box_side_histogram": {"edges_px": edges, "counts": hist.astype(int).tolist()},
        "buckets": buckets,
        "bucket_area_thresholds_px2": list(scenes.area_thresholds),
        "per_class": {scenes.class_names[c]: int(n) for c, n in enumerate(classes)},
        "ink_fraction": float((scenes.masks > 0).mean()) if len(scenes) else 0.0,
    }
