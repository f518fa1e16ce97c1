"""Memory layout helpers: channels-first arrays whose memory may be channels-last.

Results of the engine are ``(N, C, *spatial)`` arrays whose *memory* is channels-last (as
``torch.channels_last``): a transposed view of a contiguous ``(N, *spatial, C)`` buffer. They
behave like any other array; ``np.ascontiguousarray`` gives C order when a caller needs it.
Inputs may come in either layout; channels-last memory is used without a transposing copy.
"""

from __future__ import annotations

import numpy as np

from stridelab.ops._windows import copy_into


def channels_last(a: np.ndarray) -> np.ndarray:
    """``a`` as a contiguous ``(N, *S, C)`` array (no copy when it already is in memory)."""
    return contiguous(np.moveaxis(a, 1, -1))


def contiguous(a: np.ndarray) -> np.ndarray:
    """``a`` in C order, copied in parallel only when needed."""
    if a.flags.c_contiguous:
        return a
    out = np.empty(a.shape, dtype=a.dtype)
    copy_into(out, a)
    return out


def as_channels_first(cl: np.ndarray) -> np.ndarray:
    """View a ``(N, *S, C)`` buffer as ``(N, C, *S)`` without copying."""
    return np.moveaxis(cl, -1, 1)
