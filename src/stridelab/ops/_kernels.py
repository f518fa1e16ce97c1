"""The three computational paths of a convolution, forward and backward, on resolved geometry.

* ``pointwise``: 1x1 kernel, no padding. Subsample ``x[..., ::s, ::s]`` (1/prod(s) of the input),
  then one matrix product per image, written straight into channels-first layout.
* ``depthwise``: one input channel per group. Each kernel tap is a strided view of the padded
  channels-last input, multiplied by a per-channel weight and accumulated: no patch matrix.
* ``gemm`` (everything else): gather the patches of a batch chunk from the padded channels-last
  buffer into a ``(positions, taps * channels)`` matrix and multiply with the weight by BLAS.
  Only output positions are gathered, so the work is ``prod(out)`` rows: it scales as
  1/prod(stride). The input gradient multiplies the output gradient by the weight (one GEMM) and
  adds each tap's slice into a strided window of the padded gradient buffer (col2im), so no
  inserted zeros are ever multiplied.

All functions here trust their arguments (validated in :mod:`stridelab.ops.conv`).
"""

from __future__ import annotations

from itertools import product

import numpy as np

from stridelab.ops._geometry import ConvGeometry
from stridelab.ops._windows import (
    channels_last_padded,
    copy_into,
    parallel,
    tap_index,
    to_channels_first,
    window_view,
)

CHUNK_BYTES = 24 << 20  # patch-matrix size per batch chunk


def _chunks(geom: ConvGeometry, itemsize: int) -> list[slice]:
    row = geom.out_positions * geom.taps * geom.in_channels * itemsize
    per = max(1, min(geom.batch, CHUNK_BYTES // max(row, 1)))
    return [slice(a, min(a + per, geom.batch)) for a in range(0, geom.batch, per)]


def _taps(geom: ConvGeometry) -> list[tuple[int, ...]]:
    return list(product(*(range(k) for k in geom.kernel)))


def _subsample(x: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    """Pointwise input as a contiguous ``(N, C, positions)`` array (a view when stride is 1)."""
    index = (slice(None), slice(None), *(slice(0, (o - 1) * s + 1, s)
                                         for o, s in zip(geom.out_size, geom.stride)))
    sub = x[index]
    if sub.flags.c_contiguous:
        return sub.reshape(geom.batch, geom.in_channels, geom.out_positions)
    out = np.empty(sub.shape, dtype=x.dtype)
    copy_into(out, sub)
    return out.reshape(geom.batch, geom.in_channels, geom.out_positions)


def _weight_matrix(w: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    """``(C_out, C_in/g, *k)`` -> ``(g, taps * C_in/g, C_out/g)``, rows ordered (tap, channel)."""
    g, nd = geom.groups, geom.ndim
    wg = w.reshape(g, geom.out_per_group, geom.in_per_group, *geom.kernel)
    order = (0, *range(3, 3 + nd), 2, 1)
    return np.ascontiguousarray(wg.transpose(order)).reshape(
        g, geom.taps * geom.in_per_group, geom.out_per_group)


def _gather(view: np.ndarray, chunk: slice, geom: ConvGeometry) -> np.ndarray:
    """Patches of ``chunk`` as ``(g, n * positions, taps * C_in/g)`` (one contiguous copy)."""
    part = view[chunk]
    n = part.shape[0]
    grouped = part.reshape(*part.shape[:-1], geom.groups, geom.in_per_group)
    cols = np.empty((geom.groups, *grouped.shape[:-2], geom.in_per_group), dtype=view.dtype)
    if geom.groups > 1:
        copy_into(cols, np.moveaxis(grouped, -2, 0))
    else:
        copy_into(cols[0], grouped[..., 0, :])
    return cols.reshape(geom.groups, n * geom.out_positions, geom.taps * geom.in_per_group)


# ----------------------------------------------------------------------------- forward
def forward(x: np.ndarray, w: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    """``conv(x, w)`` without bias, channels-first result of shape ``geom.output_shape()``."""
    if geom.is_pointwise and geom.groups == 1:
        sub = _subsample(x, geom)
        out = np.matmul(w.reshape(geom.out_channels, geom.in_channels), sub)
        return out.reshape(geom.output_shape())
    buf = channels_last_padded(x, geom.pads, geom.padded_extent)
    if geom.is_depthwise:
        return _depthwise_forward(buf, w, geom)
    view = window_view(buf, geom)
    wmat = _weight_matrix(w, geom)
    g, cog = geom.groups, geom.out_per_group
    out_cl = np.empty((geom.batch, *geom.out_size, geom.out_channels), dtype=x.dtype)
    for chunk in _chunks(geom, x.itemsize):
        cols = _gather(view, chunk, geom)
        rows = cols.shape[1]
        target = out_cl[chunk].reshape(rows, g, cog)
        if g == 1:
            np.matmul(cols[0], wmat[0], out=target[:, 0, :])
        else:
            target[...] = np.matmul(cols, wmat).transpose(1, 0, 2)
    return to_channels_first(out_cl)


def _depthwise_forward(buf: np.ndarray, w: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    mult = geom.out_per_group
    wt = w.reshape(geom.in_channels, mult, *geom.kernel)
    out = np.zeros((geom.batch, *geom.out_size, geom.in_channels, mult), dtype=buf.dtype)
    taps = _taps(geom)

    def run(chunk: slice) -> None:
        acc = out[chunk]
        tmp = np.empty_like(acc)
        for tap in taps:
            xv = buf[chunk][tap_index(geom, tap)]
            np.multiply(xv[..., None], wt[(slice(None), slice(None), *tap)], out=tmp)
            acc += tmp

    parallel(run, geom.batch, out.nbytes)
    return to_channels_first(out.reshape(geom.batch, *geom.out_size, geom.out_channels))


# ----------------------------------------------------------------------------- backward
def backward(
    grad_out: np.ndarray, x: np.ndarray | None, w: np.ndarray, geom: ConvGeometry,
    need_x: bool, need_w: bool,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(grad_x, grad_weight)`` of ``conv(x, w)``; ``x`` may be None when ``need_w`` is False."""
    if geom.is_pointwise and geom.groups == 1:
        return _pointwise_backward(grad_out, x, w, geom, need_x, need_w)
    buf = channels_last_padded(x, geom.pads, geom.padded_extent) if need_w and x is not None \
        else None
    g_cl = np.empty((geom.batch, *geom.out_size, geom.out_channels), dtype=grad_out.dtype)
    copy_into(g_cl, np.moveaxis(grad_out, 1, -1))
    if geom.is_depthwise:
        return _depthwise_backward(g_cl, buf, w, geom, need_x)
    g, cog, kc = geom.groups, geom.out_per_group, geom.taps * geom.in_per_group
    grad_w = np.zeros((g, kc, cog), dtype=grad_out.dtype) if need_w else None
    grad_buf = None
    wmat_t = None
    if need_x:
        grad_buf = np.zeros((geom.batch, *geom.padded_extent, geom.in_channels), dtype=w.dtype)
        wmat_t = _weight_matrix(w, geom).transpose(0, 2, 1)
    view = window_view(buf, geom) if buf is not None else None
    for chunk in _chunks(geom, grad_out.dtype.itemsize):
        part = g_cl[chunk]
        rows = part.shape[0] * geom.out_positions
        gmat = part.reshape(rows, g, cog).transpose(1, 0, 2)  # (g, rows, cog), a view
        if grad_w is not None and view is not None:
            cols = _gather(view, chunk, geom)
            grad_w += np.matmul(cols.transpose(0, 2, 1), gmat)
        if grad_buf is not None and wmat_t is not None:
            gcols = np.matmul(gmat, wmat_t)  # (g, rows, taps * C_in/g)
            _col2im(gcols, grad_buf[chunk], geom)
    grad_x = None
    if grad_buf is not None:
        grad_x = _crop_to_input(grad_buf, geom)
    grad_weight = None
    if grad_w is not None:
        grad_weight = _weight_from_matrix(grad_w, geom)
    return grad_x, grad_weight


def _col2im(gcols: np.ndarray, grad_buf: np.ndarray, geom: ConvGeometry) -> None:
    """Add every tap's column block into its strided window of the padded gradient buffer."""
    n = grad_buf.shape[0]
    g, cig = geom.groups, geom.in_per_group
    blocks = gcols.reshape(g, n, *geom.out_size, geom.taps, cig)
    taps = _taps(geom)

    def run(chunk: slice) -> None:
        for index, tap in enumerate(taps):
            window = grad_buf[chunk][tap_index(geom, tap)]
            src = blocks[:, chunk, ..., index, :]
            if g == 1:
                window += src[0]
            else:
                shaped = window.reshape(*window.shape[:-1], g, cig)
                shaped += np.moveaxis(src, 0, -2)

    parallel(run, n, gcols.nbytes)


def _crop_to_input(grad_buf: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    """Padded channels-last gradient -> ``(N, C, *in_size)``; unread pixels get zero."""
    grad_x = np.zeros(geom.input_shape(), dtype=grad_buf.dtype)
    src: list[slice] = [slice(None)]
    dst: list[slice] = [slice(None), slice(None)]
    for (before, _), size, length in zip(geom.pads, geom.in_size, geom.padded_extent):
        stop = min(size, length - before)
        src.append(slice(before, before + stop))
        dst.append(slice(0, stop))
    copy_into(grad_x[tuple(dst)], np.moveaxis(grad_buf[tuple(src)], -1, 1))
    return grad_x


def _weight_from_matrix(grad_w: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    """Inverse of :func:`_weight_matrix`: ``(g, taps * C_in/g, C_out/g)`` -> PyTorch layout."""
    g, nd = geom.groups, geom.ndim
    shaped = grad_w.reshape(g, *geom.kernel, geom.in_per_group, geom.out_per_group)
    order = (0, nd + 2, nd + 1, *range(1, nd + 1))
    return np.ascontiguousarray(shaped.transpose(order)).reshape(
        geom.out_channels, geom.in_per_group, *geom.kernel)


def _pointwise_backward(
    grad_out: np.ndarray, x: np.ndarray | None, w: np.ndarray, geom: ConvGeometry,
    need_x: bool, need_w: bool,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    g = grad_out.reshape(geom.batch, geom.out_channels, geom.out_positions)
    grad_weight = None
    if need_w and x is not None:
        sub = _subsample(x, geom)
        grad_weight = np.matmul(g, sub.transpose(0, 2, 1)).sum(axis=0).reshape(w.shape)
    grad_x = None
    if need_x:
        w2 = w.reshape(geom.out_channels, geom.in_channels)
        gsub = np.matmul(w2.T, g).reshape(geom.batch, geom.in_channels, *geom.out_size)
        if all(s == 1 for s in geom.stride):
            grad_x = gsub
        else:
            grad_x = np.zeros(geom.input_shape(), dtype=grad_out.dtype)
            index = (slice(None), slice(None), *(slice(0, (o - 1) * s + 1, s)
                                                 for o, s in zip(geom.out_size, geom.stride)))
            copy_into(grad_x[index], gsub)
    return grad_x, grad_weight


def _depthwise_backward(
    g_cl: np.ndarray, buf: np.ndarray | None, w: np.ndarray, geom: ConvGeometry, need_x: bool,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    mult, c = geom.out_per_group, geom.in_channels
    g5 = g_cl.reshape(geom.batch, *geom.out_size, c, mult)
    wt = w.reshape(c, mult, *geom.kernel)
    taps = _taps(geom)
    grad_weight = None
    if buf is not None:
        grad_weight = np.empty_like(wt)
        sum_axes = tuple(range(geom.ndim + 1))
        for tap in taps:
            xv = buf[tap_index(geom, tap)]
            prod = g5 * xv[..., None]
            grad_weight[(slice(None), slice(None), *tap)] = prod.sum(axis=sum_axes)
        grad_weight = grad_weight.reshape(w.shape)
    grad_x = None
    if need_x:
        grad_buf = np.zeros((geom.batch, *geom.padded_extent, c), dtype=w.dtype)

        def run(chunk: slice) -> None:
            for tap in taps:
                window = grad_buf[chunk][tap_index(geom, tap)]
                wtap = wt[(slice(None), slice(None), *tap)]
                if mult == 1:
                    window += g5[chunk][..., 0] * wtap[:, 0]
                else:
                    window += (g5[chunk] * wtap).sum(axis=-1)

        parallel(run, geom.batch, g_cl.nbytes)
        grad_x = _crop_to_input(grad_buf, geom)
    return grad_x, grad_weight
