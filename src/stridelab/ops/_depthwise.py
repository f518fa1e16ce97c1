"""Depthwise convolution (one input channel per group): tap-by-tap accumulation, no patch matrix.

Each tap is a strided view of the padded channels-last input, multiplied by one weight per
channel (times the channel multiplier) and added to the output: ``prod(k)`` passes over the
*output*, so a stride ``s`` costs 1/prod(s) of stride 1.
"""

from __future__ import annotations

from itertools import product

import numpy as np

from stridelab.ops._geometry import ConvGeometry
from stridelab.ops._gradbuffer import GradBuffer
from stridelab.ops._layout import as_channels_first
from stridelab.ops._parallel import parallel
from stridelab.ops._windows import channels_last_padded, tap_index


def _taps(geom: ConvGeometry) -> list[tuple[int, ...]]:
    return list(product(*(range(k) for k in geom.kernel)))


def _at(tap: tuple[int, ...]) -> tuple[int | slice, ...]:
    """Index of one tap in a ``(C, multiplier, *kernel)`` weight."""
    return (slice(None), slice(None), *tap)


def forward(x: np.ndarray, w: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    buf = channels_last_padded(x, geom.pads, geom.padded_extent)
    mult = geom.out_per_group
    wt = w.reshape(geom.in_channels, mult, *geom.kernel)
    out = np.zeros((geom.batch, *geom.out_size, geom.in_channels, mult), dtype=x.dtype)
    taps = _taps(geom)

    def run(chunk: slice) -> None:
        acc = out[chunk]
        tmp = np.empty_like(acc)
        for tap in taps:
            xv = buf[chunk][tap_index(geom, tap)]
            np.multiply(xv[..., None], wt[_at(tap)], out=tmp)
            acc += tmp

    parallel(run, geom.batch, out.nbytes)
    return as_channels_first(out.reshape(geom.batch, *geom.out_size, geom.out_channels))


def backward(
    g_cl: np.ndarray, x: np.ndarray | None, w: np.ndarray, geom: ConvGeometry,
    need_x: bool, need_w: bool,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``g_cl`` is the output gradient as contiguous ``(N, *out, C_out)``."""
    mult, c = geom.out_per_group, geom.in_channels
    g5 = g_cl.reshape(geom.batch, *geom.out_size, c, mult)
    wt = w.reshape(c, mult, *geom.kernel)
    taps = _taps(geom)
    grad_weight = None
    if need_w and x is not None:
        buf = channels_last_padded(x, geom.pads, geom.padded_extent)
        grad_wt = np.empty_like(wt)
        sum_axes = tuple(range(geom.ndim + 1))
        for tap in taps:
            xv = buf[tap_index(geom, tap)]
            grad_wt[_at(tap)] = (g5 * xv[..., None]).sum(axis=sum_axes)
        grad_weight = grad_wt.reshape(w.shape)
    grad_x = None
    if need_x:
        acc = GradBuffer(geom, c, w.dtype)

        def run(chunk: slice) -> None:
            for tap in taps:
                window = acc.window(chunk, tap)
                wtap = wt[_at(tap)]
                if mult == 1:
                    window += g5[chunk][..., 0] * wtap[:, 0]
                else:
                    window += (g5[chunk] * wtap).sum(axis=-1)

        parallel(run, geom.batch, g_cl.nbytes)
        grad_x = acc.to_input()
    return grad_x, grad_weight
