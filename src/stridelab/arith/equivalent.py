"""Equivalent sliding windows of layers that are not written as one: adaptive pooling and resizes.

These let the receptive-field recurrences of :mod:`stridelab.arith.field` treat them like any
other layer (one axis at a time).
"""

from __future__ import annotations

import math
from fractions import Fraction

from stridelab.arith._check import PaddingPair, check_int

RESIZE_MODES = ("nearest", "linear", "cubic")


def block_window(extent: int, *, centred: bool) -> tuple[int, int]:
    """Equivalent ``(kernel, padding_before)`` (stride 1) of reading a block of ``extent``
    consecutive positions (one axis), e.g. attention inside a window or a channel mix after
    space-to-depth.

    When the unit sits at the start of its block (the block's other positions were folded into
    channels: ``F.unfold``, space-to-depth), it reads ``[u, u + extent - 1]``: kernel ``extent``,
    padding 0, exact. When the unit may sit anywhere in its block (attention over a window that
    contains the query), it reads ``[b, b + extent - 1]`` with ``u - extent + 1 <= b <= u``; the
    smallest stride-1 window containing every such block is centred on ``u``: kernel
    ``2 * extent - 1``, padding ``extent - 1``, exact on the block's first (left edge) and last
    (right edge) units.
    """
    check_int("extent", extent, 1)
    if centred:
        return 2 * extent - 1, extent - 1
    return extent, 0


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


SAMPLING_MODES = ("adaptive", "nearest", "nearest-exact", "linear", "cubic")
_MAX_SCALE_DENOMINATOR = 1024


def _is_power_of_two(value: int) -> bool:
    return value & (value - 1) == 0


def sampling_ratio(size_in: int, size_out: int, mode: str, *, align_corners: bool = False,
                   scale: int | float | Fraction | None = None) -> Fraction:
    """Source pixels per output pixel of a resize ``size_in -> size_out``, as PyTorch uses it.

    ``(size_in - 1) / (size_out - 1)`` for linear/cubic modes with ``align_corners`` (0 for one
    output); ``1 / scale`` when the user's ``scale_factor`` is given (rounded to a fraction with
    denominator <= 1024), except nearest resizes to 1x or 2x, where PyTorch's CPU kernel uses the
    sizes; ``size_in / size_out`` otherwise (and always for ``adaptive`` pooling). Modes and
    arguments as in :func:`sampled_window`.
    """
    check_int("size_in", size_in, 1)
    check_int("size_out", size_out, 1)
    if mode not in SAMPLING_MODES:
        raise ValueError(f"mode must be one of {SAMPLING_MODES}, got {mode!r}")
    if mode in ("linear", "cubic") and align_corners and size_in > 1:
        # one output unit: the ratio is 0 and no stride matters (the window stride becomes 1)
        return Fraction(size_in - 1, size_out - 1) if size_out > 1 else Fraction(0)
    if mode == "nearest" and size_out in (size_in, 2 * size_in):
        return Fraction(size_in, size_out)  # PyTorch's CPU kernel ignores the scale here
    if scale is not None and mode != "adaptive":
        given = Fraction(scale).limit_denominator(_MAX_SCALE_DENOMINATOR)
        if given <= 0:
            raise ValueError(f"scale must be > 0, got {scale!r}")
        return 1 / given
    return Fraction(size_in, size_out)


def _sampled_reads(u: int, ratio: Fraction, size_in: int, size_out: int, mode: str,
                   align_corners: bool) -> tuple[int, int]:
    """First and last source position output ``u`` may read (unclamped, see sampled_window)."""
    if mode == "adaptive":  # PyTorch's integer start/end indices
        return (u * size_in) // size_out, -(-(u + 1) * size_in // size_out) - 1
    if mode == "nearest":
        x = u * ratio
    elif mode == "nearest-exact":
        x = (u + Fraction(1, 2)) * ratio
    elif align_corners:
        x = u * ratio
    else:
        x = (u + Fraction(1, 2)) * ratio - Fraction(1, 2)
    base = math.floor(x)
    # PyTorch computes x in floating point: when x is an exact integer that the float ratio cannot
    # represent (denominator not a power of two), the float may land just below or above it.
    rounding = x.denominator == 1 and not _is_power_of_two(ratio.denominator)
    below = 1 if rounding else 0
    if mode in ("nearest", "nearest-exact"):
        return base - below, base
    if mode == "linear":
        # the right neighbour has weight 0 when the sample falls exactly on a source pixel
        above = 1 if x.denominator != 1 or rounding else 0
        return base - below, base + above
    return base - 1 - below, base + 2


def sampled_window(size_in: int, size_out: int, mode: str, *, align_corners: bool = False,
                   scale: int | float | Fraction | None = None) -> tuple[int, int, int, int]:
    """Fractional-stride window of a resize or adaptive pooling ``size_in -> size_out`` (one axis).

    Returns ``(upsample, kernel, stride, padding_before)``: the field after the layer contains
    ``field.then(upsample, upsample, 0, transposed=True).then(kernel, stride, padding_before)``
    for every output unit, with effective stride ``stride / upsample`` = the sampling ratio
    ``p / q`` in lowest terms (source pixels per output pixel). Why this works: nearest
    upsampling by ``q`` maps upsampled position ``v`` to source ``floor(v / q)``, so a window of
    stride ``p`` over the upsampled grid places unit ``u`` at source ``u * p / q``. Adaptive
    pooling is exactly such a composition (PyTorch's window ``u`` is
    ``[floor(u*i/o), ceil((u+1)*i/o) - 1]``: upsample by ``o``, pool kernel ``i`` stride ``i``).

    ``mode``: ``adaptive`` (pooling), ``nearest`` (``floor(u * r)``), ``nearest-exact``
    (``floor((u + 1/2) * r)``), ``linear`` (the two neighbours of ``(u + 1/2) * r - 1/2``, or of
    ``u * r`` with ``align_corners``, where ``r = (size_in - 1) / (size_out - 1)``), ``cubic``
    (four neighbours). ``scale`` is the user's ``scale_factor`` (output / input), which PyTorch
    uses as ``r = 1 / scale`` instead of ``size_in / size_out`` when given (floats are rounded to
    a fraction with denominator <= 1024). Reads follow PyTorch's (unclamped) sample positions;
    where a float sample may round across an integer the neighbour below is included too.
    Following the Distill field convention, the window over the upsampled grid must satisfy
    ``(u*p - P - q + 1) / q <= lo(u)`` and ``(u*p - P + k - 1) / q >= hi(u)``; the smallest
    ``P >= 0`` and ``k`` are maxima over one period ``u < q`` (``lo, hi`` shift by ``p``).
    """
    ratio = sampling_ratio(size_in, size_out, mode, align_corners=align_corners, scale=scale)
    p, q = ratio.numerator, ratio.denominator
    before = after = 0
    for u in range(min(q, size_out)):
        lo, hi = _sampled_reads(u, ratio, size_in, size_out, mode, align_corners)
        before = max(before, u * p - q * lo - q + 1)
        after = max(after, q * hi - u * p)
    return q, before + after + 1, max(p, 1), before
