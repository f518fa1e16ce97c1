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
COLUMN_FRACTION = 0.75  # share of the per-core L2 cache a chunk's patch matrix may fill

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


def column_bytes() -> int:
    """Target size of one chunk's patch matrix (a share of the per-core cache)."""
    return max(64 << 10, int(cache_bytes() * COLUMN_FRACTION))


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
    raw = buffers.get(slot)
    if raw is None or raw.nbytes < nbytes + ALIGN:
        raw = np.empty(max(nbytes, 1) + ALIGN, dtype=np.uint8)
        buffers[slot] = raw
    offset = -raw.ctypes.data % ALIGN
    return raw[offset:offset + nbytes].view(dt).reshape(shape)
