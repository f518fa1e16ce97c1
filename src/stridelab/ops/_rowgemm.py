"""Matrix products split by rows into cache-sized pieces, spread over the call's threads.

Used by the 1x1 forward, whose operands are already matrices: ``a @ b`` is computed one row band
of ``a`` at a time (bands of about :func:`~stridelab.ops._workspace.column_bytes` bytes). The
bands do not depend on the thread count, so neither do the bits of the result.
"""

from __future__ import annotations

import numpy as np

from stridelab.ops._parallel import run_pieces
from stridelab.ops._workspace import column_bytes

BAND_MULTIPLE = 4  # band counts are rounded up to a multiple of this (even work for 2 or 4 threads)


def row_bands(rows: int, width: int, itemsize: int) -> list[slice]:
    """Bands of at most about :func:`column_bytes` bytes of ``a``, of equal size (+-1 row), their
    count a multiple of :data:`BAND_MULTIPLE` when there are enough rows: threads taking bands
    in turn then get equal shares (9 bands on 2 threads would leave one thread a band longer)."""
    if rows == 0:
        return []
    per = max(1, column_bytes() // max(1, width * itemsize))
    count = -(-rows // per)
    if count > 1:
        count = min(rows, -(-count // BAND_MULTIPLE) * BAND_MULTIPLE)
    bounds = [rows * i // count for i in range(count + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


def matmul_rows(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``a @ b`` for 2-D ``a`` ``(m, k)`` and ``b`` ``(k, n)``, band by band of ``a``'s rows."""
    result = np.empty((a.shape[0], b.shape[1]), dtype=a.dtype) if out is None else out
    bands = row_bands(a.shape[0], a.shape[1], a.itemsize)

    def work(index: int) -> None:
        band = bands[index]
        np.matmul(a[band], b, out=result[band])

    run_pieces(work, len(bands))
    return result
