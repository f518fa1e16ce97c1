"""General convolution as patch gathering plus BLAS (im2col), forward and backward.

Forward: the patches of a batch chunk are copied from the padded channels-last input into a
``(positions, taps * C_in/g)`` matrix (rows are *output* positions only, so stride ``s`` gathers
1/prod(s) of the stride-1 rows) and multiplied by the ``(taps * C_in/g, C_out/g)`` weight matrix.
Backward: ``grad_weight = patches.T @ grad_out`` and ``grad_patches = grad_out @ W.T``; the latter
is added tap by tap into strided windows of the input gradient
(:class:`~stridelab.ops._gradbuffer.GradBuffer`): the transposed convolution without inserted
zeros.
"""

from __future__ import annotations

from itertools import product

import numpy as np

from stridelab.ops._geometry import ConvGeometry
from stridelab.ops._gradbuffer import GradBuffer
from stridelab.ops._layout import as_channels_first
from stridelab.ops._windows import channels_last_padded, copy_into, parallel, window_view

CHUNK_BYTES = 64 << 20  # patch-matrix bytes per batch chunk (bigger GEMMs; bounded memory)
FEW_CHANNELS = 16  # below this, input gradients are accumulated channels-first (long runs)


def chunks(geom: ConvGeometry, itemsize: int) -> list[slice]:
    row = geom.out_positions * geom.taps * geom.in_channels * itemsize
    per = max(1, min(geom.batch, CHUNK_BYTES // max(row, 1)))
    return [slice(a, min(a + per, geom.batch)) for a in range(0, geom.batch, per)]


def weight_matrix(w: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    """``(C_out, C_in/g, *k)`` -> ``(g, taps * C_in/g, C_out/g)``, rows ordered (tap, channel)."""
    g, nd = geom.groups, geom.ndim
    wg = w.reshape(g, geom.out_per_group, geom.in_per_group, *geom.kernel)
    order = (0, *range(3, 3 + nd), 2, 1)
    return np.ascontiguousarray(wg.transpose(order)).reshape(
        g, geom.taps * geom.in_per_group, geom.out_per_group)


def weight_from_matrix(grad_w: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    """Inverse of :func:`weight_matrix`: back to PyTorch's ``(C_out, C_in/g, *k)``."""
    g, nd = geom.groups, geom.ndim
    shaped = grad_w.reshape(g, *geom.kernel, geom.in_per_group, geom.out_per_group)
    order = (0, nd + 2, nd + 1, *range(1, nd + 1))
    return np.ascontiguousarray(shaped.transpose(order)).reshape(
        geom.out_channels, geom.in_per_group, *geom.kernel)


def gather(view: np.ndarray, chunk: slice, geom: ConvGeometry) -> np.ndarray:
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


def forward(x: np.ndarray, w: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    buf = channels_last_padded(x, geom.pads, geom.padded_extent)
    view = window_view(buf, geom)
    wmat = weight_matrix(w, geom)
    g, cog = geom.groups, geom.out_per_group
    out_cl = np.empty((geom.batch, *geom.out_size, geom.out_channels), dtype=x.dtype)
    for chunk in chunks(geom, x.itemsize):
        cols = gather(view, chunk, geom)
        target = out_cl[chunk].reshape(cols.shape[1], g, cog)
        if g == 1:
            np.matmul(cols[0], wmat[0], out=target[:, 0, :])
        else:
            target[...] = np.matmul(cols, wmat).transpose(1, 0, 2)
    return as_channels_first(out_cl)


def backward(
    g_cl: np.ndarray, x: np.ndarray | None, w: np.ndarray, geom: ConvGeometry,
    need_x: bool, need_w: bool,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``g_cl`` is the output gradient as contiguous ``(N, *out, C_out)``."""
    g, cog, kc = geom.groups, geom.out_per_group, geom.taps * geom.in_per_group
    view = None
    grad_w = None
    if need_w and x is not None:
        view = window_view(channels_last_padded(x, geom.pads, geom.padded_extent), geom)
        grad_w = np.zeros((g, kc, cog), dtype=g_cl.dtype)
    few = g == 1 and geom.in_channels < FEW_CHANNELS
    acc = GradBuffer(geom, geom.in_channels, w.dtype, channels_first=few) if need_x else None
    wmat_t = weight_matrix(w, geom).transpose(0, 2, 1) if need_x else None
    taps = list(product(*(range(k) for k in geom.kernel)))
    for chunk in chunks(geom, g_cl.dtype.itemsize):
        part = g_cl[chunk]
        rows = part.shape[0] * geom.out_positions
        gmat = part.reshape(rows, g, cog).transpose(1, 0, 2)  # (g, rows, C_out/g), a view
        if grad_w is not None and view is not None:
            cols = gather(view, chunk, geom)
            grad_w += np.matmul(cols.transpose(0, 2, 1), gmat)
        if acc is not None and wmat_t is not None and few:
            gcols_t = np.matmul(wmat_t[0].T, gmat[0].T)  # (taps * C_in, rows)
            _col2im_first(gcols_t, acc, chunk, taps, geom)
        elif acc is not None and wmat_t is not None:
            gcols = np.matmul(gmat, wmat_t)  # (g, rows, taps * C_in/g)
            _col2im(gcols, acc, chunk, taps, geom)
    grad_x = acc.to_input() if acc is not None else None
    grad_weight = weight_from_matrix(grad_w, geom) if grad_w is not None else None
    return grad_x, grad_weight


def _col2im(
    gcols: np.ndarray, acc: GradBuffer, chunk: slice, taps: list[tuple[int, ...]],
    geom: ConvGeometry,
) -> None:
    """Add every tap's block of patch gradients into its strided window (channels-last)."""
    g, cig = geom.groups, geom.in_per_group
    n = chunk.stop - chunk.start
    blocks = gcols.reshape(g, n, *geom.out_size, geom.taps, cig)

    def run(part: slice) -> None:
        sub = slice(chunk.start + part.start, chunk.start + part.stop)
        for index, tap in enumerate(taps):
            window = acc.window(sub, tap)
            src = blocks[:, part, ..., index, :]
            if g == 1:
                window += src[0]
            else:
                shaped = window.reshape(*window.shape[:-1], g, cig)
                shaped += np.moveaxis(src, 0, -2)

    parallel(run, n, gcols.nbytes)


def _col2im_first(
    gcols_t: np.ndarray, acc: GradBuffer, chunk: slice, taps: list[tuple[int, ...]],
    geom: ConvGeometry,
) -> None:
    """Few channels: tap blocks ``(C, n, *out)`` added to the channels-first phase buffer."""
    n = chunk.stop - chunk.start
    blocks = gcols_t.reshape(geom.taps, geom.in_channels, n, *geom.out_size)

    def run(part: slice) -> None:
        sub = slice(chunk.start + part.start, chunk.start + part.stop)
        for index, tap in enumerate(taps):
            window = acc.window(sub, tap)
            window += np.moveaxis(blocks[index][:, part], 0, 1)

    parallel(run, n, gcols_t.nbytes)
