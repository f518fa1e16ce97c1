"""General convolution as patch gathering plus BLAS (im2col), forward and backward.

Forward: the output positions are cut into cache-sized pieces (:mod:`~stridelab.ops._chunks`);
the patches of a piece are copied from the padded channels-last input into the thread's reused
``(rows, taps * C_in/g)`` buffer (rows are *output* positions only, so stride ``s`` gathers
1/prod(s) of the stride-1 rows) and multiplied by the ``(taps * C_in/g, C_out/g)`` weight matrix
straight into the result. Backward, per piece: ``grad_weight += patches.T @ grad_out`` and
``grad_patches = grad_out @ W.T``; the latter is added tap by tap into strided windows of the
input gradient (:class:`~stridelab.ops._gradbuffer.GradBuffer`): the transposed convolution
without inserted zeros. Pieces run on the call's threads with single-threaded BLAS.
"""

from __future__ import annotations

from itertools import product

import numpy as np

from stridelab.ops._chunks import Piece, plan, stripes, sum_stripes
from stridelab.ops._geometry import ConvGeometry
from stridelab.ops._gradbuffer import GradBuffer
from stridelab.ops._layout import as_channels_first
from stridelab.ops._parallel import run_pieces
from stridelab.ops._weights import WEIGHTS
from stridelab.ops._windows import channels_last_padded, window_view
from stridelab.ops._workspace import scratch

FEW_CHANNELS = 16  # below this, input gradients are accumulated channels-first (long runs)


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


def cached_weight_matrix(w: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    """:func:`weight_matrix`, reused while ``w`` is unchanged (read-only; see ``_weights``)."""
    return WEIGHTS.get(w, ("gemm", geom.groups), lambda a: weight_matrix(a, geom))


def tap_weights(w: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    """``(C_out, C_in/g, *k)`` -> ``(g, taps, C_out/g, C_in/g)``: per tap, the matrix that takes
    an output gradient row to that tap's patch-gradient row (cached like
    :func:`cached_weight_matrix`)."""
    def make(a: np.ndarray) -> np.ndarray:
        shaped = weight_matrix(a, geom).reshape(geom.groups, geom.taps, geom.in_per_group,
                                                geom.out_per_group)
        return np.ascontiguousarray(shaped.transpose(0, 1, 3, 2))
    return WEIGHTS.get(w, ("gemm_taps", geom.groups), make)


SHORT_RUN = 64  # numbers: kernel-row runs up to this long are gathered as opaque elements


def _kernel_rows(a: np.ndarray) -> np.ndarray | None:
    """``a`` ``(..., k_last, C)`` as ``(...)`` elements of one opaque ``k_last * C``-number run
    each (a void dtype), when those runs are short (at most :data:`SHORT_RUN` numbers) and
    contiguous in memory (dilation 1 on the last axis); else None.

    Copying patches run by run instead of number by number: NumPy's inner copy loop then goes
    along the output positions (one run each) instead of along one short run; for the stem
    (3 channels x 7 taps = 21 numbers per run) its gather took 8.4 instead of 10.3 ms at stride
    2 (33.8 vs 41.8 ms at stride 1) on one thread here. Long runs (many channels) gain nothing.
    The copied bytes are the same.
    """
    k_last, channels = a.shape[-2:]
    if k_last * channels > SHORT_RUN:
        return None
    if a.strides[-1] != a.itemsize or a.strides[-2] != channels * a.itemsize:
        return None
    run = np.dtype((np.void, k_last * channels * a.itemsize))
    merged = a.reshape(*a.shape[:-2], k_last * channels)  # a view: the two axes are contiguous
    return merged.view(run)[..., 0]


def gather(view: np.ndarray, piece: Piece, geom: ConvGeometry) -> np.ndarray:
    """Patches of ``piece`` as ``(g, rows, taps * C_in/g)`` in this thread's column buffer."""
    part = view[piece.images, piece.rows]
    cig = geom.in_per_group
    cols = scratch("cols", (geom.groups, piece.count, geom.taps * cig), view.dtype)
    shaped = cols.reshape(geom.groups, *part.shape[:-1], cig)
    runs = _kernel_rows(part) if geom.groups == 1 else None
    if runs is not None:
        target = _kernel_rows(shaped[0])
        assert target is not None  # a C-contiguous buffer
        np.copyto(target, runs)
    elif geom.groups == 1:
        np.copyto(shaped[0], part)
    else:
        grouped = part.reshape(*part.shape[:-1], geom.groups, cig)
        np.copyto(shaped, np.moveaxis(grouped, -2, 0))
    return cols


def padded_view(x: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    """Window view of ``x`` padded channels-last in this thread's reused ``padded`` buffer."""
    shape = (geom.batch, *geom.padded_extent, geom.in_channels)
    buf = channels_last_padded(x, geom.pads, geom.padded_extent,
                               out=scratch("padded", shape, x.dtype))
    return window_view(buf, geom)


def forward(x: np.ndarray, w: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    view = padded_view(x, geom)
    wmat = cached_weight_matrix(w, geom)
    g, cog = geom.groups, geom.out_per_group
    out_cl = np.empty((geom.batch, *geom.out_size, geom.out_channels), dtype=x.dtype)
    out_rows = out_cl.reshape(-1, g, cog)
    pieces = [piece for unit in plan(geom, x.itemsize) for piece in unit]

    def work(index: int) -> None:
        piece = pieces[index]
        cols = gather(view, piece, geom)
        target = out_rows[piece.start:piece.start + piece.count]
        for group in range(g):
            np.matmul(cols[group], wmat[group], out=target[:, group, :])

    run_pieces(work, len(pieces))
    return as_channels_first(out_cl)


def backward(
    g_cl: np.ndarray, x: np.ndarray | None, w: np.ndarray, geom: ConvGeometry,
    need_x: bool, need_w: bool,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``g_cl`` is the output gradient as contiguous ``(N, *out, C_out)``.

    Each thread takes a stripe of pieces (see :mod:`~stridelab.ops._chunks`): per piece it
    gathers the patches (``grad_weight += patches.T @ grad_out``, summed per stripe, stripes
    summed in order) and multiplies ``grad_out @ W.T`` into its buffer, whose tap blocks are
    added into the piece's windows of the input gradient (col2im; stripes touch disjoint images).
    """
    g, cog, kc = geom.groups, geom.out_per_group, geom.taps * geom.in_per_group
    view = None
    if need_w and x is not None:
        view = padded_view(x, geom)
    few = g == 1 and geom.in_channels < FEW_CHANNELS
    acc = None
    if need_x:  # each stripe zeroes its own images (GradBuffer.clear) before adding into them
        acc = GradBuffer(geom, geom.in_channels, w.dtype, channels_first=few, zeroed=False)
    wmat = cached_weight_matrix(w, geom)
    # tap-major patch gradients where a window's output rows are contiguous (stride 1 along the
    # last axis): its additions then run over whole rows on both sides
    tap_major = need_x and not few and geom.stride[-1] == 1
    wtaps = tap_weights(w, geom) if tap_major else None
    taps = list(product(*(range(k) for k in geom.kernel)))
    grad_rows = g_cl.reshape(-1, g, cog)
    groups = stripes(plan(geom, g_cl.dtype.itemsize, backward=True))
    # one partial weight gradient per stripe, in the caller's reused buffer (the first piece of
    # a stripe writes it, the others add to it: no zero-filling)
    partial_w = None
    if view is not None:
        partial_w = scratch("partial_w", (len(groups), g, kc, cog), g_cl.dtype)

    def work(slot: int) -> None:
        cleared = None
        for order, piece in enumerate(groups[slot]):
            grads = grad_rows[piece.start:piece.start + piece.count]
            if acc is not None and piece.images != cleared:  # the first piece of a unit
                if cleared is not None:
                    acc.finish(cleared)  # the previous unit's images are complete
                cleared = piece.images
                acc.clear(piece.images)
            if view is not None and partial_w is not None:
                cols = gather(view, piece, geom)
                product_w = scratch("grad_w", (kc, cog), g_cl.dtype)
                for group in range(g):
                    if order == 0:
                        np.matmul(cols[group].T, grads[:, group, :], out=partial_w[slot, group])
                        continue
                    np.matmul(cols[group].T, grads[:, group, :], out=product_w)
                    partial_w[slot, group] += product_w
            if acc is not None and few:
                gcols_t = scratch("gcols", (kc, piece.count), g_cl.dtype)
                np.matmul(wmat[0], grads[:, 0, :].T, out=gcols_t)
                _col2im_first(gcols_t, acc, piece, taps, geom)
            elif acc is not None and wtaps is not None:
                gtaps = scratch("gcols", (g, geom.taps, piece.count, geom.in_per_group),
                                g_cl.dtype)
                for group in range(g):  # one product per tap: tap-major, contiguous blocks
                    np.matmul(grads[:, group, :], wtaps[group], out=gtaps[group])
                _col2im(gtaps, acc, piece, taps, geom, tap_major=True)
            elif acc is not None:
                gcols = scratch("gcols", (g, piece.count, kc), g_cl.dtype)
                for group in range(g):
                    np.matmul(grads[:, group, :], wmat[group].T, out=gcols[group])
                _col2im(gcols, acc, piece, taps, geom, tap_major=False)
        if acc is not None and cleared is not None:
            acc.finish(cleared)

    run_pieces(work, len(groups))
    grad_x = acc.to_input() if acc is not None else None
    grad_weight = None
    if partial_w is not None:
        grad_weight = weight_from_matrix(sum_stripes(partial_w), geom)
    return grad_x, grad_weight


def _col2im(
    gcols: np.ndarray, acc: GradBuffer, piece: Piece, taps: list[tuple[int, ...]],
    geom: ConvGeometry, tap_major: bool,
) -> None:
    """Add every tap's block of patch gradients into its strided window (channels-last).

    ``gcols`` is ``(g, rows, taps * C_in/g)``, or with ``tap_major`` ``(g, taps, rows, C_in/g)``
    (each tap's block contiguous). With stride 1 along the last axis a window's output row is
    one contiguous run of ``out_w * C_in`` numbers, so with tap-major blocks each addition runs
    over whole rows on both sides: measured here (3x3, 128 channels at 56x56, batch 8, one
    thread) col2im took 13-20 ms instead of 23-37 ms at stride 1. Strided windows run ``C_in``
    numbers at a time either way (8.5-14 ms at stride 2 for both layouts). Splitting the buffer
    by stride phase makes those runs contiguous too (col2im 3.8-6.0 ms), but interleaving the
    phases into the result cost as much again (3.0-5.0 ms), so it is not done.
    """
    g, cig = geom.groups, geom.in_per_group
    if tap_major:
        blocks = gcols.reshape(g, geom.taps, piece.batch, piece.band, *geom.out_size[1:], cig)
    else:
        rows_first = gcols.reshape(g, piece.batch, piece.band, *geom.out_size[1:], geom.taps, cig)
        blocks = np.moveaxis(rows_first, -2, 1)
    for index, tap in enumerate(taps):
        window = acc.window(piece.images, tap, piece.rows)
        src = blocks[:, index]
        if g == 1:
            window += src[0]
        else:
            shaped = window.reshape(*window.shape[:-1], g, cig)
            shaped += np.moveaxis(src, 0, -2)


def _col2im_first(
    gcols_t: np.ndarray, acc: GradBuffer, piece: Piece, taps: list[tuple[int, ...]],
    geom: ConvGeometry,
) -> None:
    """Few channels: tap blocks ``(C, n, *out)`` added to the channels-first phase buffer."""
    blocks = gcols_t.reshape(geom.taps, geom.in_channels, piece.batch, piece.band,
                             *geom.out_size[1:])
    for index, tap in enumerate(taps):
        window = acc.window(piece.images, tap, piece.rows)
        window += np.moveaxis(blocks[index], 0, 1)
