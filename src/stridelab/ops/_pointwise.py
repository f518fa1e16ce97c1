"""1x1 convolutions without padding: a subsample (1/prod(stride) of the input) and one GEMM.

The layout decides the product:

* C-contiguous (NCHW) input, stride 1: ``W @ X[n]`` per image (a batched GEMM of
  ``(C_out, C_in)`` by ``(C_in, positions)``), no copy of the input at all, NCHW result.
* C-contiguous input, stride > 1: the subsample is copied once as a ``(C_in, N * positions)``
  matrix (its rows are runs of the NCHW input, so the copy reads only the sampled rows) and the
  whole batch is one GEMM ``X.T @ W.T`` (in cache-sized row bands over the threads,
  :mod:`~stridelab.ops._rowgemm`), giving a channels-last result.
* Any other input is gathered channels-last, ``(N * positions, C_in)``, and multiplied by ``W.T``
  in one GEMM; the result is a channels-first view of channels-last memory.
"""

from __future__ import annotations

import numpy as np

from stridelab.ops._geometry import ConvGeometry
from stridelab.ops._layout import as_channels_first, channels_last, contiguous
from stridelab.ops._parallel import run_pieces
from stridelab.ops._rowgemm import matmul_rows, matmul_t_rows
from stridelab.ops._windows import copy_into


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


def _forward_subsampled(x: np.ndarray, w2: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    """Strided, NCHW: the ``(C_in, N * positions)`` subsample times ``W.T``, one GEMM."""
    index = (slice(None), slice(None), *_sample_index(geom))
    sub = np.empty((geom.in_channels, geom.batch, *geom.out_size), dtype=x.dtype)
    copy_into(sub, np.moveaxis(x[index], 1, 0))
    flat = sub.reshape(geom.in_channels, geom.batch * geom.out_positions)
    out = matmul_rows(flat.T, w2.T)  # (N * positions, C_out): channels-last
    return as_channels_first(out.reshape(geom.batch, *geom.out_size, geom.out_channels))


def forward(x: np.ndarray, w: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    w2 = w.reshape(geom.out_channels, geom.in_channels)
    if x.flags.c_contiguous and geom.out_size == geom.in_size:
        return _forward_channels_first(x, w2, geom)
    if x.flags.c_contiguous:
        return _forward_subsampled(x, w2, geom)
    out = matmul_rows(_sub_last(x, geom), w2.T)
    return as_channels_first(out.reshape(geom.batch, *geom.out_size, geom.out_channels))


def backward(
    grad_out: np.ndarray, x: np.ndarray | None, w: np.ndarray, geom: ConvGeometry,
    need_x: bool, need_w: bool,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    w2 = w.reshape(geom.out_channels, geom.in_channels)
    g = channels_last(grad_out).reshape(-1, geom.out_channels)
    grad_x = grad_weight = None
    if need_w and x is not None:
        grad_weight = matmul_t_rows(g, _sub_last(x, geom)).reshape(w.shape)
    if need_x:
        gsub = matmul_rows(g, w2).reshape(geom.batch, *geom.out_size, geom.in_channels)
        if any(s != 1 for s in geom.stride) or geom.out_size != geom.in_size:
            full = np.zeros((geom.batch, *geom.in_size, geom.in_channels), dtype=g.dtype)
            index = (slice(None), *_sample_index(geom), slice(None))
            copy_into(full[index], gsub)
            gsub = full
        grad_x = as_channels_first(gsub)
    return grad_x, grad_weight
