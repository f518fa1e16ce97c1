"""The effective receptive field (Luo, Li, Urtasun and Zemel, "Understanding the Effective Receptive
Field in Deep Convolutional Neural Networks", NeurIPS 2016).

``stridelab.effective_field(model, input_size)`` backpropagates from one output unit (the sum
over its channels: Luo et al.'s "gradient signal of 1 at the centre of the output plane") to the
input, over ``samples`` inputs, and returns :class:`EffectiveField`:

* ``map``: mean over samples of ``sum over input channels |d unit / d x|``, over the input's
  spatial axes, normalised to sum 1 (a distribution over input pixels);
* ``center`` and ``std`` per axis, in input pixels: the mean and standard deviation of the map's
  marginal along that axis (Luo et al. section 2: for ``n`` stacked ``k``-wide all-ones
  convolutions the map is the n-fold convolution of box filters, variance ``n (k^2 - 1) / 12``);
* ``radius(fraction)`` per axis: the half-width ``h`` around the centre whose window
  ``[center - h, center + h]`` holds ``fraction`` of the marginal's mass, each pixel spread
  uniformly over ``[i - 1/2, i + 1/2]`` (so ``h`` is continuous; a single pixel has
  ``radius(0.95) = 0.475``); ``extent(fraction) = 2 * radius(fraction)``;
* ``field``: the theoretical :class:`~stridelab.arith.ReceptiveField` of the layer, ``region``
  the unit's theoretical ``[start, end]`` per axis (Distill 2019), ``clipped`` per axis whether
  the image cuts that region (a unit near the border: its map is cut too).

Inputs: ``"noise"`` draws N(0, 1) (seeded); ``"dataset"`` uses the study's bundled data,
scikit-learn's 8x8 handwritten digits (1,797 real images, no download), standardised to mean 0
and std 1 over the whole set, resized bilinearly to the input size and repeated over the
channels (2-D inputs only); a tensor ``(N, C, *spatial)`` (or ``(C, *spatial)``) is used as given.
The model runs in eval mode with its own weights (batch elements are independent).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from fractions import Fraction
from typing import Any

import numpy as np
import torch

from stridelab.arith import ReceptiveField
from stridelab.inspect.probe import (
    as_map,
    check_device,
    check_unit,
    layer_outputs,
    map_records,
    map_shape,
    row_layouts,
    unit_gradients,
)
from stridelab.inspect.records import LayerRecord, Report

INPUT_KINDS = ("noise", "dataset")
CHUNK = 8


@dataclass(frozen=True)
class EffectiveField:
    """The effective receptive field of one unit; see the module docstring for every quantity.

    Positions are input pixel indices along each spatial axis (0 = first row / column).
    """

    map: np.ndarray
    layer: str
    unit: tuple[int, ...]
    field: ReceptiveField
    region: tuple[tuple[float, float], ...]
    clipped: tuple[bool, ...]
    samples: int
    inputs: str
    model_name: str = ""
    global_context: bool = False
    _marginals: tuple[np.ndarray, ...] = dataclass_field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        total = float(self.map.sum())
        axes = range(self.map.ndim)
        marginals = tuple(
            self.map.sum(axis=tuple(a for a in axes if a != axis)) / total if total > 0
            else np.zeros(self.map.shape[axis]) for axis in axes)
        object.__setattr__(self, "_marginals", marginals)

    @property
    def ndim(self) -> int:
        return int(self.map.ndim)

    @property
    def center(self) -> tuple[float, ...]:
        """Mean position of the map per axis (input pixels)."""
        return tuple(float(np.dot(np.arange(m.size), m)) for m in self._marginals)

    @property
    def std(self) -> tuple[float, ...]:
        """Standard deviation of the map per axis (input pixels)."""
        out = []
        for m, c in zip(self._marginals, self.center):
            out.append(float(math.sqrt(max(np.dot((np.arange(m.size) - c) ** 2, m), 0.0))))
        return tuple(out)

    def radius(self, fraction: float = 0.95) -> tuple[float, ...]:
        """Half-width around ``center`` holding ``fraction`` of the mass, per axis (pixels)."""
        if not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
            raise ValueError(f"fraction must be a number in (0, 1), got {fraction!r}")
        return tuple(_half_width(m, c, float(fraction))
                     for m, c in zip(self._marginals, self.center))

    def extent(self, fraction: float = 0.95) -> tuple[float, ...]:
        """``2 * radius(fraction)``: the width holding ``fraction`` of the mass (pixels)."""
        return tuple(2 * r for r in self.radius(fraction))

    @property
    def ratio(self) -> tuple[float, ...]:
        """95% extent / theoretical field size, per axis (Luo et al.: well below 1)."""
        return tuple(e / float(s) for e, s in zip(self.extent(0.95), self.field.size))

    def summary(self) -> str:
        """Printable lines: layer and unit, centre, std, 68% / 95% extents, theoretical size,
        the ratio, and whether the image clips the unit's field."""
        def fmt(values: Sequence[float], digits: int = 1) -> str:
            return " x ".join(f"{v:.{digits}f}" for v in values)

        size = "x".join(str(s) for s in self.field.size)
        lines = [
            f"effective receptive field of {self.model_name + ' ' if self.model_name else ''}"
            f"{self.layer} unit {','.join(map(str, self.unit))} "
            f"({self.samples} {self.inputs} input(s))",
            f"  centre          {fmt(self.center)} px",
            f"  std             {fmt(self.std)} px",
            f"  68% extent      {fmt(self.extent(0.68))} px",
            f"  95% extent      {fmt(self.extent(0.95))} px",
            f"  theoretical     {size} px (stride {'x'.join(map(str, self.field.stride))})",
            f"  95% / theory    {fmt(self.ratio, 2)}",
        ]
        if any(self.clipped):
            axes = ", ".join(str(a) for a, c in enumerate(self.clipped) if c)
            shape = "x".join(map(str, self.map.shape))
            lines.append(f"  clipped: the {shape} image cuts the unit's theoretical field on "
                         f"axis {axes}; the map (and its statistics) are cut too")
        if self.global_context:
            lines.append("  global context: the layer reads the whole input through a global "
                         "operator; the map is not bounded by the theoretical field")
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self, include_map: bool = False) -> dict[str, object]:
        data: dict[str, object] = {
            "schema": "stridelab.erf", "version": 1, "model": self.model_name,
            "layer": self.layer, "unit": list(self.unit), "inputs": self.inputs,
            "samples": self.samples, "center": list(self.center), "std": list(self.std),
            "radius68": list(self.radius(0.68)), "radius95": list(self.radius(0.95)),
            "extent95": list(self.extent(0.95)), "ratio95": list(self.ratio),
            "field": self.field.to_dict(), "region": [list(r) for r in self.region],
            "clipped": list(self.clipped), "global_context": self.global_context,
            "input_shape": list(self.map.shape),
        }
        if include_map:
            data["map"] = self.map.tolist()
        return data

    def to_json(self, indent: int | None = 2, include_map: bool = False) -> str:
        return json.dumps(self.to_dict(include_map), indent=indent) + "\n"


def _half_width(marginal: np.ndarray, center: float, fraction: float) -> float:
    """Smallest ``h`` with mass(``[center - h, center + h]``) >= ``fraction``, pixel ``i``
    spread uniformly over ``[i - 1/2, i + 1/2]`` (mass(h) is continuous and increasing)."""
    positions = np.arange(marginal.size, dtype=np.float64)

    def mass(h: float) -> float:
        overlap = (np.minimum(positions + 0.5, center + h)
                   - np.maximum(positions - 0.5, center - h))
        return float(np.dot(np.clip(overlap, 0.0, 1.0), marginal))

    low, high = 0.0, float(marginal.size) + abs(center)
    if mass(high) < fraction:
        return high
    for _ in range(60):
        middle = (low + high) / 2
        if mass(middle) >= fraction:
            high = middle
        else:
            low = middle
    return high


# -- inputs -------------------------------------------------------------------------------------
def digits_inputs(count: int, input_size: Sequence[int], seed: int = 0) -> torch.Tensor:
    """``count`` scikit-learn digits (8x8, standardised over the set), bilinearly resized to
    ``input_size[1:]`` and repeated over ``input_size[0]`` channels, picked with ``seed``."""
    if len(input_size) != 3:
        raise ValueError(f"inputs='dataset' needs a 2-D input (C, H, W); got input_size "
                         f"{tuple(input_size)}")
    from sklearn.datasets import load_digits
    images = load_digits().images.astype(np.float32)
    images = (images - images.mean()) / images.std()
    picks = np.random.default_rng(seed).choice(len(images), size=count,
                                               replace=count > len(images))
    batch = torch.from_numpy(images[picks]).unsqueeze(1)
    resized = torch.nn.functional.interpolate(batch, size=tuple(input_size[1:]),
                                              mode="bilinear", align_corners=False)
    return resized.expand(-1, input_size[0], -1, -1).contiguous()


def _inputs(inputs: object, samples: int, input_size: tuple[int, ...], seed: int,
            dtype: torch.dtype) -> tuple[torch.Tensor, str]:
    if isinstance(inputs, torch.Tensor):
        x = inputs.unsqueeze(0) if inputs.ndim == len(input_size) else inputs
        if tuple(x.shape[1:]) != input_size:
            raise ValueError(f"inputs tensor must be (N, {', '.join(map(str, input_size))}) or "
                             f"({', '.join(map(str, input_size))}); got {tuple(inputs.shape)}")
        return x.detach().to(dtype), "given"
    if inputs == "noise":
        generator = torch.Generator().manual_seed(seed)
        return torch.randn((samples, *input_size), generator=generator, dtype=dtype), "noise"
    if inputs == "dataset":
        return digits_inputs(samples, input_size, seed).to(dtype), "dataset"
    raise ValueError(f"inputs must be 'noise', 'dataset' or a tensor, got {inputs!r}")


# -- the measurement ----------------------------------------------------------------------------
def _model_dtype(model: torch.nn.Module) -> torch.dtype:
    for tensor in model.parameters():
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.float32


def _layer(report: Report, layer: object,
           maps: dict[str, tuple[LayerRecord, tuple[int, ...]]]) -> str:
    """The row to measure; ``maps`` (:func:`stridelab.inspect.probe.map_records`) are the rows
    whose output is a map, whatever its layout (channels-last included)."""
    records = [record for record, _ in maps.values()]
    if not records:
        raise ValueError("the model has no layer with a spatial map")
    if layer is None:
        sized = [r for r in records if any(n > 1 for n in map_shape(r, maps[r.name][1]))]
        return (sized or records)[-1].name
    if not isinstance(layer, str):
        raise TypeError(f"layer must be a layer name (str) or None, got {layer!r}")
    names = [r.name for r in report.layers]
    inside = [n for n in names if n.startswith(layer + ".")]
    if layer not in names and inside:
        layer = inside[-1]  # a module's name means its last operator: the module's output
    report.layer(layer)  # KeyError with close names
    if layer not in maps:
        raise ValueError(f"layer {layer!r} has no spatial map (its output is flattened, pooled "
                         f"globally or split into tokens / windows): choose a layer before the "
                         f"head")
    return layer


def _unit(unit: object, shape: tuple[int, ...], layer: str) -> tuple[int, ...]:
    if unit is None:
        return tuple(n // 2 for n in shape)
    return check_unit(unit, shape, layer, f"unit must be a tuple of {len(shape)} ints")


def effective_field(model: torch.nn.Module, input_size: Sequence[int], layer: str | None = None,
                    unit: Sequence[int] | int | None = None, inputs: Any = "noise",
                    samples: int = 16, device: str | torch.device = "cpu", *, seed: int = 0,
                    report: Report | None = None) -> EffectiveField:
    """The effective receptive field of one unit (Luo et al. 2016); see the module docstring.

    ``input_size`` is ``(channels, *spatial)``. ``layer``: a report row name, or a module name
    meaning its last operator (default: the last layer with a spatial map, a global pool kept
    as 1x1 excluded); ``unit``: its index per spatial axis (default: the centre, ``n // 2`` on
    each axis). ``inputs``: ``"noise"`` (default), ``"dataset"`` or a tensor; ``samples``
    inputs are drawn for the first two (a tensor's batch size is used as is). ``report``: a
    :func:`stridelab.inspect` report of this model at this size, to skip the capture. Runs on
    ``device`` in the model's dtype, ``CHUNK`` samples per pass.
    """
    fields = effective_fields(model, input_size, [layer], unit, inputs, samples, device,
                              seed=seed, report=report)
    return next(iter(fields.values()))


def effective_fields(model: torch.nn.Module, input_size: Sequence[int],
                     layers: Sequence[str | None], unit: Sequence[int] | int | None = None,
                     inputs: Any = "noise", samples: int = 16,
                     device: str | torch.device = "cpu", *, seed: int = 0,
                     report: Report | None = None) -> dict[str, EffectiveField]:
    """:func:`effective_field` of several layers from one forward pass per chunk of inputs
    (one backward pass per layer); ``unit`` is used in every layer (None: each map's centre).
    Returns ``{layer name: EffectiveField}`` in the order given."""
    from stridelab.inspect.api import inspect
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
        raise ValueError(f"samples must be an int >= 1, got {samples!r}")
    if isinstance(layers, str) or not isinstance(layers, (list, tuple)) or not layers:
        raise TypeError(f"layers must be a non-empty list of layer names, got {layers!r}")
    dev = check_device(device)
    dtype = _model_dtype(model)
    if report is None:
        report = inspect(model, tuple(input_size), dtype=dtype)
    size = report.input_size
    maps = map_records(report, row_layouts(report, model))
    names = list(dict.fromkeys(_layer(report, layer, maps) for layer in layers))
    indices = {name: _unit(unit, map_shape(*maps[name]), name) for name in names}
    x_all, kind = _inputs(inputs, samples, size, seed, dtype)
    totals: dict[str, torch.Tensor] = {}
    for start in range(0, x_all.shape[0], CHUNK):
        x = x_all[start:start + CHUNK].to(dev).requires_grad_(True)
        outputs = layer_outputs(report, model, x, names)
        for name in names:
            grad = unit_gradients(as_map(outputs[name], maps[name][1]),
                                  [indices[name]] * x.shape[0], x,
                                  retain_graph=name != names[-1])
            part = grad.detach().abs().sum(dim=(0, 1)).to("cpu", torch.float64)
            totals[name] = totals[name] + part if name in totals else part
    result = {}
    for name in names:
        record = report.layer(name)
        mass = totals[name] / x_all.shape[0]
        norm = float(mass.sum())
        heat = (mass / norm if norm > 0 else mass).numpy()
        region, clipped = _region(record.receptive_field, indices[name], size[1:])
        result[name] = EffectiveField(heat, name, indices[name], record.receptive_field,
                                      region, clipped, int(x_all.shape[0]), kind,
                                      report.model_name,
                                      bool(getattr(record, "global_context", False)))
    return result


def _region(field: ReceptiveField, unit: Sequence[int], shape: Sequence[int]
            ) -> tuple[tuple[tuple[float, float], ...], tuple[bool, ...]]:
    """Theoretical ``[start, end]`` of ``unit`` per axis and whether the image clips it."""
    region, clipped = [], []
    for axis, u in enumerate(unit):
        start = Fraction(u) * field.stride[axis] - field.padding[axis]
        end = start + field.size[axis] - 1
        region.append((float(start), float(end)))
        clipped.append(start < 0 or end > shape[axis] - 1)
    return tuple(region), tuple(clipped)
