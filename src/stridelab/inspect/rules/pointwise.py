"""The default rules: element-wise operators with broadcasting, and operators not understood.

Element-wise (add, mul, activations, normalisation with fixed statistics, dropout, roll, ...):
every output element reads the same position of every input, so fields merge position by
position (Distill's alignment rule). An input that holds no position along an axis the output
spans (a ``(N, C, 1, 1)`` squeeze-excitation gate, a per-row statistic) is broadcast along it:
it adds no field on that axis, and if it read the whole map (``context``) the output is marked
as global context. ``roll`` is element-wise too: it relabels positions cyclically, which a
window applied afterwards does not see; the seam where it wraps is not part of the field (Swin
masks it).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from stridelab.arith import ReceptiveField
from stridelab.inspect.layout import Dim, Layout, plain, plain_dim
from stridelab.inspect.positions import Info, combine, normalize
from stridelab.inspect.rules.table import Call, Outcome, Result


def _chosen_dims(entries: Sequence[tuple[tuple[int, ...], Info]],
                 out_shape: tuple[int, ...]) -> list[Dim]:
    rank = len(out_shape)
    dims: list[Dim] = []
    for k in range(rank):
        chosen: Dim | None = None
        for shape, info in entries:
            off = rank - len(shape)
            if k < off or shape[k - off] != out_shape[k]:
                continue
            dim = info.layout.dims[k - off]
            if chosen is None or (dim.spatial and not chosen.spatial):
                chosen = dim
        dims.append(chosen if chosen is not None else plain_dim(out_shape[k]))
    return dims


def _consistent(entries: Sequence[tuple[tuple[int, ...], Info]], dims: list[Dim]) -> bool:
    rank = len(dims)
    bases = {info.layout.base for _, info in entries if info.layout.spatial}
    if len(bases) > 1:
        return False
    for shape, info in entries:
        off = rank - len(shape)
        for k, dim in enumerate(info.layout.dims):
            if shape[k] == dims[k + off].size and dim.spatial and dim != dims[k + off]:
                return False
    return True


def _normalized(info: Info) -> Info:
    field, layout = info.field, info.layout
    for axis in range(field.ndim):
        found = normalize(field, layout, axis)
        if found is not None:
            field, layout = found
    return Info(field, layout, info.context, info.origin)


def broadcast_merge(tracked: Sequence[tuple[torch.Tensor, Info]], out_shape: tuple[int, ...],
                    ndim: int) -> Outcome:
    """Element-wise merge of the captured inputs (see the module docstring)."""
    entries = [(tuple(t.shape), info) for t, info in tracked]
    dims = _chosen_dims(entries, out_shape)
    if not _consistent(entries, dims):
        entries = [(shape, _normalized(info)) for shape, info in entries]
        dims = _chosen_dims(entries, out_shape)
    base = next((info.layout.base for _, info in entries if info.layout.spatial),
                entries[0][1].layout.base)
    layout = Layout(tuple(dims), base)
    rank = len(out_shape)
    parts: list[tuple[ReceptiveField, set[int]]] = []
    gate = False
    spans = layout.axes()
    for shape, info in entries:
        off = rank - len(shape)
        keep: set[int] = set()
        for k, dim in enumerate(info.layout.dims):
            if shape[k] == out_shape[k + off]:
                keep |= {f.axis for f in dim.factors if f.axis is not None}
        # a global input that holds no position where the output has many: a gate
        gate |= info.context and bool(spans - info.layout.axes())
        parts.append((info.field, keep))
    held = set().union(*(keep for _, keep in parts))
    parts = [(field, keep | (set(range(ndim)) - held)) for field, keep in parts]
    field, misaligned = combine(parts, ndim, layout)
    context = any(info.context for _, info in entries)
    return Outcome([Result(field, layout, context)], misaligned=misaligned, broadcast=gate)


def frozen(info: Info) -> ReceptiveField:
    """The field once positions are given up: one window over the whole map on every axis
    (what the old layout-blind inspector did after any flatten)."""
    field = info.field
    layout = info.layout
    for axis in range(field.ndim):
        total = layout.extent(axis)
        if layout.base[axis]:
            field = field.regrid(axis, layout.base[axis], 1)
        if total > 1:
            field = field.then_on_axis(axis, total, total, 0)
    return field


def unknown(call: Call, tracked: Sequence[tuple[torch.Tensor, Info]]) -> Outcome:
    """An operator whose effect on positions is not known: every output position is taken to
    read the whole map (a superset), and the report says so if positions were lost."""
    infos = [info for _, info in tracked]
    fields = [frozen(info) for info in infos]
    layout = plain(call.out_shape, call.ndim)
    field, misaligned = combine([(f, set(range(call.ndim))) for f in fields], call.ndim, layout)
    lost = any(info.layout.axes() for info in infos)
    return Outcome([Result(field, layout, any(info.context for info in infos))],
                   misaligned=misaligned if lost else (), unknown=lost)


def _broadcast_shape(shapes: Sequence[tuple[int, ...]]) -> tuple[int, ...] | None:
    """NumPy broadcasting of ``shapes``, or None if they do not broadcast."""
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for k in range(rank):
        sizes = {s[k - rank + len(s)] for s in shapes if k - rank + len(s) >= 0} - {1}
        if len(sizes) > 1:
            return None
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def default(call: Call) -> Outcome:
    """Element-wise if the output has the inputs' broadcast shape, else unknown."""
    tracked = call.tracked()
    out_shape = call.out_shape
    if (len(tracked) == 1 and tracked[0][1].layout.shape == out_shape
            and tuple(tracked[0][0].shape) == out_shape
            and all(tuple(t.shape) == out_shape for t in call.outputs)):
        # one input of the output's shape: what broadcast_merge gives, without the merging
        _, info = tracked[0]
        return Outcome([Result(info.field, info.layout, info.context)])
    shapes = [tuple(t.shape) for t, _ in tracked]
    if _broadcast_shape(shapes) == out_shape:
        return broadcast_merge(tracked, out_shape, call.ndim)
    if len(tracked) == 1 and call.outputs and all(
            tuple(t.shape) == call.out_shape for t in call.outputs):
        return broadcast_merge(tracked, call.out_shape, call.ndim)
    return unknown(call, tracked)
