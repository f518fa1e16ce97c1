"""Plots of a scene study (classify / segment / detect on ``scenes`` or ``coco:PATH``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import matplotlib.pyplot as plt

from stridelab.study.plots import _png, accuracy_vs_macs, latency, metric_vs_stride

TASK_METRIC_LABELS = {"classify": ("mAP", "test mAP (%)"), "segment": ("mIoU", "test mIoU (%)"),
                      "detect": ("AP", "test AP@[.5:.95] (%)")}
DETAIL_SERIES = (("segment", "boundary_F1", "segment: boundary F1"),
                 ("segment", "IoU_small", "segment: IoU of small digits"),
                 ("detect", "AP_small", "detect: AP small"),
                 ("detect", "AP", "detect: AP (all sizes)"))


def task_view(results: dict[str, Any], task: str) -> dict[str, Any]:
    """``results`` restricted to the variants of one task (shallow copy)."""
    return {**results, "variants": [v for v in results["variants"]
                                    if v.get("task", "classify") == task]}


def _finite(value: float) -> bool:
    return not (math.isnan(value) or math.isinf(value))


def _stride(variant: dict[str, Any]) -> int:
    return int(max(variant["static"]["effective_stride"]))


def single_path(variants: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Variants read out from one feature map (no skip decoder, no pyramid), by output stride."""
    kept = [v for v in variants if v.get("head_kind") != "skip" and "/" not in v.get("head_kind", "")]
    return sorted(kept, key=_stride)


def detail_vs_stride(results: dict[str, Any]) -> bytes:
    """Small-object and boundary metrics (%) of the single-path segment / detect variants against
    their output stride; the skip decoder and the pyramid as dashed reference lines."""
    figure, axes = plt.subplots(figsize=(6.4, 4.4))
    for index, (task, metric, label) in enumerate(DETAIL_SERIES):
        variants = task_view(results, task)["variants"]
        points = [(_stride(v), 100 * v["summary"][metric]["mean"],
                   100 * v["summary"][metric]["std"]) for v in single_path(variants)
                  if metric in v["summary"] and _finite(v["summary"][metric]["mean"])]
        if not points:
            continue
        xs, ys, errs = zip(*points, strict=True)
        color = f"C{index}"
        axes.errorbar(xs, ys, yerr=errs, marker="o", capsize=3, color=color, label=label)
        for other in variants:
            kind = other.get("head_kind", "")
            if (kind == "skip" or "/" in kind) and metric in other["summary"]:
                value = 100 * other["summary"][metric]["mean"]
                if _finite(value):
                    axes.axhline(value, color=color, linestyle="--", linewidth=1)
                    axes.annotate(f"{other['name']}", (max(xs), value), fontsize=7, color=color,
                                  textcoords="offset points", xytext=(-2, 2), ha="right")
    axes.set_xscale("log", base=2)
    axes.set_xticks([8, 16, 32], ["8", "16", "32"])
    axes.minorticks_off()
    axes.set_xlabel("output stride (pixels per feature; log2 scale)")
    axes.set_ylabel("test metric (%)")
    axes.set_title("Detail lost as the output stride grows\n(dashed: skip decoder / pyramid)",
                   fontsize=10)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=7)
    return _png(figure)


def scene_plotters(results: dict[str, Any]) -> dict[str, Callable[[dict[str, Any]], bytes]]:
    """File name -> plotter for the tasks present in ``results``."""
    tasks = results.get("tasks", [])
    plotters: dict[str, Callable[[dict[str, Any]], bytes]] = {}
    for task in tasks:
        metric, label = TASK_METRIC_LABELS[task]

        def plot(res: dict[str, Any], task: str = task, metric: str = metric,
                 label: str = label) -> bytes:
            return accuracy_vs_macs(task_view(res, task), metric, label,
                                    f"{task}: {metric} vs compute")
        plotters[f"{task}_vs_macs.png"] = plot
    if "segment" in tasks or "detect" in tasks:
        plotters["detail_vs_stride.png"] = detail_vs_stride
    if "classify" in tasks:
        plotters["consistency_vs_stride.png"] = lambda res: metric_vs_stride(
            task_view(res, "classify"), "consistency", "shift-consistency of the label set (%)",
            "classify: translation consistency")
    plotters["latency.png"] = latency
    return plotters


PLOT_TITLES = {
    "classify_vs_macs.png": "classify: mAP vs MACs (Pareto front marked)",
    "segment_vs_macs.png": "segment: mIoU vs MACs (Pareto front marked)",
    "detect_vs_macs.png": "detect: AP vs MACs (Pareto front marked)",
    "detail_vs_stride.png": "Boundary F1 and small-object scores vs output stride",
    "pictures_classify.png": "classify: predictions of a low- and a high-stride variant",
    "pictures_segment.png": "segment: masks of a low- and a high-stride variant",
    "pictures_detect.png": "detect: boxes of a low- and a high-stride variant",
}
