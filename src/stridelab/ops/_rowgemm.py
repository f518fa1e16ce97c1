"""Matrix products split by rows into cache-sized pieces, spread over the call's threads.

Used by the 1x1 path, whose operands are already matrices: ``a @ b`` is computed one row band of
``a`` at a time (bands of about :func:`~stridelab.ops._workspace.column_bytes` bytes), and
``a.T @ b`` (a sum over rows) as per-stripe partial sums added in a fixed order. The bands do not
depend on the thread count, so neither do the bits of the result.
"""

from __future__ import annotations

import numpy as np

from stridelab.ops._chunks import MAX_STRIPES
from stridelab.ops._parallel import run_pieces
from stridelab.ops._workspace import column_bytes


def row_bands(rows: int, width: int, itemsize: int) -> list[slice]:
    per = max(1, column_bytes() // max(1, width * itemsize))
    return [slice(a, min(a + per, rows)) for a in range(0, rows, per)]


def matmul_rows(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``a @ b`` for 2-D ``a`` ``(m, k)`` and ``b`` ``(k, n)``, band by band of ``a``'s rows."""
    result = np.empty((a.shape[0], b.shape[1]), dtype=a.dtype) if out is None else out
    bands = row_bands(a.shape[0], a.shape[1], a.itemsize)

    def work(index: int) -> None:
        band = bands[index]
        np.matmul(a[band], b, out=result[band])

    run_pieces(work, len(bands))
    return result


def matmul_t_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a.T @ b`` for ``a`` ``(m, p)`` and ``b`` ``(m, q)``: partial sums over bands of rows."""
    bands = row_bands(a.shape[0], a.shape[1] + b.shape[1], a.itemsize)
    count = min(MAX_STRIPES, len(bands))
    bounds = [len(bands) * i // count for i in range(count + 1)]
    partial = np.zeros((count, a.shape[1], b.shape[1]), dtype=a.dtype)

    def work(stripe: int) -> None:
        product = np.empty(partial.shape[1:], dtype=a.dtype)
        for band in bands[bounds[stripe]:bounds[stripe + 1]]:
            np.matmul(a[band].T, b[band], out=product)
            partial[stripe] += product

    run_pieces(work, count)
    total: np.ndarray = partial[0]
    for stripe in partial[1:]:
        total += stripe
    return total
