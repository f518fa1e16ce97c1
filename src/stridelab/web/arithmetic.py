"""The arithmetic page's answers: one layer (sizes, formula, grid and animation frames, code) and
a chain of layers (sizes, effective stride and receptive field per layer).

Every number is computed by :mod:`stridelab.arith` (sizes, padding, dropped and unread pixels,
receptive fields, the written-out formula) and every cell of the grid by
:func:`stridelab.viz.geometry.animation_frames`; this module only collects them into JSON. The
page's JavaScript draws what it gets and computes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stridelab import arith
from stridelab.arith import PaddingPair, PaddingSpec
from stridelab.viz.geometry import MAX_SIDE, FramePlan, animation_frames, conv_spec
from stridelab.web import params
from stridelab.web.codegen import LayerCode, export_code

#: Layers a chain may hold, and frames one answer may carry (beyond: sizes only, no grid).
MAX_CHAIN = 64
MAX_FRAMES = 4096
KINDS = {"conv": "conv", "pool": "maxpool", "transposed": "transposed"}


@dataclass(frozen=True)
class LayerQuery:
    """The arithmetic page's controls, validated; one value per spatial axis."""

    input_size: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: PaddingSpec
    mode: str
    ceil_mode: bool
    output_padding: tuple[int, ...]

    @property
    def ndim(self) -> int:
        return len(self.input_size)


def read_layer_query(query: Mapping[str, str]) -> LayerQuery:
    """Parse and cross-check the controls (ParamError names the control at fault)."""
    size = params.sizes(query, "input-size")
    ndim = len(size)
    mode = params.choice(query, "mode", params.MODES, "conv")
    kernel = params.per_axis("kernel", params.sizes(query, "kernel", default="3"), ndim)
    stride_default = "x".join(map(str, kernel)) if mode == "pool" else "1"
    stride = params.per_axis("stride", params.sizes(query, "stride", default=stride_default), ndim)
    dilation = params.per_axis("dilation", params.sizes(query, "dilation", default="1"), ndim)
    padding = params.padding(query, ndim)
    ceil_mode = params.flag(query, "ceil")
    output_padding = params.per_axis(
        "output-padding", params.sizes(query, "output-padding", default="0", minimum=0), ndim)
    if ceil_mode and mode != "pool":
        raise params.ParamError("ceil", "ceil mode applies only to mode 'pool'")
    if any(output_padding) and mode != "transposed":
        raise params.ParamError("output-padding", "applies only to mode 'transposed' (set it to 0)")
    if mode == "transposed" and isinstance(padding, str) and padding != "valid":
        raise params.ParamError("padding", "a transposed convolution takes numeric padding here "
                                           "(the padding of the convolution it transposes)")
    return LayerQuery(size, kernel, stride, dilation, padding, mode, ceil_mode, output_padding)


def _layer(q: LayerQuery) -> arith.Layer:
    return arith.Layer(kind=KINDS[q.mode], kernel=q.kernel, stride=q.stride, padding=q.padding,
                       dilation=q.dilation, ceil_mode=q.ceil_mode, output_padding=q.output_padding)


def _ceil_extra(q: LayerQuery, pads: tuple[PaddingPair, ...],
                out: tuple[int, ...]) -> tuple[int, ...]:
    """Per axis, the extra padding *after* that makes floor mode give ``out`` windows.

    A ceil-mode pool's last window may hang past the padded input; drawing it (and exporting it
    to frameworks without ceil mode) is the same as padding the end by this much. Found by asking
    ``arith.conv_output_size`` for the smallest such amount, not by a formula of its own.
    """
    extra = []
    for axis in range(q.ndim):
        (pb, pa), found = pads[axis], 0
        for more in range(q.stride[axis]):
            try:
                got = arith.conv_output_size(q.input_size[axis], q.kernel[axis], q.stride[axis],
                                             ((pb, pa + more),), q.dilation[axis])
            except ValueError:
                continue
            if got == out[axis]:
                found = more
                break
        extra.append(found)
    return tuple(extra)


def _as_2d(values: tuple[int, ...], fill: int) -> tuple[int, int]:
    return (fill, values[0]) if len(values) == 1 else (values[0], values[1])


def _pads_2d(pads: tuple[PaddingPair, ...]) -> tuple[PaddingPair, PaddingPair]:
    return ((0, 0), pads[0]) if len(pads) == 1 else (pads[0], pads[1])


def _cells(cells: Any) -> list[list[int]]:
    return sorted([int(r), int(c)] for r, c in cells)


def _plan_json(plan: FramePlan, hanging: set[tuple[int, int]]) -> dict[str, Any]:
    return {
        "input_rows": [plan.input_rows.start, plan.input_rows.stop],
        "input_cols": [plan.input_cols.start, plan.input_cols.stop],
        "output_rows": [plan.output_rows.start, plan.output_rows.stop],
        "output_cols": [plan.output_cols.start, plan.output_cols.stop],
        "input_padding": _cells(plan.input_padding - hanging),
        "input_hanging": _cells(hanging),
        "output_cropped": _cells(plan.output_cropped),
        "dropped": _cells(plan.dropped),
        "unread": _cells(plan.unread - plan.dropped),
        "unwritten": _cells(plan.unwritten),
        "frames": [{"input": [list(c) for c in f.input_cells],
                    "output": [list(c) for c in f.output_cells]} for f in plan.frames],
    }


def _reach_padding(q: LayerQuery, pads: tuple[PaddingPair, ...], out: tuple[int, ...]
                   ) -> tuple[PaddingPair, ...]:
    """The padding whose floor-mode windows are the layer's windows (ceil mode: grown after)."""
    if not q.ceil_mode:
        return pads
    extra = _ceil_extra(q, pads, out)
    return tuple((pb, pa + e) for (pb, pa), e in zip(pads, extra))


def _grid(q: LayerQuery, pads: tuple[PaddingPair, ...], grown: tuple[PaddingPair, ...]
          ) -> tuple[dict[str, Any] | None, str]:
    """Frames and special cells (drawn as a 1xW grid in 1-D), or None and why not.

    ``pads`` is the layer's padding, ``grown`` the padding its windows reach (ceil mode).
    """
    if max(q.input_size) > MAX_SIDE:
        return None, f"The grid is drawn for inputs up to {MAX_SIDE} per side."
    try:
        spec = conv_spec(_as_2d(q.input_size, 1), _as_2d(q.kernel, 1), _as_2d(q.stride, 1),
                         _pads_2d(grown), _as_2d(q.dilation, 1),
                         transposed=q.mode == "transposed",
                         output_padding=_as_2d(q.output_padding, 0))
    except ValueError as err:
        return None, f"The grid is not drawn: {err}."
    plan = animation_frames(spec)
    if len(plan.frames) > MAX_FRAMES:
        return None, f"The grid is drawn for up to {MAX_FRAMES} steps."
    (h, w), ((pt, pbot), (pl, pr)) = spec.input_size, _pads_2d(pads)
    hanging = {c for c in plan.input_padding
               if c[0] >= h + pbot or c[1] >= w + pr or c[0] < -pt or c[1] < -pl}
    return _plan_json(plan, hanging), ""


def _unread(q: LayerQuery, pads: tuple[PaddingPair, ...]) -> list[list[int]]:
    """Per axis, every real input index no tap reads (arith.uncovered_pixels)."""
    if q.mode == "transposed":
        return [[] for _ in range(q.ndim)]
    return [arith.uncovered_pixels(q.input_size[a], q.kernel[a], q.stride[a], (pads[a],),
                                   q.dilation[a]) for a in range(q.ndim)]


def layer_answer(query: Mapping[str, str]) -> dict[str, Any]:
    """Everything the arithmetic page shows for one layer (see the module docstring)."""
    q = read_layer_query(query)
    try:
        step = arith.trace(q.input_size, [_layer(q)])[0]
        formula = arith.explain(q.input_size, q.kernel, q.stride, q.padding, q.dilation,
                                kind=q.mode, ceil_mode=q.ceil_mode,
                                output_padding=q.output_padding)
        reach = _reach_padding(q, step.padding, step.output_size)
        dropped = step.dropped
        if q.ceil_mode:  # the hanging last window reads pixels the floor rule would drop
            counted = arith.dropped_pixels(q.input_size, q.kernel, q.stride, reach, q.dilation)
            dropped = counted if isinstance(counted, tuple) else (counted,)
        unread = _unread(q, reach)
    except (ValueError, TypeError) as err:
        raise params.from_arith(err) from None
    grid, grid_note = _grid(q, step.padding, reach)
    code = export_code(LayerCode(q.mode, q.input_size, q.kernel, q.stride, q.dilation,
                                 q.padding, step.padding, reach, q.ceil_mode, q.output_padding,
                                 step.output_size))
    field = step.field.to_dict()
    return {
        "ndim": q.ndim, "mode": q.mode, "input_size": list(q.input_size),
        "kernel": list(q.kernel), "stride": list(q.stride), "dilation": list(q.dilation),
        "output_size": list(step.output_size),
        "padding": [list(p) for p in step.padding], "dropped": list(dropped),
        "unread": unread, "formula": formula,
        "receptive_field": field, "grid": grid, "grid_note": grid_note, "code": code,
    }


def chain_answer(query: Mapping[str, str]) -> dict[str, Any]:
    """Sizes, padding, dropped pixels, effective stride and receptive field per layer."""
    size = params.sizes(query, "chain-input", default="224")
    raw = params.text(query, "layers")
    names = [part.strip() for part in raw.split(",") if part.strip()]
    if not names:
        raise params.ParamError("layers", "must name at least one layer, e.g. c7s2p3,m3s2p1")
    if len(names) > MAX_CHAIN:
        raise params.ParamError("layers", f"at most {MAX_CHAIN} layers, got {len(names)}")
    try:
        layers = [arith.parse_layer(name) for name in names]
        steps = arith.trace(size, layers)
    except (ValueError, TypeError) as err:
        message = str(err).strip().splitlines()[0]
        raise params.ParamError("layers", message) from None
    rows = []
    for name, step in zip(names, steps):
        field = step.field.to_dict()
        rows.append({
            "name": name, "kind": step.layer.kind, "input": list(step.input_size),
            "output": list(step.output_size), "padding": [list(p) for p in step.padding],
            "dropped": list(step.dropped), "receptive_field": field["size"],
            "effective_stride": field["stride"], "effective_padding": field["padding"],
            "controls": _controls(step),
        })
    return {"input_size": list(size), "layers": rows}


def _axes_text(values: tuple[int, ...] | list[int]) -> str:
    return "x".join(str(v) for v in values)


def _controls(step: arith.Step) -> dict[str, str]:
    """The arithmetic page's control values that show this chain layer on its own."""
    layer = step.layer
    mode = {"conv": "conv", "transposed": "transposed"}.get(layer.kind, "pool")
    ndim = len(step.input_size)

    def axes(value: int | tuple[int, ...]) -> str:
        return _axes_text(params.per_axis("x", (value,) if isinstance(value, int) else value, ndim))

    pads = "x".join(f"{b},{a}" if b != a else str(b) for b, a in step.padding)
    padding = layer.padding if isinstance(layer.padding, str) and mode != "transposed" else pads
    return {"input-size": _axes_text(step.input_size), "kernel": axes(layer.kernel),
            "stride": axes(layer.effective_stride_arg), "dilation": axes(layer.dilation),
            "padding": str(padding), "mode": mode, "ceil": "1" if layer.ceil_mode else "0",
            "output-padding": axes(layer.output_padding)}
