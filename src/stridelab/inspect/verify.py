"""Check the theoretical receptive field against autograd: ``report.verify(model)``.

For chosen output units of chosen layers, backpropagate from the unit (the sum over its
channels) to the input and take the box of input positions with a nonzero gradient, per axis.
The theory (Distill 2019: unit ``u`` sees ``[u * S - P, u * S - P + r - 1]``) must *contain* it,
and should be *tight*: the measured box's edges equal the theoretical ones wherever the image
does not clip them (clipped edges must sit on the image border; positions that an intermediate
map dropped at its end, beyond every unit's field, cannot be reached and clip likewise).

Zero gradients can hide parts of a field that the theory counts: a zero-initialised norm
(``zero_init_residual``), a layer-scale at zero, a dead ReLU. ``weights="random"`` (the
default) therefore checks a copy with fresh weights and no zero gain
(:func:`stridelab.inspect.probe.randomised`), and the gradient box is the union over
``samples`` noise inputs. A layer whose units read the whole input through a global operator
(attention over the grid, a squeeze-and-excitation gate; ``LayerRecord.global_context``) is
reported as ``global``, not as a failure.

Rows are indexed by their layout (:func:`stridelab.inspect.probe.row_layouts`): a channels-last
row ``(N, H, W, C)`` is checked at ``output[b, u_h, u_w, :]``; rows whose positions are tokens,
windows or folded into the batch have no map to index and are skipped. The unit's value is a
weighted sum over its channels (weights in ``[0.5, 1.5)``): after a normalisation over channels
with equal gains (LayerNorm2d) the plain sum is constant and has no gradient. The end of the
expected box is cut to the unit's *reach* (:mod:`stridelab.inspect.reach`), followed through the
graph from the row's own inputs: maps that drop pixels at their end, nearest upsampling (one unit
read per phase) and element-wise merges of branches with different fields.

Gradients are taken in the model's dtype; layers where a unit's box comes out smaller than its
field (or empty) are measured again in float64, since float32 underflows at the edge of deep
fields (products of many small weights: FastViT's reach ~1e-44 there).
"""

from __future__ import annotations

import copy
import io
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from itertools import product
from typing import Any

import torch

from stridelab.inspect.probe import (
    as_map,
    check_device,
    check_unit,
    check_weights,
    layer_outputs,
    map_records,
    map_shape,
    randomised,
    row_layouts,
    spatial_records,
    unit_gradients,
)
from stridelab.inspect.reach import Maps, Reach, reach_tables
from stridelab.inspect.records import LayerRecord, Report

Box = tuple[tuple[int, int], ...]
STATUSES = ("ok", "global", "loose", "outside", "no-gradient")
MAX_DEFAULT_LAYERS = 8


@dataclass(frozen=True)
class UnitCheck:
    """One unit of one layer: theoretical box (clipped to the image) vs measured box, per axis.

    ``expected`` is the theoretical region clipped to what the input can show (``[lo, hi]``
    inclusive, input pixels); ``region`` the unclipped ``[start, end]`` (may be fractional after
    upsampling); ``measured`` the nonzero-gradient box (None if no gradient reached the input);
    ``clipped`` per axis whether the image cut the theoretical region.
    """

    layer: str
    unit: tuple[int, ...]
    region: tuple[tuple[float, float], ...]
    expected: Box
    measured: Box | None
    clipped: tuple[bool, ...]
    contained: bool
    tight: bool
    global_context: bool
    status: str


class Verification:
    """The result of :func:`verify`: one :class:`UnitCheck` per (layer, unit).

    ``ok`` is True when every check is ``ok`` or ``global``. Render with ``str()`` /
    :meth:`to_table`, :meth:`rich_table`, :meth:`to_json` / :meth:`to_dict`.
    """

    def __init__(self, model_name: str, input_size: tuple[int, ...], weights: str,
                 samples: int, checks: list[UnitCheck]) -> None:
        self.model_name = model_name
        self.input_size = input_size
        self.weights = weights
        self.samples = samples
        self.checks = checks

    @property
    def ok(self) -> bool:
        return all(c.status in ("ok", "global") for c in self.checks)

    @property
    def failures(self) -> list[UnitCheck]:
        return [c for c in self.checks if c.status not in ("ok", "global")]

    def __repr__(self) -> str:
        return (f"Verification({self.model_name}, {len(self.checks)} units, "
                f"{len(self.failures)} failures)")

    def summary(self) -> str:
        counts = {s: sum(c.status == s for c in self.checks) for s in STATUSES}
        parts = [f"{n} {s}" for s, n in counts.items() if n]
        verdict = "contained and tight" if self.ok else "MISMATCH"
        return (f"{self.model_name} at {'x'.join(map(str, self.input_size))}, {self.weights} "
                f"weights, {self.samples} noise sample(s): {len(self.checks)} units, "
                f"{', '.join(parts)}: {verdict}")

    def rich_table(self) -> Any:
        from rich.table import Table
        table = Table(title=f"{self.model_name}: theoretical field vs gradient support",
                      title_justify="left")
        for column, justify in (("Layer", "left"), ("Unit", "left"), ("Field (theory)", "right"),
                                ("Gradient box", "right"), ("Contained", "center"),
                                ("Tight", "center"), ("Status", "left")):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        for check in self.checks:
            table.add_row(check.layer, ",".join(map(str, check.unit)),
                          _box_text(check.expected, check.clipped), _box_text(check.measured),
                          _yes(check.contained), _yes(check.tight), check.status)
        return table

    def to_table(self, width: int = 120) -> str:
        from rich.console import Console
        console = Console(width=width, record=True, color_system=None, force_terminal=False,
                          file=io.StringIO())
        console.print(self.rich_table())
        return console.export_text() + self.summary() + "\n"

    def __str__(self) -> str:
        return self.to_table()

    def to_dict(self) -> dict[str, object]:
        return {"schema": "stridelab.verify", "version": 1, "model": self.model_name,
                "input_size": list(self.input_size), "weights": self.weights,
                "samples": self.samples, "ok": self.ok,
                "checks": [_check_dict(c) for c in self.checks]}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent) + "\n"


def _check_dict(check: UnitCheck) -> dict[str, object]:
    data = asdict(check)
    for key in ("unit", "region", "expected", "measured", "clipped"):
        value = data[key]
        data[key] = None if value is None else [list(v) if isinstance(v, tuple) else v
                                                for v in value]
    return data


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def _box_text(box: Box | None, clipped: Sequence[bool] | None = None) -> str:
    if box is None:
        return "-"
    parts = []
    for axis, (lo, hi) in enumerate(box):
        mark = "*" if clipped is not None and clipped[axis] else ""
        parts.append(f"{lo}..{hi}{mark}")
    return " x ".join(parts)


# -- choosing what to check ---------------------------------------------------------------------
def default_layers(report: Report, maps: Maps | None = None) -> list[str]:
    """A sample of spatial layers: the first windowed one, the last one of every run of equal
    effective stride (the end of each stage), and always the last spatial layer; at most
    :data:`MAX_DEFAULT_LAYERS` (evenly thinned, keeping the last). ``maps``
    (:func:`stridelab.inspect.probe.map_records`) limits the choice to rows whose output is a
    map; without it, rows shaped ``(N, C, *spatial)``."""
    records = ([record for record, _ in maps.values()] if maps is not None
               else spatial_records(report))
    if not records:
        return []
    chosen: list[str] = []
    first = next((r for r in records if r.window in ("conv", "maxpool", "avgpool")), None)
    if first is not None:
        chosen.append(first.name)
    for current, following in zip(records, records[1:]):
        if current.effective_stride != following.effective_stride:
            chosen.append(current.name)
    sized = [r for r in records if any(n > 1 for n in _spatial_shape(r, maps))]
    chosen.append((sized or records)[-1].name)
    names = list(dict.fromkeys(chosen))
    if len(names) > MAX_DEFAULT_LAYERS:
        step = (len(names) - 1) / (MAX_DEFAULT_LAYERS - 1)
        names = [names[round(i * step)] for i in range(MAX_DEFAULT_LAYERS)]
    return names


def _spatial_shape(record: LayerRecord, maps: Maps | None) -> tuple[int, ...]:
    if maps is None or record.name not in maps:
        return tuple(record.output_shape[2:])
    return map_shape(record, maps[record.name][1])


def default_units(shape: Sequence[int]) -> list[tuple[int, ...]]:
    """The centre and the corners of a map of spatial ``shape`` (duplicates removed)."""
    centre = tuple(n // 2 for n in shape)
    corners = list(product(*[(0, n - 1) for n in shape]))
    return list(dict.fromkeys([centre, *corners]))


def _check_units(units: object, layer: LayerRecord, shape: tuple[int, ...]
                 ) -> list[tuple[int, ...]]:
    if units is None:
        return default_units(shape)
    if not isinstance(units, (list, tuple)) or not units:
        raise TypeError(f"units must be a non-empty list of unit indices (tuples of {len(shape)} "
                        f"ints per spatial axis), got {units!r}")
    out = []
    for unit in units:
        out.append(check_unit(unit, shape, layer.name,
                              f"units must hold tuples of {len(shape)} ints"))
    return out


def _check_layers(report: Report, layers: object, maps: Maps) -> list[str]:
    if layers is None:
        return default_layers(report, maps)
    names = [layers] if isinstance(layers, str) else layers
    if names == ["all"]:
        return list(maps)
    if not isinstance(names, (list, tuple)) or not names:
        raise TypeError(f"layers must be None, 'all', a layer name or a list of names, "
                        f"got {layers!r}")
    for name in names:
        report.layer(name)  # KeyError with close names
        if name not in maps:
            raise ValueError(f"layer {name!r} has no spatial map (its output is flattened, "
                             f"pooled globally or split into tokens / windows): choose a layer "
                             f"whose output is a map")
    return list(names)


# -- the comparison -----------------------------------------------------------------------------
def expected_box(record: LayerRecord, unit: Sequence[int], input_shape: Sequence[int],
                 first: Sequence[float], last: Sequence[float]
                 ) -> tuple[tuple[tuple[float, float], ...], Box, tuple[bool, ...]]:
    """Theoretical region of ``unit``: unclipped ``[start, end]``, clipped box, clipped flags.

    The box is the region cut to the image and to the unit's reach (``first`` / ``last`` per
    axis, :func:`stridelab.inspect.reach.reach_tables`).
    """
    field = record.receptive_field
    region, box, clipped = [], [], []
    for axis, u in enumerate(unit):
        start = Fraction(u) * field.stride[axis] - field.padding[axis]
        end = start + field.size[axis] - 1
        lo = max(math.ceil(start), 0)
        hi = min(math.floor(end), input_shape[axis] - 1)
        if first[axis] > lo:
            lo = math.ceil(first[axis]) if first[axis] < math.inf else hi + 1
        if last[axis] < hi:
            hi = math.floor(last[axis]) if last[axis] > -math.inf else lo - 1
        region.append((float(start), float(end)))
        box.append((lo, hi))
        clipped.append(lo != start or hi != end)
    return tuple(region), tuple(box), tuple(clipped)


def measured_box(grad: torch.Tensor) -> Box | None:
    """Per axis, the first and last index with a nonzero gradient (``grad`` is ``(*spatial)``)."""
    nonzero = grad != 0
    if not bool(nonzero.any()):
        return None
    box = []
    for axis in range(grad.ndim):
        others = tuple(a for a in range(grad.ndim) if a != axis)
        hits = torch.nonzero(nonzero.any(dim=others) if others else nonzero).flatten()
        box.append((int(hits.min()), int(hits.max())))
    return tuple(box)


def compare(record: LayerRecord, unit: tuple[int, ...], grad: torch.Tensor,
            input_shape: Sequence[int], first: Sequence[float], last: Sequence[float]
            ) -> UnitCheck:
    region, expected, clipped = expected_box(record, unit, input_shape, first, last)
    measured = measured_box(grad)
    is_global = bool(getattr(record, "global_context", False))
    if measured is None:
        contained = tight = False
    else:
        bounds = [(max(math.ceil(s), 0), min(math.floor(e), n - 1))
                  for (s, e), n in zip(region, input_shape)]
        contained = all(lo <= m_lo and m_hi <= hi
                        for (lo, hi), (m_lo, m_hi) in zip(bounds, measured))
        tight = measured == expected
    if is_global:
        status = "global"
    elif measured is None:
        status = "no-gradient"
    elif not contained:
        status = "outside"
    elif not tight:
        status = "loose"
    else:
        status = "ok"
    return UnitCheck(record.name, unit, region, expected, measured, clipped, contained, tight,
                     is_global, status)


def verify(report: Report, model: torch.nn.Module, *, units: object = None,
           weights: str = "random", layers: object = None, samples: int = 2, seed: int = 0,
           device: str | torch.device = "cpu") -> Verification:
    """Backpropagate from output units and compare the gradient box with the reported field.

    ``layers``: None (a sample, see :func:`default_layers`), ``"all"`` (every spatial layer),
    a name or a list of names. ``units``: None (centre and corners of each layer's map) or a
    list of index tuples, one int per spatial axis, used for every chosen layer.
    ``weights``: ``"random"`` (a copy with fresh weights and no zero gain, see
    :func:`stridelab.inspect.probe.randomised`) or ``"model"`` (the model's own weights,
    eval mode). ``samples``: noise inputs (N(0, 1), seeded by ``seed``) whose gradient boxes
    are united. The model and its buffers are left unchanged.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    mode = check_weights(weights)
    dev = check_device(device)
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
        raise ValueError(f"samples must be an int >= 1, got {samples!r}")
    maps = map_records(report, row_layouts(report, model))
    names = _check_layers(report, layers, maps)
    plan = {name: _check_units(units, report.layer(name), map_shape(*maps[name]))
            for name in names}
    net = randomised(model, seed, report.input_size, dev) if mode == "random" else model
    count = max((len(u) for u in plan.values()), default=0)
    if not names:
        return Verification(report.model_name, report.input_size, mode, samples, [])
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn((count * samples, *report.input_size), generator=generator).to(dev)
    measure = _Measurement(report, maps, plan, generator, reach_tables(report, maps))
    checks = measure.run(net, x, names)
    # float32 underflows at a deep field's edge (FastViT: gradients of ~1e-44 there), which makes
    # the box look smaller than it is: measure those layers again in float64
    again = [name for name in names
             if any(c.layer == name and c.status in ("loose", "no-gradient") for c in checks)]
    if again and x.dtype != torch.float64:
        try:
            precise = measure.run(copy.deepcopy(net).to(torch.float64), x.double(), again)
        except (RuntimeError, TypeError, NotImplementedError):
            precise = []  # the model does not run in float64: the float32 result stands
        if precise:
            redone = set(again)
            checks = [c for c in checks if c.layer not in redone] + precise
            order = {name: i for i, name in enumerate(names)}
            checks.sort(key=lambda c: order[c.layer])
    return Verification(report.model_name, report.input_size, mode, samples, checks)


class _Measurement:
    """Gradient boxes of the planned units of chosen layers, for one network and input."""

    def __init__(self, report: Report, maps: Maps, plan: dict[str, list[tuple[int, ...]]],
                 generator: torch.Generator, tables: dict[str, Reach]) -> None:
        self.report, self.maps, self.plan, self.tables = report, maps, plan, tables
        self.generator = generator
        # weighted channels, drawn once per layer: a channel sum can be constant (a LayerNorm
        # over channels)
        self.mixes: dict[str, torch.Tensor] = {}

    def run(self, net: torch.nn.Module, x: torch.Tensor, names: list[str]) -> list[UnitCheck]:
        x = x.detach().requires_grad_(True)
        outputs = layer_outputs(self.report, net, x, names)
        batch = x.shape[0]
        checks: list[UnitCheck] = []
        for name in names:
            record, dims = self.maps[name]
            wanted = self.plan[name]
            batch_units = [wanted[b % len(wanted)] for b in range(batch)]
            output = as_map(outputs[name], dims)
            if name not in self.mixes:
                self.mixes[name] = 0.5 + torch.rand(output.shape[1], generator=self.generator)
            grad = unit_gradients(output, batch_units, x, retain_graph=name != names[-1],
                                  channel_weights=self.mixes[name])
            support = grad.detach().abs().sum(dim=1)  # (batch, *spatial)
            for index, unit in enumerate(wanted):
                rows = [b for b in range(batch) if b % len(wanted) == index]
                united = support[rows].sum(dim=0)
                first, last = self.tables[name].of(unit)
                checks.append(compare(record, unit, united, self.report.input_size[1:],
                                      first, last))
        return checks
