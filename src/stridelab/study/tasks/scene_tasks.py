"""The three tasks on scenes (``--dataset scenes`` or ``coco:PATH``): objectives and test metrics.

Each task is an :class:`~stridelab.study.train.Objective` (what training optimizes) with an
``evaluate`` that returns the test metrics of one trained model (keys listed in
``METRICS[task]``), all computed by :mod:`stridelab.study.metrics`:

* ``classify``: multi-label presence of each digit class (binary cross-entropy per class), scored by
  mean average precision over classes (``mAP``). Chosen over "class of the smallest digit" because
  every digit of a scene counts (small ones included: a model that cannot see 6-pixel digits loses
  their classes' AP), it needs no tie-breaking rule, and it has a threshold-free metric.
  ``consistency``: the fraction of test images whose predicted set of classes (probability > 0.5)
  is the same under two random shifts (Zhang 2019's measure, for sets).
* ``segment``: per-pixel cross-entropy over background + classes with class-balanced weights
  (:func:`balanced_class_weights`: each label weighted by the inverse of its pixel frequency in
  the training masks, mean pixel weight 1). About 90 % of the pixels are background: unweighted
  short trainings, and even inverse-square-root weights, collapse to "all background" (os8,
  width 8, 160 steps of 16 scenes: mIoU 0.0 % with inverse-square-root weights, 4.8 % balanced;
  20 % balanced after 320 steps);
  ``mIoU``, ``boundary_F1`` and
  ``IoU_small`` / ``IoU_medium`` / ``IoU_large`` (IoU of the objects of each size bucket).
* ``detect``: CenterNet targets and loss (:mod:`stridelab.nn.centernet`); COCO ``AP``, ``AP50``,
  ``AP75``, ``AP_small`` / ``AP_medium`` / ``AP_large`` from pycocotools.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from stridelab.study.tasks.scene_data import SceneSplits

METRICS = {
    "classify": ("mAP", "consistency"),
    "segment": ("mIoU", "boundary_F1", "IoU_small", "IoU_medium", "IoU_large"),
    "detect": ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large"),
}
PRIMARY = {"classify": "mAP", "segment": "mIoU", "detect": "AP"}
IGNORE_LABEL = -1  # COCO crowd / unlabelled pixels in masks (stridelab.study.coco)
EVAL_BATCH = 64


@torch.no_grad()
def _outputs(model: nn.Module, images: torch.Tensor, data: SceneSplits, device: torch.device,
             convert: Any) -> list[Any]:
    """``convert(raw_output)`` for every batch of ``images`` (model in eval mode)."""
    model.eval()
    return [convert(model(data.normalize(chunk.to(device))))
            for chunk in torch.split(images, EVAL_BATCH)]


class SceneTask(ABC):
    """Shared parts: the data, inputs, normalization (subclasses add targets, loss, metrics)."""

    name = "task"
    supports_shift = False

    def __init__(self, data: SceneSplits) -> None:
        self.data = data
        self.train_x = data.train_x

    @property
    def validation_key(self) -> str:
        return f"val_{PRIMARY[self.name]}"

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        return self.data.normalize(images)

    def validation_score(self, model: nn.Module, device: torch.device) -> float:
        return float(self.metrics(model, "val", device)[PRIMARY[self.name]])

    @abstractmethod
    def train_targets(self, indices: torch.Tensor) -> Any:
        """The training targets of the scenes at ``indices``."""

    @abstractmethod
    def loss(self, outputs: Any, targets: Any) -> tuple[torch.Tensor, float]:
        """The loss to minimise and its value as a float."""

    @abstractmethod
    def metrics(self, model: nn.Module, split: str, device: torch.device) -> dict[str, float]:
        """The task's metrics of ``model`` on ``split`` ("val" or "test")."""

    def evaluate(self, model: nn.Module, device: torch.device, *, max_shift: int,
                 seed: int) -> dict[str, float]:
        return self.metrics(model, "test", device)

    def split(self, name: str) -> tuple[Any, torch.Tensor]:
        return {"train": (self.data.train, self.data.train_x), "val": (self.data.val,
                                                                       self.data.val_x),
                "test": (self.data.test, self.data.test_x)}[name]


class MultiLabelTask(SceneTask):
    name = "classify"

    def __init__(self, data: SceneSplits) -> None:
        super().__init__(data)
        self.presence = torch.from_numpy(data.train.presence())

    def train_targets(self, indices: torch.Tensor) -> torch.Tensor:
        return self.presence[indices]

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, float]:
        targets = targets.to(outputs.device)
        agree = float(((outputs > 0) == (targets > 0.5)).double().mean())
        return F.binary_cross_entropy_with_logits(outputs, targets), agree

    def scores(self, model: nn.Module, images: torch.Tensor, device: torch.device) -> np.ndarray:
        parts = _outputs(model, images, self.data, device, lambda o: torch.sigmoid(o).cpu())
        return torch.cat(parts).numpy()

    def metrics(self, model: nn.Module, split: str, device: torch.device) -> dict[str, float]:
        from stridelab.study.metrics import multilabel_map

        scenes, images = self.split(split)
        return {"mAP": float(multilabel_map(self.scores(model, images, device),
                                            scenes.presence()))}

    def evaluate(self, model: nn.Module, device: torch.device, *, max_shift: int,
                 seed: int) -> dict[str, float]:
        from stridelab.study.measure import shift

        result = self.metrics(model, "test", device)
        images = self.data.test_x
        generator = torch.Generator().manual_seed(7_919 + seed)
        first = torch.randint(-max_shift, max_shift + 1, (len(images), 2), generator=generator)
        second = torch.randint(-max_shift, max_shift + 1, (len(images), 2), generator=generator)
        a = self.scores(model, shift(images, first), device) > 0.5
        b = self.scores(model, shift(images, second), device) > 0.5
        result["consistency"] = float((a == b).all(axis=1).mean())
        return result


def balanced_class_weights(labels: torch.Tensor, num_labels: int) -> torch.Tensor:
    """Class-balanced loss weights (King & Zeng 2001; scikit-learn's ``class_weight="balanced"``):
    ``w_c = n / (k * n_c)`` for the ``k`` labels present among the ``n`` labelled pixels (``n_c``
    of label ``c``), so every present label carries the same total weight and the mean weight
    per pixel is 1; labels absent from ``labels`` get 1. ``IGNORE_LABEL`` pixels are skipped.
    Returns a float32 tensor of ``num_labels`` weights."""
    labelled = labels[labels != IGNORE_LABEL].flatten().long()
    if labelled.numel() and (int(labelled.min()) < 0 or int(labelled.max()) >= num_labels):
        raise ValueError(f"labels must lie in [0, {num_labels}) or be {IGNORE_LABEL} (ignored); "
                         f"got values in [{int(labelled.min())}, {int(labelled.max())}]")
    counts = torch.bincount(labelled, minlength=num_labels).double()
    present = counts > 0
    weights = torch.ones(num_labels, dtype=torch.float64)
    weights[present] = counts.sum() / (int(present.sum()) * counts[present])
    return weights.float()


class SegmentTask(SceneTask):
    name = "segment"

    def __init__(self, data: SceneSplits) -> None:
        super().__init__(data)
        self.masks = torch.from_numpy(np.ascontiguousarray(data.train.masks, dtype=np.int64))
        self.class_weights = balanced_class_weights(self.masks, data.num_classes + 1)

    def train_targets(self, indices: torch.Tensor) -> torch.Tensor:
        return self.masks[indices]

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, float]:
        targets = targets.to(outputs.device)
        labelled = targets != IGNORE_LABEL
        correct = float((outputs.argmax(dim=1) == targets)[labelled].double().mean())
        weights = self.class_weights.to(outputs.device)
        return F.cross_entropy(outputs, targets, weight=weights, ignore_index=IGNORE_LABEL), correct

    def predict_masks(self, model: nn.Module, images: torch.Tensor,
                      device: torch.device) -> np.ndarray:
        parts = _outputs(model, images, self.data, device, lambda o: o.argmax(dim=1).cpu())
        return torch.cat(parts).numpy()

    def metrics(self, model: nn.Module, split: str, device: torch.device) -> dict[str, float]:
        from stridelab.study.metrics import scene_segmentation_metrics

        scenes, images = self.split(split)
        found = scene_segmentation_metrics(scenes, self.predict_masks(model, images, device))
        return {key: float(found[key]) for key in METRICS["segment"]}


class DetectTask(SceneTask):
    name = "detect"

    def __init__(self, data: SceneSplits, levels: tuple[int, ...]) -> None:
        from stridelab.nn.centernet import encode_targets

        super().__init__(data)
        self.levels = levels
        boxes = [torch.from_numpy(np.asarray(b, dtype=np.float32)) for b in data.train.boxes]
        labels = [torch.from_numpy(np.asarray(c, dtype=np.int64)) for c in data.train.labels]
        self.targets = encode_targets(boxes, labels, strides=levels, image_size=data.image_size,
                                      num_classes=data.num_classes)

    def train_targets(self, indices: torch.Tensor) -> dict[int, tuple[torch.Tensor, ...]]:
        return {s: tuple(t[indices] for t in parts) for s, parts in self.targets.items()}

    def loss(self, outputs: dict[int, torch.Tensor],
             targets: dict[int, tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, float]:
        from stridelab.nn.centernet import centernet_loss

        loss = centernet_loss(outputs, targets)  # type: ignore[arg-type]
        found = total = 0
        with torch.no_grad():  # centre recall: object cells whose class logit is positive
            for stride, raw in outputs.items():
                heatmap = targets[stride][0].to(raw.device)
                peaks = heatmap.eq(1.0)
                found += int((raw[:, :heatmap.shape[1]][peaks] > 0).sum())
                total += int(peaks.sum())
        return loss, found / max(total, 1)

    def detections(self, model: nn.Module, images: torch.Tensor,
                   device: torch.device) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        from stridelab.nn.centernet import decode_detections

        def convert(raw: dict[int, torch.Tensor]) -> list[Any]:
            decoded = decode_detections(raw, num_classes=self.data.num_classes,
                                        image_size=self.data.image_size)
            return [(b.numpy(), s.numpy(), c.numpy()) for b, s, c in decoded]

        return [d for part in _outputs(model, images, self.data, device, convert) for d in part]

    def metrics(self, model: nn.Module, split: str, device: torch.device) -> dict[str, float]:
        from stridelab.study.metrics import detection_metrics

        scenes, images = self.split(split)
        found = detection_metrics(scenes, self.detections(model, images, device))
        return {key: float(found[key]) for key in METRICS["detect"]}


def make_task(task: str, data: SceneSplits, *, levels: tuple[int, ...] = ()) -> SceneTask:
    if task == "classify":
        return MultiLabelTask(data)
    if task == "segment":
        return SegmentTask(data)
    if task == "detect":
        return DetectTask(data, levels)
    raise ValueError(f"task must be one of classify, segment, detect; got {task!r}")
