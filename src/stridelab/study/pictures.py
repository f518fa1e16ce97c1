"""One picture per scene task: test images with the predictions of a low- and a high-stride variant.

The two variants are the finest and the coarsest output stride among the task's single-path
variants (no skip decoder, no pyramid), loaded from the final checkpoint of the first seed. The
images are the test scenes with the most digits, small ones first (deterministic). Columns: input
with the ground truth, then each variant's prediction (masks coloured by class, boxes with class
and score, or the per-class presence probabilities).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch

from stridelab.study.plots import _png
from stridelab.study.runs import atomic_write_bytes, latest_checkpoint
from stridelab.study.tasks.scene_data import SceneSplits

ROWS = 2
SCORE_THRESHOLD = 0.3
CLASS_COLORS = plt.get_cmap("tab10")


def pick_images(data: SceneSplits, count: int = ROWS) -> list[int]:
    """Test images with the most small objects, then the most objects (ties: lowest index)."""
    test = data.test

    def key(index: int) -> tuple[int, int, int]:
        small = sum(test.size_bucket(box) == "small" for box in test.boxes[index])
        return (-min(small, 2), -len(test.boxes[index]), index)
    return sorted(range(len(test)), key=key)[:count]


def _pair(variants: list[Any], entries: list[dict[str, Any]]) -> list[tuple[Any, dict[str, Any]]]:
    from stridelab.study.claims import stride_pair

    found = stride_pair(entries)
    if found is None:
        return []
    by_name = {v.name: v for v in variants}
    return [(by_name[e["name"]], e) for e in found]


def _load(config: Any, task: str, variant: Any, data: SceneSplits,
          device: torch.device) -> torch.nn.Module | None:
    from stridelab.study.runner import variant_dir

    found = latest_checkpoint(variant_dir(config, task, variant.name, config.seed))
    if found is None:
        return None
    model = variant.build(num_classes=data.num_classes, in_channels=data.in_channels)
    model.load_state_dict(torch.load(found[1], map_location="cpu", weights_only=False)["model"])
    loaded: torch.nn.Module = model.to(device).eval()
    return loaded


def _show(axes: Any, image: np.ndarray, title: str) -> None:
    axes.imshow(image[0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axes.set_title(title, fontsize=8)
    axes.set_xticks([])
    axes.set_yticks([])


def _overlay(axes: Any, mask: np.ndarray) -> None:
    colours = np.zeros((*mask.shape, 4))
    for cls in np.unique(mask):
        if cls > 0:
            colours[mask == cls] = (*CLASS_COLORS(int(cls - 1) % 10)[:3], 0.55)
    axes.imshow(colours, interpolation="nearest")


def _boxes(axes: Any, boxes: np.ndarray, labels: np.ndarray, scores: np.ndarray | None,
           names: tuple[str, ...]) -> None:
    from matplotlib.patches import Rectangle

    for index, (box, label) in enumerate(zip(boxes, labels, strict=True)):
        colour = CLASS_COLORS(int(label) % 10)
        x0, y0, x1, y1 = (float(v) for v in box)
        axes.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False,
                                 edgecolor=colour, linewidth=1.2))
        text = names[int(label)] + (f" {scores[index]:.2f}" if scores is not None else "")
        axes.text(x0 - 0.5, y0 - 1, text, color=colour, fontsize=6, va="bottom")


def _stride_of(entry: dict[str, Any]) -> int:
    return int(max(entry["static"]["effective_stride"]))


def render_task_picture(task: str, data: SceneSplits, models: list[tuple[str, torch.nn.Module]],
                        objective: Any, device: torch.device) -> bytes:
    """PNG: ``ROWS`` test images x (ground truth + one column per model)."""
    indices = pick_images(data)
    images = data.test_x[indices]
    figure, grid = plt.subplots(len(indices), 1 + len(models),
                                figsize=(2.6 * (1 + len(models)), 2.7 * len(indices)),
                                squeeze=False)
    names = data.classes
    predictions = []
    for _, model in models:
        if task == "segment":
            predictions.append(objective.predict_masks(model, images, device))
        elif task == "detect":
            predictions.append(objective.detections(model, images, device))
        else:
            predictions.append(objective.scores(model, images, device))
    for row, index in enumerate(indices):
        image = data.test.images[index]
        truth = ", ".join(sorted({names[int(c)] for c in data.test.labels[index]}))
        _show(grid[row, 0], image, f"ground truth: {truth}")
        if task == "segment":
            _overlay(grid[row, 0], data.test.masks[index])
        elif task == "detect":
            _boxes(grid[row, 0], data.test.boxes[index], data.test.labels[index], None, names)
        for column, ((title, _), predicted) in enumerate(zip(models, predictions, strict=True),
                                                         start=1):
            axes = grid[row, column]
            if task == "segment":
                _show(axes, image, title)
                _overlay(axes, predicted[row])
            elif task == "detect":
                boxes, scores, labels = predicted[row]
                keep = scores >= SCORE_THRESHOLD
                _show(axes, image, f"{title}\nboxes with score >= {SCORE_THRESHOLD}")
                _boxes(axes, boxes[keep], labels[keep], scores[keep], names)
            else:
                present = set(int(c) for c in data.test.labels[index])
                colours = ["C2" if c in present else "C7" for c in range(len(names))]
                axes.bar(range(len(names)), predicted[row], color=colours)
                axes.set_xticks(range(len(names)), names, fontsize=7)
                axes.set_ylim(0, 1)
                axes.axhline(0.5, color="grey", linewidth=0.8, linestyle="--")
                axes.set_title(f"{title}\nP(class present); green = present", fontsize=8)
    return _png(figure)


def write_pictures(config: Any, data: SceneSplits, plan: dict[str, list[Any]],
                   results: dict[str, Any], device: torch.device) -> list[str]:
    """Write ``pictures_<task>.png`` into the run folder for every task with a stride pair;
    returns the file names written."""
    from stridelab.study.runner import task_objective

    written = []
    cache: dict[Any, Any] = {}
    for task, variants in plan.items():
        entries = [e for e in results["variants"] if e.get("task") == task]
        models = []
        for variant, entry in _pair(variants, entries):
            model = _load(config, task, variant, data, device)
            if model is not None:
                models.append((f"{variant.name} (output stride {_stride_of(entry)})", model))
        if len(models) < 2:
            continue
        objective = task_objective(task, _pair(variants, entries)[0][0], data, cache)
        name = f"pictures_{task}.png"
        atomic_write_bytes(Path(config.run_dir) / name,
                           render_task_picture(task, data, models, objective, device))
        written.append(name)
    return written
