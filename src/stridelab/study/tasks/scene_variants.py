"""Variants of the scene tasks, named by how they reach their output stride.

The scene backbone (:func:`scene_plan`) is a ResNet with a 3x3/1 stem and five stages of ``n``
basic blocks (``depth = 6n + 2`` as for the CIFAR plan), widths w, 2w, 4w, 4w, 4w and stride 2 in
every stage: feature strides 2, 4, 8, 16, 32 (``features()`` keys 1..32). A variant name is
``os<S>`` followed by optional ``-`` tokens, in any order:

* how the output stride ``S`` (8, 16 or 32) is reached: ``strided`` (default: the stages past
  ``S`` keep stride 1, so their receptive field grows less) or ``dilated`` (DeepLab: those strides
  become dilation, same weights and receptive field, more compute); at ``S = 32`` both are the plain
  backbone;
* how every stride is taken: the stride-2 conv (default), ``maxpool``, ``avgpool`` or ``blurpool``;
* segment only, how the logits go back to full resolution: ``bilinear`` (default), ``transposed``
  (a bilinear-initialised transposed conv) or ``skip`` (a skip-connected decoder);
* detect only: ``fpn`` alone names the feature-pyramid detector: the full backbone (S = 32) with
  heads on strides 8, 16 and 32; ``os<S>`` is one head at stride ``S``.

Examples: ``os8-dilated-bilinear``, ``os32-strided-transposed``, ``os16-skip``, ``os32-maxpool``,
``fpn``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from torch import nn

from stridelab.nn import ResNet, Stage, StridePlan

OUTPUT_STRIDES = (8, 16, 32)
REACH = ("strided", "dilated")
POOLS = {"maxpool": "maxpool", "avgpool": "avgpool", "blurpool": "blurpool"}
UPSAMPLES = ("bilinear", "transposed", "skip")
PYRAMID_STRIDES = (8, 16, 32)
SCENE_TASKS = ("classify", "segment", "detect")
NAME = re.compile(r"^os(\d+)((?:-[a-z]+)*)$")


@dataclass(frozen=True)
class SceneVariant:
    """A named backbone plan plus the task head it gets (``head``: classifier / upsampling mode /
    detection levels)."""

    name: str
    task: str
    plan: StridePlan
    head: str
    levels: tuple[int, ...] = ()
    source: str = "built-in"
    neck_channels: int = 32  # skip decoder / pyramid width (2 x the backbone's width)

    @property
    def output_stride(self) -> int:
        return self.plan.resolved_stages()[-1].effective_stride

    @property
    def head_kind(self) -> str:
        """``bilinear`` / ``transposed`` / ``skip`` (segment), ``centernet@8/16/32`` (detect),
        ``multilabel`` (classify)."""
        if self.task == "detect":
            return "centernet@" + "/".join(map(str, self.levels))
        return self.head

    def describe(self) -> str:
        reach = "dilated" if self.plan.output_stride is not None else "strided"
        text = f"output stride {self.output_stride} ({reach}, downsample {self.plan.downsample})"
        if self.task == "segment":
            text += f", upsampling {self.head}"
        elif self.task == "detect":
            text += f", heads at stride {'/'.join(map(str, self.levels))}"
        return text

    def build(self, *, num_classes: int, in_channels: int) -> nn.Module:
        from stridelab.nn import CenterNet, SegmentationModel

        if self.task == "classify":
            return ResNet(self.plan, num_classes=num_classes, in_channels=in_channels)
        backbone = ResNet(self.plan, num_classes=0, in_channels=in_channels)
        if self.task == "segment":
            return SegmentationModel(backbone, num_classes=num_classes + 1, upsample=self.head,
                                     decoder_channels=self.neck_channels)
        return CenterNet(backbone, num_classes=num_classes, strides=self.levels,
                         channels=self.neck_channels)


def scene_plan(*, depth: int = 8, width: int = 16) -> StridePlan:
    """The scene backbone (module docstring): output stride 32."""
    if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth must be 6n + 2 with n >= 1 (8, 14, 20, ...); got {depth!r}")
    if not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be an int >= 1; got {width!r}")
    n = (depth - 2) // 6
    widths = (width, 2 * width, 4 * width, 4 * width, 4 * width)
    return StridePlan(tuple(Stage(n, w, 2) for w in widths), stem="cifar", stem_width=width,
                      shortcut="B")


def _reach(plan: StridePlan, output_stride: int, how: str) -> StridePlan:
    if how == "dilated":
        return replace(plan, output_stride=output_stride) if output_stride < 32 else plan
    running, stages = 1, []
    for stage in plan.stages:
        stride = stage.stride if running * stage.stride <= output_stride else 1
        running *= stride
        stages.append(replace(stage, stride=stride))
    return replace(plan, stages=tuple(stages))


def allowed_names(task: str) -> str:
    extra = {"segment": "[-bilinear|-transposed|-skip]", "detect": "; or fpn"}.get(task, "")
    return f"os8|os16|os32 [-strided|-dilated] [-maxpool|-avgpool|-blurpool] {extra}".strip()


def parse_scene_variant(name: str, task: str, *, depth: int = 8, width: int = 16) -> SceneVariant:
    """The variant called ``name`` for ``task`` (grammar in the module docstring)."""
    base = scene_plan(depth=depth, width=width)
    neck = 2 * width
    if task == "detect" and name == "fpn":
        return SceneVariant(name, task, base, "centernet", PYRAMID_STRIDES, neck_channels=neck)
    match = NAME.match(name)
    problem = None
    if not match or int(match.group(1)) not in OUTPUT_STRIDES:
        problem = "unknown name"
    tokens = [t for t in (match.group(2).split("-") if match else []) if t]
    chosen: dict[str, str] = {}
    for token in tokens:
        kind = ("reach" if token in REACH else "downsample" if token in POOLS
                else "upsampling" if token in UPSAMPLES and task == "segment" else None)
        if kind is None:
            problem = problem or f"unknown part {token!r}"
        elif kind in chosen:
            problem = problem or f"repeated or conflicting {kind} ({chosen[kind]!r}, {token!r})"
        else:
            chosen[kind] = token
    if problem or match is None:
        raise ValueError(f"variant {name!r} for --task {task}: {problem}; names are "
                         f"{allowed_names(task)}")
    reach = chosen.get("reach", "strided")
    pool = POOLS.get(chosen.get("downsample", ""), "stride")
    upsample = chosen.get("upsampling", "bilinear")
    output_stride = int(match.group(1))
    plan = _reach(replace(base, downsample=pool), output_stride, reach)
    if task == "segment":
        return SceneVariant(name, task, plan, upsample, neck_channels=neck)
    if task == "detect":
        return SceneVariant(name, task, plan, "centernet", (output_stride,), neck_channels=neck)
    return SceneVariant(name, task, plan, "multilabel")


def is_scene_variant_name(name: str) -> bool:
    return name == "fpn" or bool(NAME.match(name))


DEFAULT_SCENE_VARIANTS = {
    "classify": "os32-strided,os32-maxpool,os8-dilated",
    "segment": "os8-dilated-bilinear,os32-strided-bilinear,os32-skip",
    "detect": "os8-dilated,os32-strided,fpn",
}
