"""Rules for sliding windows: convolution, pooling, padding, resizing, ``F.unfold`` / ``F.fold``.

A window slides over the last dimensions of its input, whichever spatial axes they hold
(a channels-last tensor permuted back, a transposed image, a 1-D pooling run as 2-D on an
inserted singleton). Each such dimension must hold one axis with unit steps; the axis is first
re-indexed to ``0, 1, 2, ...`` (:func:`~stridelab.inspect.positions.normalize`). The window itself
(kernel, stride, padding, and the equivalent windows of resizes) comes from
:func:`stridelab.inspect.geometry.window_of`; the field follows the Distill recurrences in
:mod:`stridelab.arith`. A convolution also mixes channels: if the channels hold positions
(after space-to-depth) those are read whole first.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from stridelab.inspect import layout as lay
from stridelab.inspect.geometry import (
    ADAPTIVE_POOLS,
    AVG_POOLS,
    CONVOLUTIONS,
    MAX_POOLS,
    PADS,
    RESIZES,
    Window,
    project,
    restrict,
    window_field,
    window_of,
)
from stridelab.inspect.layout import Dim, Factor, Layout
from stridelab.inspect.positions import Info, contract, normalize
from stridelab.inspect.rules.pointwise import unknown
from stridelab.inspect.rules.table import Call, Outcome, Result, rule


def display_window(call: Call, kind: str, factors: tuple[int, ...], size_in: tuple[int, ...],
                   axes: Sequence[int | None]) -> Window | None:
    """A kernel = stride window shown for a re-arrangement (pixel_unshuffle)."""
    dims = [i for i, a in enumerate(axes) if a is not None]
    if not dims:
        return None
    out = tuple(s // f for s, f in zip(size_in, factors))
    window = Window(kind, factors, factors, ((0, 0),) * len(factors), (1,) * len(factors),
                    size_in, out)
    return restrict(window, dims)


def _map_axes(info: Info, count: int) -> tuple[Info, list[int | None]] | None:
    """Re-index the axes held by the last ``count`` dimensions; None if one is split."""
    field, layout = info.field, info.layout
    axes: list[int | None] = []
    rank = len(layout.dims)
    for k in range(rank - count, rank):
        dim = layout.dims[k]
        held = {f.axis for f in dim.factors if f.axis is not None}
        if not held:
            axes.append(None)
            continue
        if len(held) > 1:
            return None
        axis = held.pop()
        if any(d != k for d, f in layout.factors(axis) if f.count > 1):
            return None
        found = normalize(field, layout, axis)
        if found is None:
            return None
        field, layout = found
        axes.append(axis)
    return Info(field, layout, info.context, info.origin), axes


def _slide(call: Call, count: int, lead: Sequence[Dim] | None = None) -> Outcome:
    """Apply the window of this call to the last ``count`` dimensions of its first input;
    ``lead`` replaces the dimensions before them (a convolution's output channels)."""
    tensor, info = call.first
    if len(call.out_shape) < count:
        return unknown(call, call.tracked())
    mapped = _map_axes(info, count)
    if mapped is None:
        return _slide_in_blocks(call, count, lead, info)
    info, axes = mapped
    spatial_in = tuple(int(s) for s in tensor.shape[-count:])
    spatial_out = tuple(int(s) for s in call.out_shape[-count:])
    window = window_of(call.name, call.args, call.kwargs, spatial_in, spatial_out)
    if window is None:
        return unknown(call, call.tracked())
    field = window_field(info.field, project(window, axes, call.ndim))
    dims = list(info.layout.dims[:-count] if lead is None else lead)
    for axis, size in zip(axes, spatial_out):
        dims.append(Dim((Factor(axis, size, 1),)) if axis is not None else lay.plain_dim(size))
    layout = Layout(tuple(dims), info.layout.base)
    if layout.shape != call.out_shape:
        return unknown(call, call.tracked())
    shown = [i for i, a in enumerate(axes) if a is not None]
    display = restrict(window, shown) if shown else None
    return Outcome([Result(field, layout, info.context)], window=display)


def _block_axes(info: Info, count: int) -> list[int | None] | None:
    """Axes of the last ``count`` dimensions when each holds the inner digit (step 1) of an axis
    whose other digits index blocks: patches or windows folded into another dimension (TNT's
    ``unfold`` + reshape of the image into 16x16 patches), each step a multiple of the inner
    count, so blocks never overlap. None otherwise."""
    layout = info.layout
    rank = len(layout.dims)
    axes: list[int | None] = []
    for k in range(rank - count, rank):
        dim = layout.dims[k]
        held = [f for f in dim.factors if f.axis is not None]
        if not held:
            axes.append(None)
            continue
        inner = held[0]
        if len(held) != 1 or len(dim.factors) != 1 or dim.before or dim.after or inner.step != 1:
            return None
        others = [f for d, f in layout.factors(inner.axis) if d != k and f.count > 1]  # type: ignore[arg-type]
        if any(f.step < inner.count or f.step % inner.count for f in others):
            return None
        axes.append(inner.axis)
    return axes


def _slide_in_blocks(call: Call, count: int, lead: Sequence[Dim] | None, info: Info
                     ) -> Outcome:
    """A convolution or pooling that slides inside blocks (see :func:`_block_axes`), zero
    padded at each block's border. Positions stay those of the input: output ``j`` of a block
    starting at ``b`` sits at position ``b + j * s`` and reads ``k`` taps ``d`` apart from
    ``p_before`` before it, i.e. the field grows as a kernel-``k``, stride-1 window with that
    padding (Distill 2019) and the inner digit steps by ``s``. The field is the hull over the
    block border (an upper bound there: the padding stands where the neighbouring block's
    pixels are)."""
    tensor, _ = call.first
    axes = _block_axes(info, count)
    if axes is None or all(a is None for a in axes):
        return unknown(call, call.tracked())
    spatial_in = tuple(int(s) for s in tensor.shape[-count:])
    spatial_out = tuple(int(s) for s in call.out_shape[-count:])
    window = window_of(call.name, call.args, call.kwargs, spatial_in, spatial_out)
    if window is None or window.kind not in ("conv", "maxpool", "avgpool"):
        return unknown(call, call.tracked())
    field = info.field
    dims = list(info.layout.dims[:-count] if lead is None else lead)
    for i, (axis, size) in enumerate(zip(axes, spatial_out)):
        if axis is None:
            dims.append(lay.plain_dim(size))
            continue
        field = field.then_on_axis(axis, window.kernel[i], 1, window.padding[i][0],
                                   window.dilation[i])
        dims.append(Dim((Factor(axis, size, window.stride[i]),)))
    layout = Layout(tuple(dims), info.layout.base)
    if layout.shape != call.out_shape:
        return unknown(call, call.tracked())
    shown = [i for i, a in enumerate(axes) if a is not None]
    return Outcome([Result(field, layout, info.context)], window=restrict(window, shown))


def _digit_count(name: str) -> int:
    return 3 if "3d" in name else 1 if "1d" in name else 2


@rule(*CONVOLUTIONS)
def convolution(call: Call) -> Outcome | None:
    tensor, info = call.first
    weight = call.args[1]
    if call.info(weight) is not None or not isinstance(weight, torch.Tensor):
        return None  # a data-dependent kernel: not a sliding window we can follow
    count = weight.ndim - 2
    groups = int(call.arg(8, "groups", 1))
    if info.layout.dims[1].spatial and groups < tensor.shape[1]:
        kept = info.layout.dims[:1] + (lay.plain_dim(tensor.shape[1]),) + info.layout.dims[2:]
        mixed = Layout(kept, info.layout.base)
        done = contract(info, [1], mixed)
        info = Info(done.field, done.layout(mixed), done.context, info.origin)
    call.set_info(tensor, info)
    lead = list(info.layout.dims[:1]) + [lay.plain_dim(call.out_shape[1])]
    return _slide(call, count, lead)


@rule(*MAX_POOLS, *AVG_POOLS, *ADAPTIVE_POOLS, *RESIZES)
def pooling(call: Call) -> Outcome | None:
    return _slide(call, _digit_count(call.name))


@rule(*PADS)
def padding(call: Call) -> Outcome | None:
    pad = list(call.arg(1, "pad", ()))
    count = max(len(pad) // 2, 1)
    tensor, info = call.first
    rank = tensor.ndim
    padded = [(rank - 1 - i, pad[2 * i], pad[2 * i + 1]) for i in range(len(pad) // 2)
              if pad[2 * i] or pad[2 * i + 1]]
    tokens = [k for k, _, _ in padded if len(info.layout.dims[k].axes()) > 1
              or info.layout.dims[k].before or info.layout.dims[k].after]
    if tokens:
        return _pad_entries(call, info, padded)
    return _slide(call, count)


def _pad_entries(call: Call, info: Info, padded: list[tuple[int, int, int]]) -> Outcome:
    """Padding a token sequence (a flattened grid) adds entries that hold no position, as a
    class token does (CoaT pads one in front of the image tokens)."""
    dims = list(info.layout.dims)
    for k, before, after in padded:
        dim = dims[k]
        if before < 0 or after < 0 or (dim.spatial and len(dim.axes()) <= 1
                                       and not dim.before and not dim.after):
            return unknown(call, call.tracked())
        dims[k] = (Dim(dim.factors, dim.before + before, dim.after + after) if dim.spatial
                   else lay.plain_dim(dim.size + before + after))
    layout = Layout(tuple(dims), info.layout.base)
    if layout.shape != call.out_shape:
        return unknown(call, call.tracked())
    return Outcome([Result(info.field, layout, info.context)])


@rule("pixel_shuffle")
def pixel_shuffle(call: Call) -> Outcome | None:
    _, info = call.first
    if info.layout.dims[-3].spatial:
        return None
    lead = list(info.layout.dims[:-3]) + [lay.plain_dim(call.out_shape[-3])]
    return _slide(call, 2, lead)


@rule("im2col")
def im2col(call: Call) -> Outcome | None:
    """``F.unfold``: column ``l`` holds the patch at window start ``l``; channel ``(c, i, j)``
    the pixel at offset ``(i, j)`` in it (the patch grid starts at ``-padding``)."""
    tensor, info = call.first
    mapped = _map_axes(info, 2)
    kernel, dilation, pad, stride = (tuple(call.arg(i, n)) for i, n in
                                     ((1, "kernel_size"), (2, "dilation"), (3, "padding"),
                                      (4, "stride")))
    if mapped is None or None in mapped[1]:
        return unknown(call, call.tracked())
    info, axes = mapped
    sizes = tuple(int(s) for s in tensor.shape[-2:])
    outs = [(n + 2 * p - d * (k - 1) - 1) // s + 1
            for n, k, d, p, s in zip(sizes, kernel, dilation, pad, stride)]
    dims = info.layout.dims
    channels = Dim(dims[-3].factors + tuple(Factor(a, k, d) for a, k, d in
                                            zip(axes, kernel, dilation)))
    columns = Dim(tuple(Factor(a, o, s) for a, o, s in zip(axes, outs, stride)))
    base = list(info.layout.base)
    for a, p in zip(axes, pad):
        assert a is not None
        base[a] -= p
    layout = Layout(tuple(dims[:-3]) + (channels, columns), tuple(base))
    if layout.shape != call.out_shape:
        return unknown(call, call.tracked())
    return Outcome([Result(info.field, layout, info.context)])


@rule("col2im")
def col2im(call: Call) -> Outcome | None:
    """``F.fold``: output pixel ``y`` sums the entries whose position is ``y``. When the channels
    still hold the patch offsets (from ``F.unfold``) positions are known exactly; otherwise
    each column is a patch start and the fold is a transposed window over the patch grid."""
    tensor, info = call.first
    size, kernel, dilation, pad, stride = (tuple(call.arg(i, n)) for i, n in
                                           ((1, "output_size"), (2, "kernel_size"),
                                            (3, "dilation"), (4, "padding"), (5, "stride")))
    dims = info.layout.dims
    columns = [f for f in dims[-1].factors if f.count > 1 or f.axis is not None]
    axes = [f.axis for f in columns]
    if len(columns) != 2 or None in axes or len(set(axes)) != 2:
        return unknown(call, call.tracked())
    field = info.field
    offsets = {f.axis for f in dims[-2].factors if f.axis is not None}
    base = list(info.layout.base)
    if offsets != set(axes):
        for f in columns:
            assert f.axis is not None
            field = field.regrid(f.axis, base[f.axis], f.step)
            base[f.axis] = 0
        ks = tuple(kernel[axes.index(a)] if a in axes else 1 for a in range(call.ndim))
        ss = tuple(stride[axes.index(a)] if a in axes else 1 for a in range(call.ndim))
        ds = tuple(dilation[axes.index(a)] if a in axes else 1 for a in range(call.ndim))
        ps = tuple((pad[axes.index(a)],) * 2 if a in axes else (0, 0) for a in range(call.ndim))
        field = field.then(ks, ss, ps, ds, transposed=True)
    else:
        base = [0] * call.ndim
    channel = lay.plain_dim(call.out_shape[-3])
    spatial = tuple(Dim((Factor(a, n, 1),)) for a, n in zip(axes, size))
    layout = Layout(tuple(dims[:-2]) + (channel,) + spatial, tuple(base))
    if layout.shape != call.out_shape:
        return unknown(call, call.tracked())
    return Outcome([Result(field, layout, info.context)])
