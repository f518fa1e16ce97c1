"""Equivalent sliding windows of layers that are not written as one: adaptive pooling and resizes.

These let the receptive-field recurrences of :mod:`stridelab.arith.field` treat them like any
other layer (one axis at a time).
"""

from __future__ import annotations

from stridelab.arith._check import PaddingPair, check_int

RESIZE_MODES = ("nearest", "linear", "cubic")


def adaptive_window(size_in: int, size_out: int) -> tuple[int, int]:
    """Equivalent ``(kernel, stride)`` of adaptive pooling ``size_in -> size_out`` (one axis).

    PyTorch's window ``u`` is ``[floor(u*i/o), ceil((u+1)*i/o) - 1]``. With ``s = i // o`` and
    ``k = i - (o - 1) * s`` the window ``[u*s, u*s + k - 1]`` contains it for every ``u``; when
    ``o`` divides ``i`` it is exactly ``k = s = i / o``. Adaptive pooling to a *larger* size
    repeats pixels (windows overlap with a fractional stride): treat it as a resize
    (:func:`resize_window`); here ``size_out > size_in`` is a ValueError.
    """
    check_int("size_in", size_in, 1)
    check_int("size_out", size_out, 1)
    if size_out > size_in:
        raise ValueError(f"size_out must be <= size_in for an equivalent pooling window, got "
                         f"{size_out} > {size_in}; adaptive pooling that upsamples is a resize")
    stride = max(size_in // size_out, 1)
    return max(size_in - (size_out - 1) * stride, 1), stride


def resize_window(scale: int, mode: str) -> tuple[int, PaddingPair]:
    """Equivalent transposed window ``(kernel, (before, after))`` of an integer ``scale`` resize.

    Output ``u`` of a resize reads source positions ``lo(u)..hi(u)``; a transposed window with
    stride ``scale`` sees ``[(u - q) / scale, (u + p) / scale]``, so the smallest window that
    contains every read has ``q = max(u - scale*lo)`` and ``p = max(scale*hi - u)`` over one period
    ``u in [0, scale)``, kernel ``q + p + 1`` and padding-before ``p`` (the transposed padding).
    Nearest reads ``floor(u / scale)`` (kernel = scale, padding 0); linear modes with
    ``align_corners=False`` read the two neighbours of ``(u + 0.5) / scale - 0.5``; cubic reads
    one more on each side.
    """
    check_int("scale", scale, 1)
    if mode not in RESIZE_MODES:
        raise ValueError(f"mode must be one of {RESIZE_MODES}, got {mode!r}")
    reach = {"nearest": (0, 0), "linear": (0, 1), "cubic": (-1, 2)}[mode]
    before_reach = after_reach = 0
    for u in range(scale):
        if mode == "nearest":
            base = u // scale
        else:
            base = (2 * u + 1 - scale) // (2 * scale)  # floor((u + 0.5) / scale - 0.5)
        lo, hi = base + reach[0], base + reach[1]
        if mode == "linear" and (2 * u + 1 - scale) % (2 * scale) == 0:
            hi = lo  # the sample falls on a source pixel: the neighbour has weight 0
        before_reach = max(before_reach, u - scale * lo)
        after_reach = max(after_reach, scale * hi - u)
    return before_reach + after_reach + 1, (after_reach, after_reach)
