"""Chains of layers: a small layer description, a text syntax for it, and size/field tracing.

Layer spec syntax (used by ``stridelab size --layers``), comma separated::

    c7s2p3      conv, kernel 7, stride 2, padding 3
    m3s2p1      max pool (a = avg pool); add 'ceil' for ceil_mode: m3s2ceil
    t4s2p1o1    transposed conv with output_padding 1
    c3s2psame   padding 'same' (also psame_lower, pvalid, p1:2 for before:after)
    c3d2p2      dilation 2

Missing fields default to stride 1 (pools: stride = kernel), padding 0, dilation 1.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from stridelab.arith._check import PaddingPair, PaddingSpec, check_int, per_axis
from stridelab.arith.field import ReceptiveField
from stridelab.arith.sizes import (
    check_convention,
    conv_output_size,
    dropped_pixels,
    padding_pairs,
    pool_output_size,
    spatial_ndim,
    transposed_output_size,
)

LAYER_KINDS = ("conv", "maxpool", "avgpool", "transposed")
_KIND_CODES = {"c": "conv", "m": "maxpool", "a": "avgpool", "t": "transposed"}
_SPEC = re.compile(
    r"^(?P<kind>[cmat])(?P<kernel>\d+)(?:s(?P<stride>\d+))?"
    r"(?:p(?P<padding>same_lower|samelower|same|valid|\d+:\d+|\d+))?"
    r"(?:d(?P<dilation>\d+))?(?:o(?P<output_padding>\d+))?(?P<ceil>ceil)?$"
)


@dataclass(frozen=True)
class Layer:
    """One sliding-window layer. ``stride=None`` on pools means stride = kernel."""

    kind: str = "conv"
    kernel: int | tuple[int, ...] = 1
    stride: int | tuple[int, ...] | None = 1
    padding: PaddingSpec = 0
    dilation: int | tuple[int, ...] = 1
    ceil_mode: bool = False
    output_padding: int | tuple[int, ...] = 0
    convention: str = "torch"  # pools: "torch" (padding <= kernel // 2) or "onnx" (any padding)

    def __post_init__(self) -> None:
        if self.kind not in LAYER_KINDS:
            raise ValueError(f"kind must be one of {LAYER_KINDS}, got {self.kind!r}")
        check_convention(self.convention)
        if self.ceil_mode and self.kind not in ("maxpool", "avgpool"):
            raise ValueError("ceil_mode applies only to kind 'maxpool' or 'avgpool'")

    @property
    def effective_stride_arg(self) -> int | tuple[int, ...]:
        if self.stride is None:
            return self.kernel if self.kind in ("maxpool", "avgpool") else 1
        return self.stride


@dataclass(frozen=True)
class Step:
    """One row of a traced chain: sizes, resolved padding, dropped pixels and the field so far."""

    layer: Layer
    input_size: tuple[int, ...]
    output_size: tuple[int, ...]
    padding: tuple[PaddingPair, ...]
    dropped: tuple[int, ...]
    field: ReceptiveField


def parse_layer(spec: str) -> Layer:
    """Parse one layer spec such as ``c7s2p3`` (see the module docstring)."""
    match = _SPEC.match(spec.strip().lower())
    if match is None:
        raise ValueError(
            f"layer spec {spec!r} is not of the form <c|m|a|t><kernel>[s<stride>][p<pad>|psame|"
            f"psame_lower|pvalid|p<before>:<after>][d<dilation>][o<output_padding>][ceil], e.g. c7s2p3"
        )
    kind = _KIND_CODES[match["kind"]]
    padding: PaddingSpec = 0
    if match["padding"]:
        text = match["padding"]
        if text.isdigit():
            padding = int(text)
        elif ":" in text:
            before, after = text.split(":")
            padding = (int(before), int(after))
        else:
            padding = "same_lower" if text in ("same_lower", "samelower") else text
    stride: int | None = int(match["stride"]) if match["stride"] else None
    if stride is None and kind in ("conv", "transposed"):
        stride = 1
    return Layer(
        kind=kind, kernel=int(match["kernel"]), stride=stride, padding=padding,
        dilation=int(match["dilation"] or 1), ceil_mode=bool(match["ceil"]),
        output_padding=int(match["output_padding"] or 0),
    )


def parse_layers(text: str) -> list[Layer]:
    """Parse a comma-separated chain such as ``"c7s2p3,m3s2p1"``."""
    specs = [part for part in text.split(",") if part.strip()]
    if not specs:
        raise ValueError("layers must name at least one layer, e.g. 'c7s2p3,m3s2p1'")
    return [parse_layer(part) for part in specs]


def _as_layer(item: object) -> Layer:
    if isinstance(item, Layer):
        return item
    if isinstance(item, str):
        return parse_layer(item)
    if isinstance(item, dict):
        return Layer(**item)
    if isinstance(item, (tuple, list)) and 1 <= len(item) <= 4:
        return Layer("conv", *item)
    raise TypeError(f"a layer must be a Layer, a spec string, a dict or (kernel, stride, padding, "
                    f"dilation); got {item!r}")


def trace(input_size: int | Sequence[int], layers: Iterable[object]) -> list[Step]:
    """Apply ``layers`` to ``input_size`` one by one: output size, padding, dropped pixels, field."""
    ndim = spatial_ndim(input_size)
    size = per_axis("input_size", input_size, ndim, 1)
    field = ReceptiveField.identity(ndim)
    steps: list[Step] = []
    for position, item in enumerate(layers):
        layer = _as_layer(item)
        try:
            steps.append(_step(layer, size, field))
        except (ValueError, TypeError) as err:
            raise type(err)(f"layer {position + 1} ({layer.kind}): {err}") from None
        size, field = steps[-1].output_size, steps[-1].field
    if not steps:
        raise ValueError("layers must contain at least one layer")
    return steps


def _step(layer: Layer, size: tuple[int, ...], field: ReceptiveField) -> Step:
    ndim = len(size)
    stride = layer.effective_stride_arg
    kernel = per_axis("kernel", layer.kernel, ndim, 1)
    strides = per_axis("stride", stride, ndim, 1)
    dilation = per_axis("dilation", layer.dilation, ndim, 1)
    if layer.kind == "transposed":
        out = transposed_output_size(size, kernel, strides, layer.padding, dilation,
                                     per_axis("output_padding", layer.output_padding, ndim, 0))
        pads = padding_pairs(0 if isinstance(layer.padding, str) else layer.padding,
                             size, kernel, strides, dilation)
        dropped = (0,) * ndim
        new_field = field.then(kernel, strides, pads, dilation, transposed=True)
    else:
        pads = padding_pairs(layer.padding, size, kernel, strides, dilation)
        if layer.kind == "conv":
            out = conv_output_size(size, kernel, strides, pads, dilation)
        else:
            out = pool_output_size(size, kernel, strides, pads, dilation, layer.ceil_mode,
                                   layer.convention)
        dropped_out = dropped_pixels(size, kernel, strides, pads, dilation,
                                     layer.kind != "conv" and layer.ceil_mode)
        dropped = dropped_out if isinstance(dropped_out, tuple) else (dropped_out,)
        new_field = field.then(kernel, strides, pads, dilation)
    out_t = out if isinstance(out, tuple) else (out,)
    return Step(layer, size, out_t, pads, dropped, new_field)


def receptive_field(layers: Iterable[object], input_size: int | Sequence[int] | None = None,
                    ndim: int = 1) -> ReceptiveField:
    """Receptive field of the last layer of a chain (Distill 2019 recurrences, layer by layer).

    Layers are :class:`Layer` objects, spec strings (``"c3s2p1"``), dicts of Layer fields, or
    ``(kernel, stride, padding, dilation)`` tuples. ``input_size`` is needed only for
    size-dependent padding strings ('same' with stride > 1).
    """
    if input_size is not None:
        return trace(input_size, layers)[-1].field
    check_int("ndim", ndim, 1)
    field = ReceptiveField.identity(ndim)
    for item in layers:
        layer = _as_layer(item)
        field = field.then(layer.kernel, layer.effective_stride_arg,
                           layer.padding, layer.dilation, transposed=layer.kind == "transposed")
    return field
