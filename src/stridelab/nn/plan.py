"""StridePlan: where a ResNet reduces resolution, described as data (no torch needed here).

A plan is a stem followed by stages; each stage is ``blocks`` residual blocks of output width
``width * expansion`` (expansion 1 for basic blocks, 4 for bottlenecks), the first of which has
``stride``. Sizes are computed with :mod:`stridelab.arith` only, mirroring the layers
:class:`stridelab.nn.ResNet` builds, so ``plan.output_sizes(i)`` equals the model's real shapes.

``output_stride`` (DeepLab, Chen et al. 2017): once the running product of strides would exceed it,
a stage's stride is replaced by dilation (its dilation is multiplied by that stride); the first
block of such a stage keeps the previous dilation, as in torchvision's ``replace_stride_with_dilation``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stridelab.arith import conv_output_size, pool_output_size, same_padding

STEMS = ("imagenet", "deep", "space_to_depth", "cifar")
BLOCKS = ("basic", "bottleneck")
STRIDE_ON = ("3x3", "1x1")
SHORTCUTS = ("A", "B", "D")
DOWNSAMPLES = ("stride", "maxpool", "avgpool", "blurpool", "space_to_depth")
PADDINGS = ("symmetric", "same", "same_lower")
STEM_STRIDE = {"imagenet": 4, "deep": 4, "space_to_depth": 4, "cifar": 1}
EXPANSION = {"basic": 1, "bottleneck": 4}
BLUR_FILTER_SIZE = 3
SPACE_TO_DEPTH_STEM_BLOCK = 4

Size2 = tuple[int, int]


def _check_int(field: str, value: object, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{field} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{field} must be an int >= {minimum}, got {value}")
    return value


def _check_choice(field: str, value: object, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ValueError(f"{field} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return str(value)


@dataclass(frozen=True)
class Stage:
    """``blocks`` residual blocks of width ``width``; the first has ``stride`` (any int >= 1)."""

    blocks: int
    width: int
    stride: int = 1
    dilation: int = 1

    def __post_init__(self) -> None:
        for name in ("blocks", "width", "stride", "dilation"):
            _check_int(f"Stage.{name}", getattr(self, name), 1)


@dataclass(frozen=True)
class ResolvedStage:
    """A stage after ``output_stride``: the stride actually used and the dilations per block."""

    blocks: int
    width: int
    stride: int
    first_dilation: int
    dilation: int
    effective_stride: int


def conv_padding(style: str, kernel: int, dilation: int = 1) -> int | str:
    """Padding spec of a ``kernel`` conv: torch's symmetric ``d * (k - 1) // 2`` or a 'same' string."""
    return dilation * (kernel - 1) // 2 if style == "symmetric" else style


def strided_kernel(block: str, stride_on: str) -> int:
    """Kernel of the conv that carries a block's stride (3x3, or the first 1x1 of a bottleneck)."""
    return 1 if block == "bottleneck" and stride_on == "1x1" else 3


def reduce_size(size: Size2, stride: int, downsample: str) -> Size2:
    """Size after the pooling that replaces a stride in ``downsample`` pool modes."""
    if downsample == "blurpool":
        before, after = same_padding(None, BLUR_FILTER_SIZE, 1)
        assert isinstance(before, int) and isinstance(after, int)
        out = conv_output_size(size, BLUR_FILTER_SIZE, stride, ((before, after),) * 2)
    else:  # maxpool / avgpool: kernel = stride, 'same' padding
        out = pool_output_size(size, stride, stride, "same")
    assert isinstance(out, tuple)
    return (out[0], out[1])


def block_output_size(size: Size2, *, block: str, stride: int, dilation: int, stride_on: str,
                      downsample: str, padding: str) -> Size2:
    """Spatial size after one block's main path (the shortcut is built to match it)."""
    kernels = (3, 3) if block == "basic" else (1, 3, 1)
    strided_index = kernels.index(strided_kernel(block, stride_on))
    for index, kernel in enumerate(kernels):
        d = dilation if kernel == 3 else 1
        carries = index == strided_index and stride > 1
        conv_stride = stride if carries and downsample in ("stride", "space_to_depth") else 1
        out = conv_output_size(size, kernel, conv_stride, conv_padding(padding, kernel, d), d)
        assert isinstance(out, tuple)
        size = (out[0], out[1])
        if carries and conv_stride == 1:
            size = reduce_size(size, stride, downsample)
    return size


@dataclass(frozen=True)
class StridePlan:
    """Stem + stages of a ResNet; validated on construction (ValueError naming the field).

    ``padding`` (an extension): ``"symmetric"`` is torch's ``d * (k - 1) // 2``; ``"same"`` /
    ``"same_lower"`` use TF / ONNX 'SAME' padding in every conv and the stem's max pool.
    """

    stages: tuple[Stage, ...]
    stem: str = "imagenet"
    stem_width: int = 64
    block: str = "basic"
    stride_on: str = "3x3"
    shortcut: str = "B"
    downsample: str = "stride"
    groups: int = 1
    width_per_group: int = 64
    output_stride: int | None = None
    padding: str = "symmetric"

    def __post_init__(self) -> None:
        stages = self.stages
        if not isinstance(stages, (tuple, list)) or len(stages) == 0:
            raise ValueError(f"StridePlan.stages must be a non-empty tuple of Stage, got {stages!r}")
        converted = []
        for index, stage in enumerate(stages):
            if isinstance(stage, Stage):
                converted.append(stage)
            elif isinstance(stage, Mapping):
                converted.append(_stage_from_dict(stage, index))
            elif isinstance(stage, (tuple, list)) and 2 <= len(stage) <= 4:
                converted.append(Stage(*stage))
            else:
                raise ValueError(f"StridePlan.stages[{index}] must be a Stage, got {stage!r}")
        object.__setattr__(self, "stages", tuple(converted))
        self._check()

    # -- validation -----------------------------------------------------------------------------
    def _check(self) -> None:
        _check_choice("StridePlan.stem", self.stem, STEMS)
        _check_int("StridePlan.stem_width", self.stem_width, 2 if self.stem == "deep" else 1)
        _check_choice("StridePlan.block", self.block, BLOCKS)
        _check_choice("StridePlan.stride_on", self.stride_on, STRIDE_ON)
        _check_choice("StridePlan.shortcut", self.shortcut, SHORTCUTS)
        _check_choice("StridePlan.downsample", self.downsample, DOWNSAMPLES)
        _check_choice("StridePlan.padding", self.padding, PADDINGS)
        _check_int("StridePlan.groups", self.groups, 1)
        _check_int("StridePlan.width_per_group", self.width_per_group, 1)
        if self.block == "basic":
            if self.stride_on != "3x3":
                raise ValueError("StridePlan.stride_on='1x1' needs block='bottleneck' (a basic "
                                 "block has only 3x3 convs); use stride_on='3x3'")
            if self.groups != 1 or self.width_per_group != 64:
                raise ValueError("StridePlan.groups / width_per_group apply only to "
                                 "block='bottleneck'; basic blocks need groups=1, width_per_group=64")
        if self.output_stride is not None:
            _check_int("StridePlan.output_stride", self.output_stride, 1)
        resolved = self.resolved_stages()
        if self.output_stride is not None and resolved[-1].effective_stride != self.output_stride:
            raise ValueError(
                f"StridePlan.output_stride={self.output_stride} is not reachable: the running "
                f"strides of this plan are {self.reachable_output_strides()}")
        if self.shortcut == "A":
            in_ch = self.stem_width
            for index, stage in enumerate(resolved):
                out_ch = stage.width * EXPANSION[self.block]
                if out_ch < in_ch or (stage.stride == 1 and out_ch != in_ch):
                    raise ValueError(
                        f"StridePlan.shortcut='A' (subsample + zero channels) needs stride > 1 "
                        f"and a width that does not shrink wherever the width changes; stage "
                        f"{index} goes {in_ch} -> {out_ch} channels with stride {stage.stride}")
                in_ch = out_ch

    def validate(self, input_size: int | Sequence[int] | None = None) -> StridePlan:
        """Check the plan (and that ``input_size`` is large enough for it); return ``self``."""
        self._check()
        if input_size is not None:
            size = _spatial(input_size)
            need = self.resolved_stages()[-1].effective_stride
            if min(size) < need:
                raise ValueError(f"input_size {size} is too small for this plan: every spatial "
                                 f"axis must be >= its output stride {need}")
            self.output_sizes(size)
        return self

    # -- derived quantities ---------------------------------------------------------------------
    @property
    def stem_stride(self) -> int:
        return STEM_STRIDE[self.stem]

    @property
    def expansion(self) -> int:
        return EXPANSION[self.block]

    @property
    def out_channels(self) -> int:
        return self.stages[-1].width * self.expansion

    def reachable_output_strides(self) -> list[int]:
        running = [self.stem_stride]
        for stage in self.stages:
            running.append(running[-1] * stage.stride)
        return sorted(set(running))

    def resolved_stages(self) -> list[ResolvedStage]:
        """Stages with strides replaced by dilation where ``output_stride`` asks for it."""
        total, multiplier, out = self.stem_stride, 1, []
        for stage in self.stages:
            previous = multiplier
            stride = stage.stride
            if self.output_stride is not None and total * stride > self.output_stride:
                multiplier *= stride
                stride = 1
            total *= stride
            out.append(ResolvedStage(stage.blocks, stage.width, stride, stage.dilation * previous,
                                     stage.dilation * multiplier, total))
        return out

    def stem_output_size(self, size: Size2) -> Size2:
        """Spatial size after the stem (conv(s), then the max pool where there is one)."""
        pad = self.padding
        if self.stem == "imagenet":
            steps = [(7, 2)]
        elif self.stem == "deep":
            steps = [(3, 2), (3, 1), (3, 1)]
        else:
            steps = [(3, 1)]
        if self.stem == "space_to_depth":
            block = SPACE_TO_DEPTH_STEM_BLOCK
            pairs = same_padding(size, (block, block), (block, block))
            ends = tuple((0, p[0] + p[1]) for p in pairs if isinstance(p, tuple))
            size = _pair(conv_output_size(size, block, block, ends))
        for kernel, stride in steps:
            size = _pair(conv_output_size(size, kernel, stride, conv_padding(pad, kernel)))
        if self.stem in ("imagenet", "deep"):
            size = _pair(pool_output_size(size, 3, 2, conv_padding(pad, 3)))
        return size

    def output_sizes(self, input_size: int | Sequence[int]) -> list[tuple[int, int, int]]:
        """``(C, H, W)`` after the stem and after each stage, for an input of ``input_size``
        (an int, ``(H, W)`` or ``(C, H, W)``), computed with :mod:`stridelab.arith`."""
        size = self.stem_output_size(_spatial(input_size))
        sizes = [(self.stem_width, *size)]
        for stage in self.resolved_stages():
            for index in range(stage.blocks):
                size = block_output_size(
                    size, block=self.block, stride=stage.stride if index == 0 else 1,
                    dilation=stage.first_dilation if index == 0 else stage.dilation,
                    stride_on=self.stride_on, downsample=self.downsample, padding=self.padding)
            sizes.append((stage.width * self.expansion, *size))
        return sizes

    # -- serialisation --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict; :meth:`from_dict` inverts it."""
        data = dataclasses.asdict(self)
        data["stages"] = [dataclasses.asdict(stage) for stage in self.stages]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StridePlan:
        if not isinstance(data, Mapping):
            raise TypeError(f"StridePlan.from_dict needs a dict, got {type(data).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ValueError(f"StridePlan has no field(s) {unknown}; fields are {names}")
        if "stages" not in data:
            raise ValueError("StridePlan.stages is required")
        stages = data["stages"]
        if not isinstance(stages, (list, tuple)):
            raise ValueError(f"StridePlan.stages must be a list of stage dicts, got {stages!r}")
        fields = dict(data)
        fields["stages"] = tuple(
            _stage_from_dict(s, i) if isinstance(s, Mapping) else s for i, s in enumerate(stages))
        return cls(**fields)


def _stage_from_dict(data: Mapping[str, Any], index: int) -> Stage:
    names = [f.name for f in dataclasses.fields(Stage)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(f"StridePlan.stages[{index}] has no field(s) {unknown}; fields are {names}")
    missing = [n for n in ("blocks", "width") if n not in data]
    if missing:
        raise ValueError(f"StridePlan.stages[{index}] is missing {missing}")
    return Stage(**data)


def _pair(value: int | tuple[int, ...]) -> Size2:
    assert isinstance(value, tuple)
    return (value[0], value[1])


def _spatial(input_size: int | Sequence[int]) -> Size2:
    """``(H, W)`` from an int, ``(H, W)`` or ``(C, H, W)``."""
    if isinstance(input_size, int) and not isinstance(input_size, bool):
        values: tuple[Any, ...] = (input_size, input_size)
    elif isinstance(input_size, (tuple, list)) and len(input_size) in (2, 3):
        values = tuple(input_size[-2:])
    else:
        raise ValueError(f"input_size must be an int, (H, W) or (C, H, W); got {input_size!r}")
    h = _check_int("input_size", values[0], 1)
    w = _check_int("input_size", values[1], 1)
    return (h, w)
