"""The two NumPy convolution idioms people reach for, as baselines for bench_ops.py.

* ``im2col``: ``as_strided`` patches ``(N, Ho, Wo, C, kh, kw)`` reshaped (copied) to a matrix and
  multiplied by the weight; backward: two matrix products and a tap loop adding strided slices.
* ``einsum``: ``sliding_window_view`` (dense: every stride-1 window) subsampled by ``[::s]``,
  contracted with ``np.einsum(..., optimize=True)``; backward likewise plus the same tap loop.

Both are channels-first (N, C, H, W) float32, symmetric padding, no groups, as usually written.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view


def _pad(x: np.ndarray, p: int) -> np.ndarray:
    return np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))) if p else x


def _out(size: int, k: int, s: int, p: int) -> int:
    return (size + 2 * p - k) // s + 1


def _col2im(gcols: np.ndarray, shape: tuple[int, ...], k: int, s: int, p: int) -> np.ndarray:
    """gcols (N, C, kh, kw, Ho, Wo) -> grad of the padded input, then cropped."""
    n, c, h, w = shape
    ho, wo = gcols.shape[-2:]
    gxp = np.zeros((n, c, h + 2 * p, w + 2 * p), dtype=gcols.dtype)
    for i in range(k):
        for j in range(k):
            gxp[:, :, i:i + s * ho:s, j:j + s * wo:s] += gcols[:, :, i, j]
    return gxp[:, :, p:p + h, p:p + w]


def _patches(x: np.ndarray, k: int, s: int, p: int) -> tuple[np.ndarray, int, int]:
    xp = _pad(x, p)
    n, c, h, w = xp.shape
    ho, wo = _out(x.shape[2], k, s, p), _out(x.shape[3], k, s, p)
    sn, sc, sh, sw = xp.strides
    view = as_strided(xp, (n, ho, wo, c, k, k), (sn, sh * s, sw * s, sc, sh, sw))
    return view.reshape(n * ho * wo, c * k * k), ho, wo


def im2col_forward(x: np.ndarray, w: np.ndarray, s: int, p: int) -> np.ndarray:
    cols, ho, wo = _patches(x, w.shape[-1], s, p)
    y = cols @ w.reshape(w.shape[0], -1).T
    out: np.ndarray = y.reshape(x.shape[0], ho, wo, w.shape[0]).transpose(0, 3, 1, 2)
    return out


def im2col_backward(g: np.ndarray, x: np.ndarray, w: np.ndarray, s: int, p: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    k = w.shape[-1]
    cols, ho, wo = _patches(x, k, s, p)
    gmat = g.transpose(0, 2, 3, 1).reshape(-1, w.shape[0])
    grad_w = (gmat.T @ cols).reshape(w.shape)
    gcols = (gmat @ w.reshape(w.shape[0], -1)).reshape(x.shape[0], ho, wo, x.shape[1], k, k)
    return _col2im(gcols.transpose(0, 3, 4, 5, 1, 2), x.shape, k, s, p), grad_w


def _windows(x: np.ndarray, k: int, s: int, p: int) -> np.ndarray:
    return sliding_window_view(_pad(x, p), (k, k), axis=(2, 3))[:, :, ::s, ::s]


def einsum_forward(x: np.ndarray, w: np.ndarray, s: int, p: int) -> np.ndarray:
    out: np.ndarray = np.einsum("nchwij,ocij->nohw", _windows(x, w.shape[-1], s, p), w,
                                optimize=True)
    return out


def einsum_backward(g: np.ndarray, x: np.ndarray, w: np.ndarray, s: int, p: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    k = w.shape[-1]
    grad_w = np.einsum("nohw,nchwij->ocij", g, _windows(x, k, s, p), optimize=True)
    gcols = np.einsum("nohw,ocij->ncijhw", g, w, optimize=True)
    return _col2im(gcols, x.shape, k, s, p), grad_w
