"""Aggregation of per-seed measurements into the study's ``results.json`` structure.

``results["variants"]`` is a list (in the order the user asked for) of::

    {"name", "source", "plan", "feature_sizes": [[C, H, W], ...] (after the stem and each stage),
     "static": {"params", "macs", "activation_bytes", "receptive_field", "effective_stride"},
     "seeds": [per-seed dicts], "summary": {metric: {"mean", "std", "n"}}}

``std`` is the sample standard deviation over seeds (0 for a single seed). Scene runs add per
variant ``"task"`` (classify / segment / detect), ``"head"`` and ``"primary"`` (the metric the
task is ranked by: ``test_accuracy``, ``mAP``, ``mIoU`` or ``AP``); every numeric per-seed value
(the task's metrics included) is summarized.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

SEED_METRICS = ("test_accuracy", "val_accuracy", "consistency", "latency_ms", "throughput",
                "peak_train_bytes", "train_seconds")

METRIC_UNITS = {
    "test_accuracy": "fraction of test images classified correctly (top-1)",
    "val_accuracy": "fraction of validation images classified correctly after the last epoch",
    "consistency": "fraction of test images with the same prediction under two random shifts "
                   "(Zhang 2019)",
    "latency_ms": "milliseconds per forward pass at batch size 1 (median of warm repeats)",
    "throughput": "images per second at batch size 64 (median of warm repeats)",
    "peak_train_bytes": "bytes held by one training step (see memory_method)",
    "train_seconds": "wall-clock seconds of the completed training epochs",
    "mAP": "scenes, classify: mean over digit classes of the average precision of 'class present'",
    "mIoU": "scenes, segment: mean over digit classes of the intersection over union",
    "boundary_F1": "scenes, segment: F1 of predicted vs true class-boundary pixels (see metrics)",
    "IoU_small": "scenes, segment: mean IoU of the small objects (also medium, large)",
    "AP": "scenes, detect: COCO AP@[.5:.95] (pycocotools); AP50 / AP75 at one IoU threshold",
    "AP_small": "scenes, detect: COCO AP of small objects (also medium, large; n/a: none)",
    "macs": "multiply-accumulates per image (FLOPs = 2 x MACs), from stridelab.inspect",
    "params": "trainable and non-trainable parameters, from stridelab.inspect",
    "activation_bytes": "bytes of all layer outputs for one image, from stridelab.inspect",
    "receptive_field": "receptive field of one unit of the last feature map, pixels per axis",
    "effective_stride": "input pixels between neighbouring units of the last feature map, per axis",
}


def mean_std(values: Sequence[float]) -> dict[str, float]:
    """``{"mean", "std", "n"}`` with the sample standard deviation (0 when n == 1)."""
    if not values:
        raise ValueError("mean_std needs at least one value")
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": float(statistics.fmean(values)), "std": float(std), "n": len(values)}


NOT_SUMMARIZED = ("seed", "resumed_from_epoch")


def summarize(seed_results: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """mean / std / n of every number that every seed result has (the task's metrics too)."""
    keys = [k for k, v in seed_results[0].items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in NOT_SUMMARIZED
            and all(isinstance(r.get(k), (int, float)) for r in seed_results)]
    return {metric: mean_std([float(r[metric]) for r in seed_results]) for metric in keys}


def pareto_front(points: Sequence[tuple[float, float]]) -> list[bool]:
    """For (cost, accuracy) points: True where no other point is at most as costly and at least
    as accurate while strictly better in one of the two."""
    flags = []
    for i, (cost, acc) in enumerate(points):
        dominated = any(
            (c <= cost and a >= acc) and (c < cost or a > acc)
            for j, (c, a) in enumerate(points) if j != i
        )
        flags.append(not dominated)
    return flags


def mark_pareto(results: dict[str, Any]) -> None:
    """Set ``variant["pareto"]`` (primary metric vs MACs, among the variants of the same task) on
    every variant of ``results`` in place."""
    by_task: dict[str, list[dict[str, Any]]] = {}
    for variant in results["variants"]:
        by_task.setdefault(variant.get("task", "classify"), []).append(variant)
    for variants in by_task.values():
        points = [(float(v["static"]["macs"]),
                   float(v["summary"][v.get("primary", "test_accuracy")]["mean"]))
                  for v in variants]
        for variant, flag in zip(variants, pareto_front(points), strict=True):
            variant["pareto"] = flag
