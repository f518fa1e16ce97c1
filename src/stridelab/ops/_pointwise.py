"""1x1 convolutions without padding: a subsample (1/prod(stride) of the input) and one GEMM.

The layout decides the product:

* C-contiguous (NCHW) input, stride 1: ``W @ X[n]`` per image (a batched GEMM of
  ``(C_out, C_in)`` by ``(C_in, positions)``), no copy of the input at all, NCHW result.
* Stride > 1, C-contiguous input: per band of output rows of an image, the sampled pixels are
  copied channels-first and multiplied as at stride 1, ``W @ sub``, into an NCHW result
  (:mod:`~stridelab.ops._pointwise_nchw`).
* Stride > 1, any other layout: in cache-sized pieces of output rows, the sampled pixels are copied
  channels-last ``(rows, C_in)`` into the thread's buffer and multiplied by ``W.T`` straight
  into the channels-last result (the copy reads only the sampled rows; only 1/prod(stride) of
  the input is ever copied, a piece at a time).
* Stride 1, any other layout: the input viewed channels-last, ``(N * positions, C_in)``, times
  ``W.T`` in cache-sized row bands over the threads (:mod:`~stridelab.ops._rowgemm`).
  Results of the last two are channels-first views of channels-last memory.

Backward (:func:`backward`): the weight gradient is ``grad_out^T @ subsample`` and the input
gradient ``grad_out @ W`` written only into the sampled pixels. With a C-contiguous output
gradient and a batch of two or more, at any stride: per image, channels-first
(:mod:`~stridelab.ops._pointwise_nchw`; at stride 1 the images themselves are the operands, no
copy). Otherwise, stride 1 is one pass over bands of output rows (the input copied band by
band); strided calls copy the subsample once (channels-last) and compute the weight gradient
as a few whole products, by blocks of output channels.
"""

from __future__ import annotations

import numpy as np

from stridelab.ops import _pointwise_nchw
from stridelab.ops._chunks import Piece, plan, stripes, sum_stripes
from stridelab.ops._geometry import ConvGeometry
from stridelab.ops._layout import as_channels_first, channels_last, contiguous
from stridelab.ops._parallel import run_pieces
from stridelab.ops._rowgemm import matmul_rows
from stridelab.ops._workspace import column_bytes, scratch

WEIGHT_ROWS = 128  # output channels per weight-gradient task of the strided backward


def _sample_index(geom: ConvGeometry) -> tuple[slice, ...]:
    return tuple(slice(0, (o - 1) * s + 1, s) for o, s in zip(geom.out_size, geom.stride))


def _sub_last(x: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    """``(N * positions, C)`` subsample, channels-last (one copy of 1/prod(s) of ``x``)."""
    moved = np.moveaxis(x, 1, -1)
    index = (slice(None), *_sample_index(geom), slice(None))
    sub = contiguous(moved[index])
    return sub.reshape(geom.batch * geom.out_positions, geom.in_channels)


def _forward_channels_first(x: np.ndarray, w2: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    """Stride 1, NCHW: one ``(C_out, C_in) @ (C_in, positions)`` product per image (threads
    take whole images)."""
    flat = x.reshape(geom.batch, geom.in_channels, geom.out_positions)
    out = np.empty((geom.batch, geom.out_channels, geom.out_positions), dtype=x.dtype)

    def work(n: int) -> None:
        np.matmul(w2, flat[n], out=out[n])  # already NCHW

    run_pieces(work, geom.batch)
    return out.reshape(geom.batch, geom.out_channels, *geom.out_size)


def _forward_strided(x: np.ndarray, w2: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    """Strided, any layout: per cache-sized piece of output rows (:mod:`~stridelab.ops._chunks`),
    its sampled pixels are copied channels-last into the thread's buffer and multiplied by
    ``W.T`` straight into the channels-last result (the copy and the product share the
    threads, and the product reads its operand from cache)."""
    cin = geom.in_channels
    x_cl = np.moveaxis(x, 1, -1)
    out = np.empty((geom.batch * geom.out_positions, geom.out_channels), dtype=x.dtype)
    pieces = [piece for unit in plan(geom, x.itemsize, budget=column_bytes()) for piece in unit]
    w_t = w2.T

    def work(index: int) -> None:
        piece = pieces[index]
        sampled = x_cl[_piece_index(geom, piece)]
        rows = scratch("pointwise_x", (piece.count, cin), x.dtype)
        np.copyto(rows.reshape(sampled.shape), sampled)
        np.matmul(rows, w_t, out=out[piece.start:piece.start + piece.count])

    run_pieces(work, len(pieces))
    return as_channels_first(out.reshape(geom.batch, *geom.out_size, geom.out_channels))


def forward(x: np.ndarray, w: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    w2 = w.reshape(geom.out_channels, geom.in_channels)
    if geom.out_size != geom.in_size and x.flags.c_contiguous:
        return _pointwise_nchw.forward(x, w2, geom)
    if geom.out_size != geom.in_size:
        return _forward_strided(x, w2, geom)
    if x.flags.c_contiguous:
        return _forward_channels_first(x, w2, geom)
    out = matmul_rows(_sub_last(x, geom), w2.T)
    return as_channels_first(out.reshape(geom.batch, *geom.out_size, geom.out_channels))


def _piece_index(geom: ConvGeometry, piece: Piece) -> tuple[slice, ...]:
    """Slices of a channels-last ``(N, *S, C)`` array holding the input pixels ``piece`` samples."""
    first = geom.stride[0]
    rows = slice(piece.rows.start * first, (piece.rows.stop - 1) * first + 1, first)
    return (piece.images, rows, *_sample_index(geom)[1:], slice(None))


def _band_rows(geom: ConvGeometry, piece: Piece) -> tuple[slice, slice]:
    """The input rows (first spatial axis) a piece's output rows own: ``rows.start * s`` up to
    the next piece's first sampled row (the last piece: to the end), so pieces tile the input."""
    first = geom.stride[0]
    stop = piece.rows.stop * first if piece.rows.stop < geom.out_size[0] else geom.in_size[0]
    return piece.images, slice(piece.rows.start * first, stop)


def backward(
    grad_out: np.ndarray, x: np.ndarray | None, w: np.ndarray, geom: ConvGeometry,
    need_x: bool, need_w: bool,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``grad_weight = grad_out^T @ subsample`` and ``grad_x`` scattered into the sampled pixels.

    C-contiguous ``grad_out``, batch >= 2: :func:`_pointwise_nchw.backward`, one image per
    task. Otherwise strided: :func:`_strided_backward`. Stride 1, one pass over cache-sized
    pieces (bands of output rows, :mod:`~stridelab.ops._chunks`): per piece the input pixels
    are copied channels-last into the thread's buffer and multiplied into the stripe's partial
    weight gradient, and ``grad_out @ W`` is written straight into the piece's rows of the
    channels-last input gradient. Nothing input-sized is copied.
    """
    cout, cin = geom.out_channels, geom.in_channels
    w2 = w.reshape(cout, cin)
    if grad_out.flags.c_contiguous and geom.batch >= 2:
        grad_x_nchw, grad_w2 = _pointwise_nchw.backward(
            grad_out, x if need_w else None, w2, geom, need_x)
        return grad_x_nchw, grad_w2.reshape(w.shape) if grad_w2 is not None else None
    g = channels_last(grad_out).reshape(-1, cout)
    if geom.out_size != geom.in_size:
        return _strided_backward(g, x if need_w else None, w2, geom, need_x, w.shape)
    dtype = g.dtype
    grad_x_cl = np.empty((geom.batch, *geom.in_size, cin), dtype=dtype) if need_x else None
    x_cl = np.moveaxis(x, 1, -1) if need_w and x is not None else None
    budget = column_bytes() * cin // (cin + cout)  # a piece's rows of grad_out and x together
    groups = stripes(plan(geom, dtype.itemsize, budget=max(1, budget)))
    partial_w = None  # per stripe, first piece writes, the others add (as in _gemm.backward)
    if x_cl is not None:
        partial_w = scratch("partial_w", (len(groups), cout, cin), dtype)

    def work(slot: int) -> None:
        for order, piece in enumerate(groups[slot]):
            grads = g[piece.start:piece.start + piece.count]
            if x_cl is not None and partial_w is not None:
                index = _piece_index(geom, piece)
                sampled = scratch("pointwise_x", (piece.count, cin), dtype)
                np.copyto(sampled.reshape(x_cl[index].shape), x_cl[index])
                if order == 0:
                    np.matmul(grads.T, sampled, out=partial_w[slot])
                else:
                    product = scratch("pointwise_w", (cout, cin), dtype)
                    np.matmul(grads.T, sampled, out=product)
                    partial_w[slot] += product
            if grad_x_cl is not None:
                rows = grad_x_cl.reshape(-1, cin)[piece.start:piece.start + piece.count]
                np.matmul(grads, w2, out=rows)

    run_pieces(work, len(groups))
    grad_weight = None
    if partial_w is not None:
        grad_weight = sum_stripes(partial_w).reshape(w.shape)
    grad_x = as_channels_first(grad_x_cl) if grad_x_cl is not None else None
    return grad_x, grad_weight


def _strided_backward(
    g: np.ndarray, x: np.ndarray | None, w2: np.ndarray, geom: ConvGeometry, need_x: bool,
    weight_shape: tuple[int, ...],
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Stride > 1: ``g`` is ``grad_out`` as ``(N * positions, C_out)``, ``w2`` ``(C_out, C_in)``.

    The subsample (1/prod(stride) of ``x``) is copied once channels-last, split over the
    threads. Then one set of tasks runs on the threads: the weight gradient in blocks of
    :data:`WEIGHT_ROWS` output channels, each one whole product ``grad_out[:, block]^T @
    subsample`` (every position in one GEMM: no partial sums to add), and the input gradient
    in cache-sized bands of rows: each band zeroes its rows of the channels-last input
    gradient (the zero-filling is split over the threads too) and writes ``grad_out @ W`` into
    the sampled pixels. The blocks and bands do not depend on the thread count, so neither do
    the bits.
    """
    cout, cin = w2.shape
    dtype = g.dtype
    sub = _sub_last(x, geom) if x is not None else None
    grad_w = np.empty((cout, cin), dtype=dtype) if sub is not None else None
    grad_x_cl = np.empty((geom.batch, *geom.in_size, cin), dtype=dtype) if need_x else None
    blocks = [slice(a, min(a + WEIGHT_ROWS, cout)) for a in range(0, cout, WEIGHT_ROWS)]
    if grad_w is None:
        blocks = []
    bands = [piece for unit in plan(geom, dtype.itemsize, budget=max(1, column_bytes() // 2))
             for piece in unit] if grad_x_cl is not None else []

    def work(index: int) -> None:
        if index < len(blocks):
            assert sub is not None and grad_w is not None
            block = blocks[index]
            np.matmul(g[:, block].T, sub, out=grad_w[block])
            return
        assert grad_x_cl is not None
        piece = bands[index - len(blocks)]
        scattered = scratch("pointwise_gx", (piece.count, cin), dtype)
        np.matmul(g[piece.start:piece.start + piece.count], w2, out=scattered)
        grad_x_cl[_band_rows(geom, piece)] = 0
        target = grad_x_cl[_piece_index(geom, piece)]
        np.copyto(target, scattered.reshape(target.shape))

    run_pieces(work, len(blocks) + len(bands))
    grad_weight = grad_w.reshape(weight_shape) if grad_w is not None else None
    grad_x = as_channels_first(grad_x_cl) if grad_x_cl is not None else None
    return grad_x, grad_weight
