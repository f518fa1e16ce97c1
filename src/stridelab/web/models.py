"""The model page's answers: a model by spec at an input size, its inspector table (foldable by
depth), diagnostics, size pyramid, and the receptive field of a clicked unit.

Everything comes from :func:`stridelab.inspect` (the :class:`~stridelab.inspect.Report`, its
rows and fields, Distill 2019 recurrences of :mod:`stridelab.arith`) and
:func:`stridelab.viz.pyramid.pyramid_stages`. Reports are cached per (spec, input size).

Models load through :func:`stridelab.inspect.load_model` (random weights, on the meta device for
the table). Safety: :class:`ModelSource` passes ``allow_code=False`` for specs typed in the page,
so only built-in and registry names (``timm:`` / ``torchvision:``) load; ``file.py:attr`` and
``package.module:attr`` run user code and are accepted only when given on the command line
(``stridelab explore --model SPEC``), by exact match. The effective-field heatmap plugs in at
:func:`effective_field_map` (``stridelab.effective_field``).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from stridelab.web import params

#: Largest spatial side the model page accepts, and how many reports the cache keeps.
MAX_SIDE = 2048
CACHE_SIZE = 8
#: Neighbouring units shown around a clicked one: (2 * RADIUS + 1) per axis.
NEIGHBOUR_RADIUS = 2

_lock = threading.Lock()
_reports: OrderedDict[tuple[str, tuple[int, ...]], Any] = OrderedDict()
_models: dict[str, Any] = {}


class ModelSource:
    """Which specs this server may load: built-ins, registries, and the command line's own."""

    def __init__(self, command_line_spec: str | None = None) -> None:
        self.command_line_spec = command_line_spec

    def names(self) -> list[str]:
        from stridelab.nn.presets import presets
        names = list(presets)
        if self.command_line_spec and self.command_line_spec not in names:
            names.insert(0, self.command_line_spec)
        return names

    def load(self, spec: str, *, meta: bool) -> Any:
        """The ``nn.Module`` for ``spec`` (ParamError ``model-spec`` when it is not allowed)."""
        allow_code = spec == self.command_line_spec
        return _build(spec, allow_code=allow_code, meta=meta)


def _build(spec: str, *, allow_code: bool, meta: bool) -> Any:
    """``stridelab.inspect.load_model`` (random weights), on the meta device when ``meta``."""
    import torch

    from stridelab.inspect import load_model

    if ":" in spec and not allow_code and not re.match(r"^(timm|torchvision):[\w.\-]+$", spec):
        raise params.ParamError("model-spec", f"{spec!r} would run user code: file.py:attr and "
                                "package.module:attr are accepted from the command line only "
                                "(stridelab explore --model SPEC)")

    def make() -> Any:
        return load_model(spec, allow_code=allow_code).model

    try:
        if meta:  # shapes only: no weights to initialise, so large models build instantly
            try:
                with torch.device("meta"):
                    return make()
            except (RuntimeError, NotImplementedError):
                pass
        return make()
    except (ValueError, TypeError, KeyError, ImportError, OSError) as err:
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise params.ParamError("model-spec", message.strip("'\"")) from None


def read_input_size(query: Mapping[str, str]) -> tuple[int, ...]:
    """``3x224x224`` (channels, height, width) or ``224`` / ``224x160`` (3 channels)."""
    raw = params.text(query, "input", "3x224x224")
    parts = raw.lower().replace(" ", "").split("x")
    if not all(re.fullmatch(r"\d+", p) for p in parts) or not 1 <= len(parts) <= 3:
        raise params.ParamError("input", f"must be CxHxW (e.g. 3x224x224) or HxW, got {raw!r}")
    values = [int(p) for p in parts]
    if len(values) == 1:
        values = [3, values[0], values[0]]
    elif len(values) == 2:
        values = [3, *values]
    if not 1 <= values[0] <= 64 or any(not 1 <= v <= MAX_SIDE for v in values[1:]):
        raise params.ParamError("input", f"channels must be 1..64 and sides 1..{MAX_SIDE}, got "
                                         f"{raw!r}")
    return tuple(values)


def warm_up() -> None:
    """Import torch and run one small capture, so the first model a user asks for does not pay
    for torch.fx's and the FLOP counter's first use (seconds). Not cached under any spec."""
    from stridelab.inspect import inspect
    from stridelab.nn.presets import presets

    with _lock:
        inspect(presets["cifar_resnet20"](), (3, 32, 32))


def report_for(source: ModelSource, spec: str, input_size: tuple[int, ...]) -> Any:
    """The inspect Report of ``spec`` at ``input_size`` (cached; one capture at a time)."""
    from stridelab.inspect import inspect

    key = (spec, input_size)
    with _lock:
        if key in _reports:
            _reports.move_to_end(key)
            return _reports[key]
        model = source.load(spec, meta=True)
        try:
            report = inspect(model, input_size)
        except (ValueError, TypeError, RuntimeError) as err:
            message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise params.ParamError("input", message) from None
        _reports[key] = report
        while len(_reports) > CACHE_SIZE:
            _reports.popitem(last=False)
        return report


def _table(report: Any) -> dict[str, Any]:
    """Rows at every fold depth (``"1"``, ``"2"``, ... and ``"all"``) from inspect's renderer."""
    from stridelab.inspect.render import human, rows

    deepest = max(record.depth for record in report.layers)
    depths: dict[str, list[dict[str, Any]]] = {}
    for depth in [*range(1, deepest + 1), None]:
        depths["all" if depth is None else str(depth)] = [
            {"name": row.name, "op": row.op, "output": row.output, "window": row.window,
             "stride": row.stride, "rf_size": row.size, "rf_pad": row.pad,
             "macs": row.macs, "params": row.params,
             "macs_text": human(row.macs) if row.macs else "-",
             "params_text": f"{row.params:,}" if row.params else "-"}
            for row in rows(report, depth)]
    return {"max_depth": deepest, "rows": depths}


def _unit_layers(report: Any) -> list[dict[str, Any]]:
    """Layers with a 2-D feature map (N, C, H, W): the ones a unit can be clicked on."""
    out = []
    for record in report.layers:
        if record.spatial and len(record.output_shape) == 4 and record.receptive_field.ndim == 2:
            out.append({"name": record.name, "output": list(record.output_shape[2:]),
                        "rf_size": _plain(record.receptive_field.size),
                        "effective_stride": _plain(record.receptive_field.stride)})
    return out


def _plain(values: Any) -> Any:
    if isinstance(values, Fraction):
        return float(values)
    if isinstance(values, (tuple, list)):
        return [_plain(v) for v in values]
    return values


def model_answer(source: ModelSource, query: Mapping[str, str]) -> dict[str, Any]:
    """Table, totals, diagnostics, pyramid and clickable layers of one model."""
    from stridelab.inspect.render import human, human_bytes
    from stridelab.viz.pyramid import pyramid_stages

    spec = params.text(query, "model-spec")
    input_size = read_input_size(query)
    report = report_for(source, spec, input_size)
    data = report.to_dict()
    try:
        stages = [{"label": s.label, "channels": s.channels, "height": s.height,
                   "width": s.width} for s in pyramid_stages(report)]
    except ValueError:
        stages = []
    units = _unit_layers(report)
    return {
        "spec": spec, "model": report.model_name, "input_size": list(input_size),
        "capture": report.capture, "table": _table(report),
        "totals": {**data["totals"], "macs_text": human(report.macs),
                   "params_text": f"{report.params:,}",
                   "activation_text": human_bytes(report.activation_bytes)},
        "field": data["field"], "diagnostics": data["diagnostics"], "pyramid": stages,
        "unit_layers": units, "default_layer": _default_layer(units),
        "effective_field": effective_field_available(),
    }


def _default_layer(units: list[dict[str, Any]]) -> str | None:
    """The last layer whose map is at least 14 units wide (units small enough to see)."""
    wide = [u["name"] for u in units if min(u["output"]) >= 14]
    return wide[-1] if wide else (units[-1]["name"] if units else None)


def _nearest(centres: list[Any], value: float) -> int:
    return min(range(len(centres)), key=lambda u: (abs(centres[u] - Fraction(value)), u))


def unit_answer(source: ModelSource, query: Mapping[str, str]) -> dict[str, Any]:
    """The unit of ``layer`` whose field centre is nearest the clicked input pixel ``(x, y)``:
    its field (``field.start`` .. ``field.end``, inclusive, unclipped), the box clipped to the
    image, its centre, and the centres of its neighbours (a (2R+1)^2 grid, clipped to the map)."""
    from stridelab.viz.overlay import overlay_geometry

    spec = params.text(query, "model-spec")
    input_size = read_input_size(query)
    report = report_for(source, spec, input_size)
    layer = params.text(query, "layer")
    names = {u["name"]: u for u in _unit_layers(report)}
    inside = [name for name in names if name.startswith(layer + ".")]
    if layer not in names and inside:  # a module name: its last operator (the stage output)
        layer = inside[-1]
    if layer not in names:
        raise params.ParamError("layer", f"{layer!r} is not a layer with a 2-D feature map of "
                                         f"this model")
    height, width = input_size[1], input_size[2]
    x = params.number(query, "x", 0.0, width)
    y = params.number(query, "y", 0.0, height)
    field = report.field_at(layer)
    out_h, out_w = names[layer]["output"]
    rows = [field.center((u, 0))[0] for u in range(out_h)]
    cols = [field.center((0, v))[1] for v in range(out_w)]
    unit = (_nearest(rows, y), _nearest(cols, x))
    try:
        geometry = overlay_geometry(report, layer, unit, (height, width))
    except ValueError as err:
        raise params.ParamError("layer", str(err)) from None
    r0, r1 = max(unit[0] - NEIGHBOUR_RADIUS, 0), min(unit[0] + NEIGHBOUR_RADIUS, out_h - 1)
    c0, c1 = max(unit[1] - NEIGHBOUR_RADIUS, 0), min(unit[1] + NEIGHBOUR_RADIUS, out_w - 1)
    neighbours = [{"unit": [u, v], "center": [float(rows[u]), float(cols[v])],
                   "pixel": [float(rows[u]) + 0.5, float(cols[v]) + 0.5]}
                  for u in range(r0, r1 + 1) for v in range(c0, c1 + 1)]
    top, left, bottom, right = geometry.box
    (start_r, start_c), (end_r, end_c) = geometry.start, geometry.end
    return {
        "layer": layer, "unit": list(unit), "output_size": [out_h, out_w],
        "start": _plain(list(geometry.start)), "end": _plain(list(geometry.end)),
        "center": [float(rows[unit[0]]), float(cols[unit[1]])],
        "box": _screen_box(top, left, bottom, right),
        "extent": _screen_box(start_r, start_c, end_r, end_c),
        "clipped": geometry.clipped, "field": field.to_dict(), "neighbours": neighbours,
    }


def _screen_box(top: Any, left: Any, bottom: Any, right: Any) -> dict[str, float]:
    """An inclusive pixel range as a drawable rectangle: pixel ``i`` covers ``[i, i + 1)``."""
    return {"top": float(top), "left": float(left), "bottom": float(bottom),
            "right": float(right), "height": float(bottom - top + 1),
            "width": float(right - left + 1)}


def effective_field_available() -> bool:
    import stridelab
    return hasattr(stridelab, "effective_field")


#: Noise inputs averaged for the page's effective field (the library's default is 16).
ERF_SAMPLES = 8


def effective_field_map(model: Any, input_size: tuple[int, ...], layer: str,
                        unit: tuple[int, int], report: Any = None) -> dict[str, Any] | None:
    """Plug point for the effective receptive field (``stridelab.effective_field``, issue erf).

    Returns ``{"map": rows of floats over the input's (H, W), summing to 1, "center", "std"}``,
    or ``None`` when this build has no ``stridelab.effective_field``.
    """
    import stridelab

    effective_field = getattr(stridelab, "effective_field", None)
    if effective_field is None:
        return None
    result = effective_field(model, input_size, layer=layer, unit=unit, samples=ERF_SAMPLES,
                             report=report)
    return {"map": [[float(v) for v in row] for row in result.map],
            "center": _plain(list(result.center)), "std": _plain(list(result.std))}


def erf_answer(source: ModelSource, query: Mapping[str, str]) -> dict[str, Any]:
    """The effective-field heatmap of one unit (404-style ``available: false`` without it)."""
    if not effective_field_available():
        return {"available": False, "reason": "stridelab.effective_field is not in this build"}
    spec = params.text(query, "model-spec")
    input_size = read_input_size(query)
    layer = params.text(query, "layer")
    row = params.integer(query, "row", 0, 0, MAX_SIDE)
    col = params.integer(query, "col", 0, 0, MAX_SIDE)
    report = report_for(source, spec, input_size)
    with _lock:
        if spec not in _models:
            _models.clear()  # one real model at a time (weights cost memory)
            _models[spec] = source.load(spec, meta=False)
        model = _models[spec]
        try:
            heat = effective_field_map(model, input_size, layer, (row, col), report)
        except (ValueError, TypeError, KeyError) as err:
            message = str(err).strip().splitlines()[0].strip("'\"")
            raise params.ParamError("row" if message.startswith("unit") else "layer",
                                    message) from None
    return {"available": True, **(heat or {})}
