"""Rules for operators that move data without computing: views, slices, splits and joins.

They change only the layout (:mod:`stridelab.inspect.layout`); the field, indexed by positions,
stays, except where entries are dropped (a slice moves the grid's origin and step) or a class
token is picked (it holds no position: its field is the whole map).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from stridelab.inspect import layout as lay
from stridelab.inspect.layout import Dim, Factor, Layout
from stridelab.inspect.positions import Info, combine, normalize
from stridelab.inspect.rules.pointwise import frozen, unknown
from stridelab.inspect.rules.table import Call, Outcome, Result, dim_arg, rule, same


def _reshaped(call: Call, info: Info, shape: tuple[int, ...]) -> Outcome:
    new = lay.reshape(info.layout, shape)
    if new is None:
        return unknown(call, call.tracked())
    return Outcome([same(info, new)])


@rule("view", "_unsafe_view", "reshape", "_reshape_alias", "unsafe_view", "squeeze",
      "unsqueeze", "flatten", "unflatten", "view_as", "reshape_as", "_unsafe_reshape_alias")
def views(call: Call) -> Outcome | None:
    _, info = call.first
    return _reshaped(call, info, call.out_shape)


@rule("expand", "expand_as", "broadcast_to")
def expand(call: Call) -> Outcome | None:
    _, info = call.first
    return Outcome([same(info, lay.expand(info.layout, call.out_shape))])


@rule("permute")
def permute(call: Call) -> Outcome | None:
    _, info = call.first
    return Outcome([same(info, lay.permute(info.layout, list(call.arg(1, "dims"))))])


@rule("transpose", "swapaxes", "swapdims")
def transpose(call: Call) -> Outcome | None:
    _, info = call.first
    return Outcome([same(info, lay.transpose(info.layout, int(call.arg(1, "dim0")),
                                             int(call.arg(2, "dim1"))))])


@rule("t", "numpy_T", "mT")
def t(call: Call) -> Outcome | None:
    tensor, info = call.first
    if tensor.ndim < 2:
        return Outcome([same(info)])
    return Outcome([same(info, lay.transpose(info.layout, -2, -1))])


def _clamp(value: object, size: int, default: int) -> int:
    if value is None:
        return default
    index: int = int(value)  # type: ignore[call-overload]
    if index < 0:
        index += size
    return min(max(index, 0), size)


def sliced(info: Info, dim: int, start: int, stop: int, step: int) -> Result | None:
    """The slice ``start:stop:step`` of ``dim`` (clamped), or None if positions are lost."""
    found = lay.slice_dim(info.layout, dim, start, stop, step)
    if found is None:
        return None
    new, extras = found
    if extras:  # class tokens only: no position, their field is the whole map
        origin = (0,) * len(new.base)
        return Result(frozen(info), replace(new, base=origin), info.context)
    return Result(info.field, new, info.context)


@rule("slice")
def slice_(call: Call) -> Outcome | None:
    tensor, info = call.first
    dim = dim_arg(call.arg(1, "dim", 0), tensor.ndim)
    size = tensor.shape[dim]
    start = _clamp(call.arg(2, "start"), size, 0)
    stop = _clamp(call.arg(3, "end"), size, size)
    step = int(call.arg(4, "step", 1))
    result = sliced(info, dim, start, max(stop, start), step)
    return Outcome([result]) if result is not None else unknown(call, call.tracked())


@rule("select")
def select(call: Call) -> Outcome | None:
    tensor, info = call.first
    dim = dim_arg(call.arg(1, "dim"), tensor.ndim)
    index = int(call.arg(2, "index"))
    index = index + tensor.shape[dim] if index < 0 else index
    result = sliced(info, dim, index, index + 1, 1)
    if result is None:
        return unknown(call, call.tracked())
    layout = result.layout
    return Outcome([replace(result, layout=replace(layout, dims=layout.dims[:dim]
                                                   + layout.dims[dim + 1:]))])


@rule("split", "split_with_sizes", "unsafe_split", "unsafe_split_with_sizes", "chunk",
      "tensor_split")
def split(call: Call) -> Outcome | None:
    tensor, info = call.first
    dim = dim_arg(call.arg(2, "dim", 0), tensor.ndim)
    results = []
    start = 0
    for out in call.outputs:
        stop = start + out.shape[dim]
        result = sliced(info, dim, start, stop, 1)
        if result is None:
            return unknown(call, call.tracked())
        results.append(result)
        start = stop
    return Outcome(results)


@rule("unbind")
def unbind(call: Call) -> Outcome | None:
    tensor, info = call.first
    dim = dim_arg(call.arg(1, "dim", 0), tensor.ndim)
    results = []
    for index in range(len(call.outputs)):
        result = sliced(info, dim, index, index + 1, 1)
        if result is None:
            return unknown(call, call.tracked())
        layout = result.layout
        results.append(replace(result, layout=replace(
            layout, dims=layout.dims[:dim] + layout.dims[dim + 1:])))
    return Outcome(results)


@rule("unfold")
def unfold(call: Call) -> Outcome | None:
    tensor, info = call.first
    dim = dim_arg(call.arg(1, "dimension"), tensor.ndim)
    new = lay.unfold_dim(info.layout, dim, int(call.arg(2, "size")), int(call.arg(3, "step")))
    return Outcome([same(info, new)]) if new is not None else unknown(call, call.tracked())


def _join(call: Call, tensors: list[object], dim: int, stacked: bool) -> Outcome:
    """``cat`` / ``stack``: inputs side by side along ``dim`` (a new one for ``stack``)."""
    shapes = [tuple(t.shape) for t in tensors if isinstance(t, torch.Tensor)]
    infos: list[Info | None] = []
    for t in tensors:
        info = call.info(t)
        if info is not None and stacked and isinstance(t, torch.Tensor):
            grown = tuple(t.shape[:dim]) + (1,) + tuple(t.shape[dim:])
            info = replace(info, layout=lay.reshape(info.layout, grown) or info.layout)
        infos.append(info)
    rank = len(call.out_shape)
    tracked = [i for i in infos if i is not None]
    first = tracked[0]
    if len(first.layout.dims) != rank:
        return unknown(call, call.tracked())
    along = [i.layout.dims[dim] for i in tracked]
    others = [tuple(d for k, d in enumerate(i.layout.dims) if k != dim) for i in tracked]
    parts = [(i.field, set(range(call.ndim))) for i in tracked]
    context = any(i.context for i in tracked)
    if any(d.spatial for d in along):
        # a grid along the joined dimension: extra entries around one grid (class tokens)
        spatial = [k for k, i in enumerate(infos) if i is not None and i.layout.dims[dim].spatial]
        if len(spatial) != 1:
            return unknown(call, call.tracked())
        k = spatial[0]
        grid = infos[k]
        assert grid is not None
        before = sum(s[dim] for s in shapes[:k])
        after = sum(s[dim] for s in shapes[k + 1:])
        old = grid.layout.dims[dim]
        new = Dim(old.factors, old.before + before, old.after + after)
        layout = replace(grid.layout, dims=grid.layout.dims[:dim] + (new,)
                         + grid.layout.dims[dim + 1:])
        # the extra entries (class tokens) hold no position: they add context, not field
        return Outcome([Result(grid.field, layout, context)])
    if len(set(others)) > 1 or len({i.layout.base for i in tracked}) > 1:
        woven = _interleaved(call, tracked, infos, dim)
        if woven is not None:
            return woven
    layout = replace(first.layout, dims=first.layout.dims[:dim]
                     + (lay.plain_dim(call.out_shape[dim]),) + first.layout.dims[dim + 1:])
    field, misaligned = combine(parts, call.ndim, layout)
    return Outcome([Result(field, layout, context)], misaligned=misaligned)


def _interleaved(call: Call, tracked: list[Info], infos: list[Info | None], dim: int
                 ) -> Outcome | None:
    """Strided slices of one map joined along channels (space-to-depth by slicing): the
    channel dimension gains the digits that enumerate the slices' origins."""
    if any(i is None for i in infos):
        return None
    normal = []
    for info in tracked:
        field, layout = info.field, info.layout
        normal.append((field, layout))
    layouts = {tuple(d for k, d in enumerate(lo.dims) if k != dim) for _, lo in normal}
    fields = {f for f, _ in normal}
    if len(layouts) != 1 or len(fields) != 1:
        return None
    found = lay.interleave([lo.base for _, lo in normal])
    if found is None:
        return None
    digits, base = found
    sizes = {lo.dims[dim].size for _, lo in normal}
    if len(sizes) != 1 or any(lo.dims[dim].spatial for _, lo in normal):
        return None
    inner = lay.plain_dim(sizes.pop()).factors
    first = normal[0][1]
    new = Dim(tuple(digits) + inner)
    layout = Layout(first.dims[:dim] + (new,) + first.dims[dim + 1:], base)
    info = tracked[0]
    return Outcome([Result(info.field, layout, any(i.context for i in tracked))])


@rule("cat", "concat", "concatenate")
def cat(call: Call) -> Outcome | None:
    tensors = list(call.arg(0, "tensors"))
    rank = len(call.out_shape)
    return _join(call, tensors, dim_arg(call.arg(1, "dim", 0), rank), stacked=False)


@rule("stack")
def stack(call: Call) -> Outcome | None:
    tensors = list(call.arg(0, "tensors"))
    rank = len(call.out_shape)
    return _join(call, tensors, dim_arg(call.arg(1, "dim", 0), rank), stacked=True)


@rule("pixel_unshuffle")
def pixel_unshuffle(call: Call) -> Outcome | None:
    """``(..., C, H, W) -> (..., C*b*b, H/b, W/b)``: channel ``c*b*b + i*b + j`` holds the pixel
    at offset ``(i, j)`` of each block: digits move from the map into the channels."""
    from stridelab.inspect.rules.windows import display_window

    tensor, info = call.first
    factor = int(call.arg(1, "downscale_factor"))
    field, layout = info.field, info.layout
    axes: list[int | None] = []
    for k in (-2, -1):
        dim = layout.dims[k]
        axis = next((f.axis for f in dim.factors if f.axis is not None), None)
        if axis is not None:
            found = normalize(field, layout, axis)
            if found is None:
                return unknown(call, call.tracked())
            field, layout = found
        axes.append(axis)
    dims = list(layout.dims)
    inner = tuple(Factor(a, factor, 1) if a is not None else Factor(None, factor)
                  for a in axes)
    channels = Dim(dims[-3].factors + inner)
    spatial = []
    for a, k in zip(axes, (-2, -1)):
        n = call.out_shape[k]
        spatial.append(Dim((Factor(a, n, factor),)) if a is not None else lay.plain_dim(n))
    new = Layout(tuple(dims[:-3]) + (channels, *spatial), layout.base)
    window = display_window(call, "rearrange", (factor, factor), tuple(tensor.shape[-2:]), axes)
    return Outcome([Result(field, new, info.context)], window=window)
