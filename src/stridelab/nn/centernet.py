"""Anchor-free, centre-based object detection (CenterNet: Zhou, Wang & Krähenbühl 2019, "Objects
as Points"), on one feature stride or on a feature pyramid (FCOS-style level assignment by size).

Conventions (pixels of the input image, boxes ``x1, y1, x2, y2`` with ``x2``/``y2`` exclusive
edges, as in COCO's ``[x, y, w, h]`` with ``w = x2 - x1``):

* A level of stride ``s`` has cells ``(i, j)``; an object with centre ``(cx, cy)`` belongs to cell
  ``(floor(cy / s), floor(cx / s))`` and its regression targets are the sub-cell offset
  ``(cx / s - j, cy / s - i)`` in ``[0, 1)`` and the log size ``(log(w / s), log(h / s))``.
* Each level's head outputs ``num_classes + 4`` channels: per-class centre logits, then
  ``dx, dy, log w/s, log h/s``.
* Targets: a Gaussian peak of 1 at the object's cell (sigma = max(0.5, size / (6 s)) cells; maxima
  where objects overlap), class channel only.
* Loss: CenterNet's penalty-reduced focal loss (alpha 2, beta 4) plus L1 on the four regression
  channels at centre cells, both divided by the number of objects.
* Decoding: sigmoid, a 3x3 max-pool keeps local peaks (CenterNet's NMS), the ``top_k`` best of
  each level, then per-class greedy IoU NMS (:func:`box_nms`) across levels.
* Level assignment (pyramid): an object whose longer side is ``m`` pixels goes to the largest
  stride ``s <= LEVEL_SCALE * m`` (the finest level if none).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stridelab.nn.pyramid import FeaturePyramid, feature_channels
from stridelab.nn.resnet import ResNet

REGRESSION_CHANNELS = 4
LEVEL_SCALE = 1.5
PRIOR_PROBABILITY = 0.1
FOCAL_ALPHA, FOCAL_BETA = 2.0, 4.0

Detections = tuple[Tensor, Tensor, Tensor]  # boxes (k, 4) float, scores (k,), labels (k,) int64


class CenterHead(nn.Module):
    """3x3 conv -> BN -> ReLU -> 1x1 conv to ``num_classes + 4`` channels (shared by levels)."""

    def __init__(self, in_channels: int, num_classes: int, *, width: int = 32) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.body = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        self.out = nn.Conv2d(width, num_classes + REGRESSION_CHANNELS, 1)
        with torch.no_grad():  # start every centre at the prior probability (focal-loss init)
            bias = self.out.bias
            assert bias is not None
            bias.zero_()
            bias[:num_classes] = -math.log((1 - PRIOR_PROBABILITY) / PRIOR_PROBABILITY)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.out(self.body(x))
        return out


class CenterNet(nn.Module):
    """ResNet backbone -> :class:`FeaturePyramid` over ``strides`` -> one shared
    :class:`CenterHead`. ``strides=None``: a single level at the backbone's output stride.

    ``forward`` returns ``{stride: (N, num_classes + 4, H_s, W_s)}`` raw outputs.
    """

    def __init__(self, backbone: ResNet, *, num_classes: int, strides: Sequence[int] | None = None,
                 channels: int = 32) -> None:
        super().__init__()
        if not isinstance(backbone, ResNet):
            raise TypeError(f"backbone must be a stridelab.nn.ResNet, got {type(backbone).__name__}")
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
            raise ValueError(f"num_classes must be an int >= 1, got {num_classes!r}")
        available = feature_channels(backbone)
        chosen = sorted(set(strides)) if strides is not None else [backbone.output_stride]
        unknown = [s for s in chosen if s not in available]
        if not chosen or unknown:
            raise ValueError(f"strides must be feature strides of the backbone "
                             f"{sorted(available)}; got {list(strides or [])}")
        if max(chosen) != backbone.output_stride:
            raise ValueError(f"the coarsest level must be the backbone's output stride "
                             f"{backbone.output_stride} (every stage is used); got {chosen}")
        self.backbone = backbone
        self.num_classes = num_classes
        self.strides = tuple(chosen)
        self.neck = FeaturePyramid({s: available[s] for s in chosen}, channels=channels)
        self.head = CenterHead(channels, num_classes, width=channels)

    def forward(self, x: Tensor) -> dict[int, Tensor]:
        levels = self.neck(self.backbone.features(x))
        return {stride: self.head(levels[stride]) for stride in self.strides}


def assign_level(longer_side: float, strides: Sequence[int]) -> int:
    """The pyramid level of an object whose longer side is ``longer_side`` pixels."""
    ordered = sorted(strides)
    fitting = [s for s in ordered if s <= LEVEL_SCALE * longer_side]
    return fitting[-1] if fitting else ordered[0]


def encode_targets(boxes: Sequence[Tensor], labels: Sequence[Tensor], *, strides: Sequence[int],
                   image_size: tuple[int, int], num_classes: int
                   ) -> dict[int, tuple[Tensor, Tensor, Tensor]]:
    """Per level: heatmap ``(N, K, H_s, W_s)``, regression ``(N, 4, H_s, W_s)`` and a centre mask
    ``(N, H_s, W_s)`` (bool) for a batch of ``boxes[i]`` (k_i, 4) and ``labels[i]`` (k_i,).

    ``H_s = ceil(H / s)``: the size every stride-``s`` layer of the backbone produces."""
    height, width = image_size
    out: dict[int, tuple[Tensor, Tensor, Tensor]] = {}
    for stride in strides:
        h, w = math.ceil(height / stride), math.ceil(width / stride)
        n = len(boxes)
        out[stride] = (torch.zeros(n, num_classes, h, w), torch.zeros(n, REGRESSION_CHANNELS, h, w),
                       torch.zeros(n, h, w, dtype=torch.bool))
    rows_cache = {s: torch.arange(out[s][0].shape[-2], dtype=torch.float32) for s in strides}
    cols_cache = {s: torch.arange(out[s][0].shape[-1], dtype=torch.float32) for s in strides}
    for index, (image_boxes, image_labels) in enumerate(zip(boxes, labels, strict=True)):
        for box, label in zip(image_boxes.tolist(), image_labels.tolist(), strict=True):
            x1, y1, x2, y2 = box
            bw, bh = max(x2 - x1, 1e-3), max(y2 - y1, 1e-3)
            stride = assign_level(max(bw, bh), strides)
            heatmap, regression, mask = out[stride]
            cx, cy = (x1 + x2) / 2 / stride, (y1 + y2) / 2 / stride
            col = min(int(cx), heatmap.shape[-1] - 1)
            row = min(int(cy), heatmap.shape[-2] - 1)
            sigma = max(0.5, max(bw, bh) / (6.0 * stride))
            gauss = torch.exp(-((rows_cache[stride] - row)[:, None] ** 2
                                + (cols_cache[stride] - col)[None, :] ** 2) / (2 * sigma ** 2))
            heatmap[index, int(label)] = torch.maximum(heatmap[index, int(label)], gauss)
            regression[index, :, row, col] = torch.tensor(
                [cx - col, cy - row, math.log(bw / stride), math.log(bh / stride)])
            mask[index, row, col] = True
    return out


def centernet_loss(outputs: dict[int, Tensor],
                   targets: dict[int, tuple[Tensor, Tensor, Tensor]]) -> Tensor:
    """Focal loss on the centre heatmaps + L1 on the regression at centres, summed over levels and
    divided by the number of objects (at least 1)."""
    focal = outputs[next(iter(outputs))].new_zeros(())
    regression_loss = focal.clone()
    objects = 0
    for stride, raw in outputs.items():
        heatmap, regression, mask = (t.to(raw.device) for t in targets[stride])
        num_classes = heatmap.shape[1]
        logits, predicted = raw[:, :num_classes], raw[:, num_classes:]
        probability = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
        positive = heatmap.eq(1.0)
        positive_term = (1 - probability) ** FOCAL_ALPHA * torch.log(probability)
        negative_term = ((1 - heatmap) ** FOCAL_BETA * probability ** FOCAL_ALPHA
                         * torch.log(1 - probability))
        focal = focal - torch.where(positive, positive_term, negative_term).sum()
        centres = mask.unsqueeze(1).expand_as(predicted)
        regression_loss = regression_loss + (predicted - regression).abs()[centres].sum()
        objects += int(mask.sum())
    return (focal + regression_loss) / max(objects, 1)


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """Pairwise IoU of (n, 4) and (m, 4) xyxy boxes -> (n, m)."""
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(dim=2)
    union = area_a[:, None] + area_b[None, :] - inter
    return inter / union.clamp(min=1e-9)


def box_nms(boxes: Tensor, scores: Tensor, labels: Tensor, iou_threshold: float = 0.5) -> Tensor:
    """Indices kept by greedy per-class NMS, best score first: a box is dropped when it overlaps a
    kept box of the same class with IoU > ``iou_threshold``."""
    order = torch.argsort(scores, descending=True)
    keep: list[int] = []
    if order.numel() == 0:
        return torch.zeros(0, dtype=torch.int64)
    overlaps = box_iou(boxes, boxes)
    suppressed = torch.zeros(len(boxes), dtype=torch.bool)
    for index in order.tolist():
        if suppressed[index]:
            continue
        keep.append(index)
        suppressed |= (overlaps[index] > iou_threshold) & (labels == labels[index])
    return torch.tensor(keep, dtype=torch.int64)


@torch.no_grad()
def decode_detections(outputs: dict[int, Tensor], *, num_classes: int,
                      image_size: tuple[int, int], top_k: int = 50, max_detections: int = 100,
                      iou_threshold: float = 0.5, score_threshold: float = 0.01
                      ) -> list[Detections]:
    """Boxes, scores and labels per image from raw :class:`CenterNet` outputs (see module doc);
    peaks scoring below ``score_threshold`` are dropped."""
    height, width = image_size
    per_image: list[list[Detections]] = []
    for stride, raw in outputs.items():
        raw = raw.detach().float().cpu()
        n, _, h, w = raw.shape
        heat = torch.sigmoid(raw[:, :num_classes])
        peaks = heat * (F.max_pool2d(heat, 3, stride=1, padding=1) == heat)
        k = min(top_k, num_classes * h * w)
        scores, flat = peaks.view(n, -1).topk(k, dim=1)
        labels = flat // (h * w)
        rows, cols = (flat % (h * w)) // w, flat % w
        for i in range(n):
            reg = raw[i, num_classes:, rows[i], cols[i]]  # (4, k)
            cx = (cols[i].float() + reg[0]) * stride
            cy = (rows[i].float() + reg[1]) * stride
            bw, bh = torch.exp(reg[2].clamp(max=8)) * stride, torch.exp(reg[3].clamp(max=8)) * stride
            boxes = torch.stack([(cx - bw / 2).clamp(0, width), (cy - bh / 2).clamp(0, height),
                                 (cx + bw / 2).clamp(0, width), (cy + bh / 2).clamp(0, height)],
                                dim=1)
            if len(per_image) <= i:
                per_image.append([])
            per_image[i].append((boxes, scores[i], labels[i]))
    results: list[Detections] = []
    for levels in per_image:
        boxes = torch.cat([b for b, _, _ in levels])
        scores = torch.cat([s for _, s, _ in levels])
        labels = torch.cat([c for _, _, c in levels])
        confident = scores >= score_threshold
        boxes, scores, labels = boxes[confident], scores[confident], labels[confident]
        keep = box_nms(boxes, scores, labels, iou_threshold)[:max_detections]
        results.append((boxes[keep], scores[keep], labels[keep]))
    return results
