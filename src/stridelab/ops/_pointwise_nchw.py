"""Strided 1x1 convolutions on channels-first (NCHW) memory: the stride-1 product per image.

With stride 1 and C-contiguous input, a 1x1 convolution is ``W @ X[n]`` per image (``(C_out,
C_in)`` by ``(C_in, positions)``, :mod:`~stridelab.ops._pointwise`). Strided, the sampled
pixels ``X[n][:, ::s, ::s]`` of a band of output rows are copied channels-first into the
thread's reused buffer (only 1/prod(s) of the input is copied) and multiplied the same way,
straight into the channels-first result: the products keep the stride-1 orientation and
contiguous operands. Measured here (batch 8, 256 -> 512 channels at 56x56, stride 2, one
thread) the call takes what the channels-last path takes (about 26 ms: 21-23 ms of products,
4 ms of copying), but its result is channels-first like its input, so a C-contiguous output
gradient reaches :func:`backward` without the transposing copy (12.8 MB there) that the
channels-last backward needs first.

Backward, with a C-contiguous output gradient, at any stride: per image, ``grad_weight +=
grad_out[n] @ sub[n]^T`` (a fixed sum of per-stripe partial products, independent of the thread
count) and ``grad_x[n]`` is zeroed and ``W^T @ grad_out[n]`` written into its sampled pixels.
At stride 1 nothing is copied or zeroed: ``sub[n]`` is the image itself (a view when it is
C-contiguous) and ``W^T @ grad_out[n]`` is written straight into ``grad_x[n]``. Measured here
(ResNet-50's 1x1 256 -> 512 at 56x56, batch 8, stride 1, one thread): 211 ms against 254 ms
for the channels-last pass it replaces, which transposed both the output gradient and the
input; the two products alone take 203 ms.
"""

from __future__ import annotations

import numpy as np

from stridelab.ops._chunks import MAX_STRIPES, sum_stripes
from stridelab.ops._geometry import ConvGeometry
from stridelab.ops._parallel import run_pieces
from stridelab.ops._workspace import column_bytes, scratch


def sample_index(geom: ConvGeometry) -> tuple[slice, ...]:
    """Slices of the spatial axes holding the pixels a stride-``s`` 1x1 kernel reads."""
    return tuple(slice(0, (o - 1) * s + 1, s) for o, s in zip(geom.out_size, geom.stride))


def row_bands(geom: ConvGeometry, itemsize: int, budget: int | None = None) -> list[slice]:
    """Bands of the first output axis whose subsample ``(C_in, band * rest)`` fills at most
    about ``budget`` bytes (default: two :func:`column_bytes`, so a ResNet-sized image is one
    band and its product the stride-1 shape), of equal size (+-1 row). Measured here (ResNet-50's
    1x1 stride 2, 256 -> 512 channels at 56x56, one thread, best of 25): one band per image
    23.8 ms, two 25.5 ms, three 25.9 ms; the channels-last path 23.8 ms."""
    first = geom.out_size[0]
    rest = geom.out_positions // max(1, first)
    limit = 2 * column_bytes() if budget is None else budget
    per = max(1, limit // max(1, geom.in_channels * rest * itemsize))
    count = -(-first // per)
    bounds = [first * i // count for i in range(count + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


def _band_sample(x: np.ndarray, geom: ConvGeometry, n: int, band: slice) -> np.ndarray:
    """The input pixels output rows ``band`` of image ``n`` read: ``(C_in, band, *rest)``."""
    first = geom.stride[0]
    rows = slice(band.start * first, (band.stop - 1) * first + 1, first)
    index: tuple[int | slice, ...] = (n, slice(None), rows) + sample_index(geom)[1:]
    return x[index]


def forward(x: np.ndarray, w2: np.ndarray, geom: ConvGeometry,
            budget: int | None = None) -> np.ndarray:
    """``(N, C_out, *out)`` C-contiguous; ``w2`` is the weight as ``(C_out, C_in)``."""
    cin, cout = geom.in_channels, geom.out_channels
    rest = geom.out_positions // max(1, geom.out_size[0])
    out = np.empty((geom.batch, cout, geom.out_positions), dtype=x.dtype)
    bands = row_bands(geom, x.itemsize, budget)
    tasks = [(n, band) for n in range(geom.batch) for band in bands]

    def work(index: int) -> None:
        n, band = tasks[index]
        sampled = _band_sample(x, geom, n, band)
        sub = _buffered(sampled, (cin, sampled[0].size))
        np.matmul(w2, sub, out=out[n, :, band.start * rest:band.stop * rest])

    run_pieces(work, len(tasks))
    return out.reshape(geom.batch, cout, *geom.out_size)


def backward(
    grad_out: np.ndarray, x: np.ndarray | None, w2: np.ndarray, geom: ConvGeometry,
    need_x: bool,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(grad_x, grad_w2)``: ``grad_out`` C-contiguous ``(N, C_out, *out)``; ``x`` None when
    the weight gradient is not needed; ``grad_w2`` is ``(C_out, C_in)``.

    Images are split into at most :data:`MAX_STRIPES` stripes (by the batch only); a stripe's
    first image writes its partial weight gradient, the others add to it, and the stripes are
    summed in order, so the bits do not depend on the thread count.
    """
    cout, cin = w2.shape
    dtype = grad_out.dtype
    positions = geom.out_positions
    g = grad_out.reshape(geom.batch, cout, positions)
    grad_x = np.empty((geom.batch, cin, *geom.in_size), dtype=dtype) if need_x else None
    count = min(MAX_STRIPES, geom.batch)
    bounds = [geom.batch * i // count for i in range(count + 1)]
    stripes = [range(a, b) for a, b in zip(bounds, bounds[1:])]
    partial_w = scratch("partial_w", (count, cout, cin), dtype) if x is not None else None
    w_t = w2.T
    inner = (slice(None), *sample_index(geom))
    dense = geom.out_size == geom.in_size  # stride 1: every pixel sampled, nothing to copy

    def work(slot: int) -> None:
        for order, n in enumerate(stripes[slot]):
            if x is not None and partial_w is not None:
                sub = _sampled(x[n], inner, (cin, positions), dense)
                if order == 0:
                    np.matmul(g[n], sub.T, out=partial_w[slot])
                else:
                    product = scratch("pointwise_w", (cout, cin), dtype)
                    np.matmul(g[n], sub.T, out=product)
                    partial_w[slot] += product
            if grad_x is not None and dense:
                np.matmul(w_t, g[n], out=grad_x[n].reshape(cin, positions))
            elif grad_x is not None:
                scattered = scratch("pointwise_gx", (cin, positions), dtype)
                np.matmul(w_t, g[n], out=scattered)
                grad_x[n] = 0
                target = grad_x[n][inner]
                np.copyto(target, scattered.reshape(target.shape))

    run_pieces(work, count)
    grad_w2 = sum_stripes(partial_w) if partial_w is not None else None
    return grad_x, grad_w2


def _sampled(image: np.ndarray, inner: tuple[slice, ...], shape: tuple[int, int],
             dense: bool) -> np.ndarray:
    """One image's sampled pixels as a ``(C_in, positions)`` matrix: a view of a C-contiguous
    image at stride 1, else copied into the thread's buffer."""
    if dense and image.flags.c_contiguous:
        return image.reshape(shape)
    return _buffered(image[inner], shape)


def _buffered(sampled: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``sampled`` (channels first) copied into the thread's reused buffer, as a ``shape``
    matrix."""
    sub = scratch("pointwise_x", shape, sampled.dtype)
    np.copyto(sub.reshape(sampled.shape), sampled)
    return sub
