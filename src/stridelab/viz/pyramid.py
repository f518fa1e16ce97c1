"""Size pyramid: feature-map size and channels per stage of a network, as a PNG (matplotlib, Agg).

    >>> from stridelab.nn import imagenet_plan
    >>> from stridelab.viz import size_pyramid
    >>> size_pyramid(imagenet_plan(50), "pyramid.png")  # doctest: +SKIP

Stages come from a :class:`stridelab.nn.StridePlan` (``plan.output_sizes``: ``(C, H, W)`` after
the stem and after each stage, computed with :mod:`stridelab.arith`) or from an inspect
:class:`~stridelab.inspect.Report` (one stage per run of layers with the same spatial output
size, in execution order, labelled by the top-level modules it spans, e.g. ``maxpool..layer1``).
matplotlib is imported when a picture is drawn, with the object-oriented Agg canvas (no pyplot,
no global backend change).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_INPUT_SIZE = 224


@dataclass(frozen=True)
class PyramidStage:
    """One bar of the pyramid: a label, ``channels`` and the spatial ``(height, width)``."""

    label: str
    channels: int
    height: int
    width: int


def _plan_stages(plan: Any, input_size: int | Sequence[int]) -> list[PyramidStage]:
    sizes = plan.output_sizes(input_size)
    labels = ["stem"] + [f"layer{n}" for n in range(1, len(sizes))]
    return [PyramidStage(label, c, h, w) for label, (c, h, w) in zip(labels, sizes)]


def _report_stages(report: Any) -> list[PyramidStage]:
    stages: list[PyramidStage] = []
    firsts: list[str] = []  # top-level module of the first layer of each run
    for record in report.layers:
        shape = tuple(record.output_shape)
        if len(shape) != 4:  # (N, C, H, W) only: flatten / linear have no feature map
            continue
        _, channels, height, width = shape
        module = record.name.split(".")[0].split("#")[0]
        if stages and (stages[-1].height, stages[-1].width) == (height, width):
            first = firsts[-1]  # same run: the stage ends at this layer
            label = first if first == module else f"{first}..{module}"
            stages[-1] = PyramidStage(label, channels, height, width)
        else:
            firsts.append(module)
            stages.append(PyramidStage(module, channels, height, width))
    if not stages:
        raise ValueError("plan_or_report: the report has no layer with a 2-D feature map "
                         "(output shape N x C x H x W)")
    return stages


def pyramid_stages(plan_or_report: Any,
                   input_size: int | Sequence[int] | None = None) -> list[PyramidStage]:
    """The stages :func:`size_pyramid` draws (see the module docstring).

    ``plan_or_report``: a ``StridePlan``, a model with a ``.plan`` (``stridelab.nn.ResNet``) or
    an inspect ``Report``. ``input_size`` (plans only; an int, ``(H, W)`` or ``(C, H, W)``,
    default 224): a Report already has its input size, and a different one is a ValueError.
    """
    from stridelab.inspect import Report
    from stridelab.nn import StridePlan

    plan = getattr(plan_or_report, "plan", plan_or_report)
    if isinstance(plan, StridePlan):
        return _plan_stages(plan, DEFAULT_INPUT_SIZE if input_size is None else input_size)
    if isinstance(plan_or_report, Report):
        if input_size is not None:
            given = (input_size,) if isinstance(input_size, int) else tuple(input_size)
            if given not in (plan_or_report.input_size, plan_or_report.input_size[1:]):
                raise ValueError(f"input_size {input_size!r} differs from the report's input "
                                 f"size {plan_or_report.input_size}; omit it for a Report")
        return _report_stages(plan_or_report)
    raise TypeError(f"plan_or_report must be a stridelab.nn.StridePlan, a ResNet or a "
                    f"stridelab.inspect Report, got {type(plan_or_report).__name__}")


def _title(plan_or_report: Any, input_size: int | Sequence[int] | None) -> str:
    from stridelab.inspect import Report

    if isinstance(plan_or_report, Report):
        size = "x".join(map(str, plan_or_report.input_size))
        return f"{plan_or_report.model_name}: feature maps per stage, input {size}"
    plan = getattr(plan_or_report, "plan", plan_or_report)
    given = DEFAULT_INPUT_SIZE if input_size is None else input_size
    size = "x".join(map(str, (given, given) if isinstance(given, int) else given))
    return f"{plan.block} ResNet plan, stem {plan.stem}: feature maps per stage, input {size}"


def draw_pyramid(stages: Sequence[PyramidStage], title: str) -> Any:
    """A matplotlib ``Figure``: top, one square per stage scaled to its height x width (colour
    = channels); bottom, channels per stage on a log-2 axis."""
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle
    from matplotlib.ticker import FuncFormatter

    fig = Figure(figsize=(max(6.0, 1.35 * len(stages) + 1.5), 5.6), dpi=100)
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, gridspec_kw={"height_ratios": [1.6, 1.0]})
    largest = max(max(s.height, s.width) for s in stages)
    colours = colormaps["viridis"]
    log_c = [math.log2(max(s.channels, 1)) for s in stages]
    lo, hi = min(log_c), max(log_c)
    for n, stage in enumerate(stages):
        side_w = 0.9 * stage.width / largest
        side_h = 0.9 * stage.height / largest
        shade = 0.15 + 0.7 * ((log_c[n] - lo) / (hi - lo) if hi > lo else 0.5)
        top.add_patch(Rectangle((n - side_w / 2, 0.0), side_w, side_h, facecolor=colours(shade),
                                edgecolor="black", linewidth=0.8))
        top.text(n, side_h + 0.04, f"{stage.height}x{stage.width}", ha="center", va="bottom",
                 fontsize=10)
    top.set_xlim(-0.6, len(stages) - 0.4)
    top.set_ylim(0.0, 1.12)
    top.set_aspect("equal")
    top.set_xticks(range(len(stages)), [s.label for s in stages])
    top.set_yticks([])
    for side in ("left", "right", "top"):
        top.spines[side].set_visible(False)
    fig.suptitle(title, fontsize=11)
    top.set_xlabel("square = feature map, height x width to scale; colour = channels",
                   fontsize=8, color="0.35")
    bars = bottom.bar(range(len(stages)), [s.channels for s in stages],
                      color=[colours(0.15 + 0.7 * ((c - lo) / (hi - lo) if hi > lo else 0.5))
                             for c in log_c], edgecolor="black", linewidth=0.6)
    bottom.set_yscale("log", base=2)
    bottom.bar_label(bars, labels=[str(s.channels) for s in stages], fontsize=9, padding=2)
    bottom.set_xticks(range(len(stages)), [s.label for s in stages])
    bottom.set_xlim(-0.6, len(stages) - 0.4)
    bottom.set_ylim(min(s.channels for s in stages) / 2, max(s.channels for s in stages) * 3)
    bottom.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
    bottom.set_ylabel("channels (log scale)")
    for side in ("right", "top"):
        bottom.spines[side].set_visible(False)
    fig.tight_layout()
    return fig


def size_pyramid(plan_or_report: Any, path: str | os.PathLike[str], *,
                 input_size: int | Sequence[int] | None = None) -> Path:
    """Write a PNG of feature-map size (to scale) and channels per stage; returns the path.

    ``plan_or_report``: a :class:`stridelab.nn.StridePlan` (or a ``ResNet``, via its ``.plan``)
    drawn at ``input_size`` (default 224; an int, ``(H, W)`` or ``(C, H, W)``), or an inspect
    ``Report`` (its own input size). The file is written atomically (temp file + rename).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path (str or os.PathLike), got "
                        f"{type(path).__name__}")
    stages = pyramid_stages(plan_or_report, input_size)
    fig = draw_pyramid(stages, _title(plan_or_report, input_size))
    from stridelab.viz.animate import atomic_save

    target = Path(path)
    atomic_save(target, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    return target


__all__ = ["DEFAULT_INPUT_SIZE", "PyramidStage", "draw_pyramid", "pyramid_stages",
           "size_pyramid"]
