"""Max and average pooling, 1-D to 3-D, forward and backward, in PyTorch's or ONNX's convention.

Output sizes come from ``arith.pool_output_size`` (floor or ``ceil_mode``; a last window that
would start in the right padding is dropped). ``convention="torch"`` (default) keeps PyTorch's
rules: each side's padding at most ``kernel // 2``, max-pool indices per ``(n, c)`` plane.
``convention="onnx"`` follows ONNX MaxPool / AveragePool: any padding, and indices flat over the
whole ``(N, C, *S)`` tensor, row-major (``storage_order=0``) or column-major within each plane
(``storage_order=1``). Both pools take ``dilation`` (ONNX AveragePool has it since opset 19;
PyTorch's avg pool has none, and dilation 1 is PyTorch's result). ``stride=None`` means stride =
kernel. Each kernel tap is a strided view of one padded buffer, so the work is
``prod(out) * prod(k)`` comparisons or additions per channel.

* max: padding never wins (it is ``-inf``, or the dtype's minimum for integer inputs, which
  max pooling accepts); the first maximum in row-major tap order wins, and a NaN always
  propagates (the last NaN's index is kept), as in PyTorch's CPU kernel. A dilated window can
  hold only padding: its value is ``-inf``, its index ``-1``, and it sends no gradient (PyTorch
  2.x corrupts memory in that case).
* avg: the taps ``start + t * d`` (``start = u * s - p_before``) that fall inside the padded
  extent ``[-p_before, i + p_after)`` count when ``count_include_pad=True`` (padding counted),
  only those inside ``[0, i)`` otherwise; ``divisor_override`` replaces both.
"""

from __future__ import annotations

from itertools import product
from math import prod

import numpy as np

from stridelab import arith
from stridelab.arith import PaddingSpec, check_convention, check_int
from stridelab.ops._checks import (
    check_bool,
    check_grad,
    check_input,
    check_pool_input,
    spatial_tuple,
)
from stridelab.ops._geometry import ConvGeometry, resolve_padding
from stridelab.ops._windows import tap_index

IntOrTuple = int | tuple[int, ...]


def pool_geometry(
    x: np.ndarray, kernel: IntOrTuple, stride: IntOrTuple | None, padding: PaddingSpec,
    dilation: IntOrTuple, ceil_mode: bool, convention: str = "torch",
) -> ConvGeometry:
    """Pooling as a per-channel geometry (``groups == channels``); sizes from arith."""
    nd = x.ndim - 2
    ks = spatial_tuple("kernel", kernel, nd, 1)
    ss = ks if stride is None else spatial_tuple("stride", stride, nd, 1)
    ds = spatial_tuple("dilation", dilation, nd, 1)
    check_bool("ceil_mode", ceil_mode)
    in_size = tuple(x.shape[2:])
    try:
        pads = resolve_padding(padding, in_size, ks, ss, ds)
        out = arith.pool_output_size(in_size, ks, ss, pads, ds, bool(ceil_mode),
                                     check_convention(convention))
    except ValueError as err:
        raise ValueError(f"{err} (x shape {x.shape}, kernel {ks}, stride {ss})") from None
    assert isinstance(out, tuple)
    c = x.shape[1]
    return ConvGeometry(x.shape[0], c, c, c, in_size, ks, ss, ds, pads, out)


def _padded(x: np.ndarray, geom: ConvGeometry, fill: float) -> np.ndarray:
    """Channels-first padded buffer covering every window (ceil mode may read past ``p_after``)."""
    extent = geom.padded_extent
    buf = np.full((*x.shape[:2], *extent), fill, dtype=x.dtype)
    dst: list[slice] = [slice(None), slice(None)]
    src: list[slice] = [slice(None), slice(None)]
    for (before, _), size, length in zip(geom.pads, geom.in_size, extent):
        stop = max(0, min(size, length - before))
        dst.append(slice(min(before, length), min(before, length) + stop))
        src.append(slice(0, stop))
    buf[tuple(dst)] = x[tuple(src)]
    return buf


def _taps(geom: ConvGeometry) -> list[tuple[int, ...]]:
    return list(product(*(range(k) for k in geom.kernel)))


def _starts(geom: ConvGeometry) -> list[np.ndarray]:
    """Per axis, the input index where each output window starts (negative inside padding)."""
    return [np.arange(o) * s - pb for o, s, (pb, _) in zip(geom.out_size, geom.stride, geom.pads)]


def _flat_index(positions: list[np.ndarray], in_size: tuple[int, ...],
                column_major: bool = False) -> np.ndarray:
    """Broadcast per-axis positions to flat indices into one ``(n, c)`` plane.

    Row-major (last axis fastest) or, with ``column_major``, first axis fastest (ONNX
    ``storage_order=1``).
    """
    nd = len(positions)
    flat = np.zeros((1,) * nd, dtype=np.int64)
    order = reversed(range(nd)) if column_major else range(nd)
    for axis in order:
        pos = positions[axis]
        shape = [1] * nd
        shape[axis] = -1
        flat = flat * in_size[axis] + pos.reshape(shape)
    return flat


def max_pool(
    x: np.ndarray, kernel: IntOrTuple, stride: IntOrTuple | None = None, padding: PaddingSpec = 0,
    dilation: IntOrTuple = 1, ceil_mode: bool = False, return_indices: bool = False,
    convention: str = "torch", storage_order: int = 0,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Max pooling of ``x`` ``(N, C, *S)``; with ``return_indices`` also the int64 argmax indices.

    ``x`` may be float32 / float64 or any integer dtype. Indices: ``convention="torch"`` gives
    positions in each ``(n, c)`` plane (PyTorch's ``return_indices``); ``"onnx"`` gives flat
    positions in the whole tensor (ONNX MaxPool's ``Indices``), with ``storage_order`` 0 (row-major)
    or 1 (column-major within a plane).
    """
    xa = check_pool_input("x", x, allow_int=True)
    check_bool("return_indices", return_indices)
    if storage_order not in (0, 1) or isinstance(storage_order, bool):
        raise ValueError(f"storage_order must be 0 (row-major) or 1 (column-major), got "
                         f"{storage_order!r}")
    geom = pool_geometry(xa, kernel, stride, padding, dilation, ceil_mode, convention)
    column_major = storage_order == 1
    floating = np.issubdtype(xa.dtype, np.floating)
    fill = -np.inf if floating else np.iinfo(xa.dtype).min
    buf = _padded(xa, geom, fill)
    starts = _starts(geom)
    first = []
    for start, d in zip(starts, geom.dilation):  # first real tap of each window
        behind = np.maximum(-start, 0)
        first.append(start + -(-behind // d) * d)
    best = np.full(geom.output_shape(), fill, dtype=xa.dtype)
    index = np.broadcast_to(_flat_index(first, geom.in_size, column_major), best.shape).copy()
    empty = [pos >= size for pos, size in zip(first, geom.in_size)]
    if any(e.any() for e in empty):  # dilation can leave a window holding only padding
        hole = np.zeros((1,) * geom.ndim, dtype=bool)
        for axis, e in enumerate(empty):
            hole = hole | e.reshape([-1 if a == axis else 1 for a in range(geom.ndim)])
        index[np.broadcast_to(hole, index.shape)] = -1
    for tap in _taps(geom):
        values = buf[tap_index(geom, tap, leading=2)]
        update = (values > best) | np.isnan(values) if floating else values > best
        np.copyto(best, values, where=update)
        if return_indices:
            positions = [st + t * d for st, t, d in zip(starts, tap, geom.dilation)]
            np.copyto(index, np.broadcast_to(
                _flat_index(positions, geom.in_size, column_major), best.shape), where=update)
    if not return_indices:
        return best
    if convention == "onnx":  # flat over (N, C, *S): add each plane's offset
        planes = np.arange(geom.batch * geom.in_channels, dtype=np.int64) * prod(geom.in_size)
        offsets = planes.reshape(geom.batch, geom.in_channels, *(1,) * geom.ndim)
        index = np.where(index >= 0, index + offsets, index)
    return best, index


def max_pool_backward(
    grad_out: np.ndarray, x: np.ndarray, kernel: IntOrTuple, stride: IntOrTuple | None = None,
    padding: PaddingSpec = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False,
    indices: np.ndarray | None = None, convention: str = "torch",
) -> np.ndarray:
    """Gradient of :func:`max_pool` w.r.t. ``x``: each output's gradient goes to its argmax.

    ``indices`` (from ``return_indices=True`` with the same ``convention``: per plane for
    ``"torch"``, flat for ``"onnx"``, row-major) skips recomputing the argmax.
    """
    xa = check_input("x", x)
    geom = pool_geometry(xa, kernel, stride, padding, dilation, ceil_mode, convention)
    g = check_grad("grad_out", grad_out, geom.output_shape(), xa.dtype)
    if indices is None:
        result = max_pool(xa, kernel, stride, padding, dilation, ceil_mode, return_indices=True,
                          convention=convention)
        assert isinstance(result, tuple)
        indices = result[1]
    if not isinstance(indices, np.ndarray) or indices.shape != g.shape:
        raise ValueError(f"indices must be an integer array of shape {g.shape}, got "
                         f"{getattr(indices, 'shape', type(indices).__name__)}")
    planes, plane = geom.batch * geom.in_channels, prod(geom.in_size)
    offsets = (np.arange(planes, dtype=np.int64) * plane).reshape(planes, 1)
    if convention == "onnx":  # already flat over the whole tensor
        offsets = np.zeros_like(offsets)
    flat = (indices.reshape(planes, -1) + offsets).ravel()
    weights = g.reshape(-1)
    real = indices.reshape(-1) >= 0  # -1 marks a window made only of padding
    if not real.all():
        flat, weights = flat[real], weights[real]
    summed = np.bincount(flat, weights=weights, minlength=planes * plane)
    return summed.astype(xa.dtype, copy=False).reshape(xa.shape)


def _divisor(
    geom: ConvGeometry, count_include_pad: bool, divisor_override: int | None,
) -> np.ndarray | int:
    """Per output position, the taps that count: inside ``[-p_b, i + p_a)`` when padding is
    counted, inside ``[0, i)`` otherwise (dilated taps ``start + t * d``)."""
    if divisor_override is not None:
        return divisor_override
    total = np.ones((1,) * geom.ndim, dtype=np.int64)
    for axis, (start, k, d, i, (pb, pa)) in enumerate(
            zip(_starts(geom), geom.kernel, geom.dilation, geom.in_size, geom.pads)):
        taps = start[:, None] + np.arange(k) * d
        low, high = (-pb, i + pa) if count_include_pad else (0, i)
        length = ((taps >= low) & (taps < high)).sum(axis=1)
        shape = [1] * geom.ndim
        shape[axis] = -1
        total = total * length.reshape(shape)
    return total


def _avg_setup(
    x: object, kernel: IntOrTuple, stride: IntOrTuple | None, padding: PaddingSpec,
    dilation: IntOrTuple, ceil_mode: bool, count_include_pad: bool,
    divisor_override: int | None, convention: str,
) -> tuple[np.ndarray, ConvGeometry, np.ndarray]:
    xa = check_input("x", x)
    check_bool("count_include_pad", count_include_pad)
    if divisor_override is not None:
        check_int("divisor_override", divisor_override, 1)
    geom = pool_geometry(xa, kernel, stride, padding, dilation, ceil_mode, convention)
    divisor = _divisor(geom, bool(count_include_pad), divisor_override)
    return xa, geom, np.asarray(divisor).astype(xa.dtype)


def avg_pool(
    x: np.ndarray, kernel: IntOrTuple, stride: IntOrTuple | None = None, padding: PaddingSpec = 0,
    ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: int | None = None,
    dilation: IntOrTuple = 1, convention: str = "torch",
) -> np.ndarray:
    """Average pooling of ``x`` ``(N, C, *S)`` (PyTorch's divisor rules; ``dilation`` as ONNX).

    ``convention="onnx"`` lifts PyTorch's ``padding <= kernel // 2`` limit. ONNX's
    ``count_include_pad`` defaults to 0; pass it explicitly.
    """
    xa, geom, divisor = _avg_setup(x, kernel, stride, padding, dilation, ceil_mode,
                                   count_include_pad, divisor_override, convention)
    buf = _padded(xa, geom, 0.0)
    total = np.zeros(geom.output_shape(), dtype=xa.dtype)
    for tap in _taps(geom):
        total += buf[tap_index(geom, tap, leading=2)]
    with np.errstate(invalid="ignore", divide="ignore"):  # a window of padding only: 0 / 0
        np.divide(total, divisor, out=total)
    return total


def avg_pool_backward(
    grad_out: np.ndarray, x: np.ndarray, kernel: IntOrTuple, stride: IntOrTuple | None = None,
    padding: PaddingSpec = 0, ceil_mode: bool = False, count_include_pad: bool = True,
    divisor_override: int | None = None, dilation: IntOrTuple = 1, convention: str = "torch",
) -> np.ndarray:
    """Gradient of :func:`avg_pool`: each output's gradient / divisor spread over its window."""
    xa, geom, divisor = _avg_setup(x, kernel, stride, padding, dilation, ceil_mode,
                                   count_include_pad, divisor_override, convention)
    g = check_grad("grad_out", grad_out, geom.output_shape(), xa.dtype)
    share = g / divisor
    buf = np.zeros((*xa.shape[:2], *geom.padded_extent), dtype=xa.dtype)
    for tap in _taps(geom):
        buf[tap_index(geom, tap, leading=2)] += share
    grad_x = np.zeros_like(xa)
    dst: list[slice] = [slice(None), slice(None)]
    src: list[slice] = [slice(None), slice(None)]
    for (before, _), size, length in zip(geom.pads, geom.in_size, geom.padded_extent):
        stop = max(0, min(size, length - before))
        src.append(slice(before, before + stop))
        dst.append(slice(0, stop))
    grad_x[tuple(dst)] = buf[tuple(src)]
    return grad_x
