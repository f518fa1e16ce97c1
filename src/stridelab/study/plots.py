"""The report's PNG plots (matplotlib, Agg backend), each rendered from ``results`` to bytes."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

DPI = 110


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=DPI)
    plt.close(figure)
    return buffer.getvalue()


def _mean(variant: dict[str, Any], metric: str, scale: float = 1.0) -> tuple[float, float]:
    stat = variant["summary"][metric]
    return stat["mean"] * scale, stat["std"] * scale


def accuracy_vs_macs(results: dict[str, Any], metric: str = "test_accuracy",
                     label: str = "test top-1 accuracy (%)",
                     title: str = "Accuracy vs compute") -> bytes:
    """``metric`` (%; test accuracy by default) against MACs per image (log axis); the Pareto
    front is a line of stars."""
    figure, axes = plt.subplots(figsize=(6, 4.2))
    front = []
    for index, variant in enumerate(results["variants"]):
        macs = float(variant["static"]["macs"])
        acc, std = _mean(variant, metric, 100)
        on_front = bool(variant.get("pareto"))
        axes.errorbar(macs, acc, yerr=std, fmt="*" if on_front else "o",
                      markersize=12 if on_front else 7, capsize=3)
        axes.annotate(variant["name"], (macs, acc), textcoords="offset points",
                      xytext=(6, 4 - 10 * (index % 3)), fontsize=8)
        if on_front:
            front.append((macs, acc))
    if len(front) > 1:
        xs, ys = zip(*sorted(front), strict=True)
        axes.plot(xs, ys, "--", color="grey", linewidth=1, label="Pareto front")
        axes.legend(loc="lower right", fontsize=8)
    axes.set_xscale("log")
    axes.set_xlabel("MACs per image (log scale)")
    axes.set_ylabel(label)
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    return _png(figure)


def consistency_vs_stride(results: dict[str, Any]) -> bytes:
    """Shift-consistency (%) against the final effective stride (log2 axis)."""
    return metric_vs_stride(results, "consistency", "shift-consistency (%)",
                            "Translation consistency (Zhang 2019)")


def metric_vs_stride(results: dict[str, Any], metric: str, label: str, title: str) -> bytes:
    """``metric`` (%) of every variant against its output stride (log2 axis)."""
    figure, axes = plt.subplots(figsize=(6, 4.2))
    same_stride: dict[float, int] = {}
    for variant in results["variants"]:
        stride = float(max(variant["static"]["effective_stride"]))
        same_stride[stride] = same_stride.get(stride, 0) + 1
    placed: dict[float, int] = {}
    for variant in results["variants"]:
        stride = float(max(variant["static"]["effective_stride"]))
        # Variants with the same stride are spread a little sideways so none hides another.
        rank = placed.get(stride, 0)
        placed[stride] = rank + 1
        x = stride * 2 ** (0.12 * (rank - (same_stride[stride] - 1) / 2))
        cons, std = _mean(variant, metric, 100)
        axes.errorbar(x, cons, yerr=std, fmt="o", markersize=7, capsize=3)
        axes.annotate(variant["name"], (x, cons), textcoords="offset points",
                      xytext=(6, 4 - 10 * (rank % 2)), fontsize=8)
    axes.set_xscale("log", base=2)
    axes.set_xlabel("effective stride of the last feature map (log2 scale)")
    axes.set_ylabel(label)
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    return _png(figure)


def latency(results: dict[str, Any]) -> bytes:
    """Median batch-1 latency (ms) per variant, bars with std over seeds."""
    figure, axes = plt.subplots(figsize=(6, 4.2))
    names = [v["name"] for v in results["variants"]]
    stats = [_mean(v, "latency_ms") for v in results["variants"]]
    positions = list(range(len(names)))
    axes.bar(positions, [m for m, _ in stats], yerr=[s for _, s in stats], capsize=3,
             color=[f"C{i % 10}" for i in positions])
    axes.set_xticks(positions, names, rotation=30, ha="right", fontsize=8)
    axes.set_ylabel("latency at batch 1 (ms, median)")
    axes.set_title(f"Inference latency ({results['device']})")
    axes.grid(True, axis="y", alpha=0.3)
    return _png(figure)


def feature_maps(results: dict[str, Any]) -> bytes:
    """Spatial size (height, log2 axis) after the stem and each stage; variants with identical
    sizes share one line (labelled with all their names) so none hides behind another."""
    figure, axes = plt.subplots(figsize=(6, 4.2))
    groups: dict[tuple[int, ...], list[str]] = {}
    for variant in results["variants"]:
        heights = tuple(int(h) for _, h, _ in variant["feature_sizes"])
        groups.setdefault(heights, []).append(variant["name"])
    longest = 0
    every_height: set[int] = set()
    for index, (heights, names) in enumerate(groups.items()):
        longest = max(longest, len(heights))
        every_height.update(heights)
        axes.plot(range(len(heights)), heights, marker="o", label=", ".join(names),
                  color=f"C{index % 10}", linewidth=2)
    axes.set_yscale("log", base=2)
    axes.set_yticks(sorted(every_height), [str(h) for h in sorted(every_height)])
    axes.minorticks_off()
    axes.set_xticks(range(longest), ["stem"] + [f"stage {i}" for i in range(1, longest)])
    axes.set_ylabel("feature-map height (pixels, log2 scale)")
    axes.set_title("Feature-map sizes per stage")
    axes.legend(fontsize=7)
    axes.grid(True, alpha=0.3)
    return _png(figure)


PLOTTERS: dict[str, Callable[[dict[str, Any]], bytes]] = {
    "accuracy_vs_macs.png": accuracy_vs_macs,
    "consistency_vs_stride.png": consistency_vs_stride,
    "latency.png": latency,
    "feature_maps.png": feature_maps,
}
