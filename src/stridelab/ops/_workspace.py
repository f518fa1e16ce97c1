"""Per-thread scratch buffers sized to the cache, reused across chunks and calls.

Every thread (the caller and each pool worker) owns its buffers (``threading.local``), so
concurrent calls never share one; a buffer grows to the largest request and is then reused for
any shape or dtype (a byte buffer viewed as needed). Requests above :data:`RETAIN_LIMIT` bytes
get a fresh array that is not kept.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from math import prod
from pathlib import Path

import numpy as np

ALIGN = 64  # bytes: a cache line
RETAIN_LIMIT = 16 << 20  # larger scratch requests are not kept between calls
DEFAULT_CACHE_BYTES = 512 << 10
COLUMN_SHARE = 1.5  # a forward piece's patch matrix, in per-core L2 caches (~1,300 stem rows at 512 KiB)
BACKWARD_SHARE = 6.0  # backward pieces: larger, so the per-tap col2im loop runs on long blocks

_LOCAL = threading.local()


@lru_cache(maxsize=1)
def cache_bytes() -> int:
    """Per-core L2 cache in bytes (Linux sysfs), or :data:`DEFAULT_CACHE_BYTES` if unknown."""
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    try:
        for index in sorted(base.glob("index*")):
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            if level == "2" and kind in ("Unified", "Data"):
                return _parse_size((index / "size").read_text().strip())
    except (OSError, ValueError):
        pass
    return DEFAULT_CACHE_BYTES


def _parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text and text[-1].upper() in units:
        return int(text[:-1]) * units[text[-1].upper()]
    return int(text)


def column_bytes(backward: bool = False) -> int:
    """Target size of one piece's patch matrix, a multiple of the per-core L2 cache.

    Forward pieces stay within L2 + its share of L3 so the GEMM reads its operand from cache;
    backward pieces are larger because each one also runs a Python loop over the kernel taps.
    """
    share = BACKWARD_SHARE if backward else COLUMN_SHARE
    return max(64 << 10, int(cache_bytes() * share))


def scratch(slot: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialised C-contiguous array of ``shape`` owned by the calling thread.

    The same ``slot`` returns the same memory on the next request from this thread, so a caller
    must be done with it before asking again (different slots never overlap).
    """
    dt = np.dtype(dtype)
    nbytes = prod(shape) * dt.itemsize
    if nbytes > RETAIN_LIMIT:
        return np.empty(shape, dtype=dt)
    buffers: dict[str, np.ndarray] | None = getattr(_LOCAL, "buffers", None)
    if buffers is None:
        buffers = {}
        _LOCAL.buffers = buffers
    aligned = buffers.get(slot)
    if aligned is None or aligned.nbytes < nbytes:
        raw = np.empty(max(nbytes, 1) + ALIGN, dtype=np.uint8)
        offset = -raw.ctypes.data % ALIGN
        aligned = raw[offset:offset + max(nbytes, 1)]
        buffers[slot] = aligned
    return aligned[:nbytes].view(dt).reshape(shape)
