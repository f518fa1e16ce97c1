"""Choose the computational path of a convolution from its geometry and the data layout.

* pointwise (1x1, no padding, one group): :mod:`stridelab.ops._pointwise`;
* depthwise (one input channel per group): :mod:`stridelab.ops._depthwise`;
* everything else: patches + BLAS, :mod:`stridelab.ops._gemm`.

The thread count is resolved once per call (:func:`stridelab.ops._parallel.thread_scope`); with
one thread, NumPy's BLAS is held to one thread for the whole call.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import numpy as np

from stridelab.ops import _depthwise, _gemm, _pointwise
from stridelab.ops._geometry import ConvGeometry
from stridelab.ops._layout import channels_last
from stridelab.ops._parallel import BLAS, thread_scope


def _blas_for(threads: int) -> AbstractContextManager[None]:
    """One thread asked for: every BLAS call of this one is single-threaded too."""
    return BLAS.single_threaded() if threads == 1 else nullcontext()



def forward(x: np.ndarray, w: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    """``conv(x, w)`` without bias; ``(N, C_out, *out)`` (memory may be channels-last)."""
    with thread_scope(None) as threads, _blas_for(threads):
        if geom.is_pointwise and geom.groups == 1:
            return _pointwise.forward(x, w, geom)
        if geom.is_depthwise:
            return _depthwise.forward(x, w, geom)
        return _gemm.forward(x, w, geom)


def backward(
    grad_out: np.ndarray, x: np.ndarray | None, w: np.ndarray, geom: ConvGeometry,
    need_x: bool, need_w: bool,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(grad_x, grad_weight)``; ``x`` may be None when ``need_w`` is False."""
    with thread_scope(None) as threads, _blas_for(threads):
        if geom.is_pointwise and geom.groups == 1:
            return _pointwise.backward(grad_out, x, w, geom, need_x, need_w)
        g_cl = channels_last(grad_out)
        if geom.is_depthwise:
            return _depthwise.backward(g_cl, x, w, geom, need_x, need_w)
        return _gemm.backward(g_cl, x, w, geom, need_x, need_w)
