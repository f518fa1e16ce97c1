"""Split a convolution's output into cache-sized pieces, and the pieces into thread-free units.

The patch matrix of a convolution has one row per *output* position, ordered
``(n, o_0, o_1, ...)``. A :class:`Piece` is a run of those rows: either a band of rows along the
first output axis of one image, or several whole images. Its patch matrix (``rows x taps *
C_in``) fills about :func:`~stridelab.ops._workspace.column_bytes` bytes, so gathering it and
multiplying it happen in cache. The split depends only on the geometry and the dtype, never on
the thread count, so every thread count computes exactly the same products in the same order.

Backward passes add into shared accumulators, so pieces are grouped: a *unit* is every piece of
one image (or one multi-image piece), units never share input pixels, and a *stripe* (a run of
units, at most :data:`MAX_STRIPES` of them in all) is what one thread processes in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

import numpy as np

from stridelab.ops._geometry import ConvGeometry
from stridelab.ops._workspace import column_bytes

MAX_STRIPES = 8


@dataclass(frozen=True)
class Piece:
    """Rows ``start : start + count`` of the patch matrix: images x a band of the first axis."""

    images: slice
    rows: slice  # along the first output axis (all of it when several images)
    start: int
    count: int

    @property
    def batch(self) -> int:
        return int(self.images.stop - self.images.start)

    @property
    def band(self) -> int:
        return int(self.rows.stop - self.rows.start)


def plan(geom: ConvGeometry, itemsize: int, budget: int | None = None, backward: bool = False
         ) -> list[list[Piece]]:
    """Units (lists of pieces, in order) covering every output position once.

    ``budget``: bytes of one piece's patch matrix (default :func:`column_bytes`).
    """
    first = geom.out_size[0]
    inner = prod(geom.out_size[1:])
    per_position = geom.taps * geom.in_channels * itemsize
    limit = column_bytes(backward) if budget is None else budget
    band = max(1, limit // max(1, inner * per_position))
    positions = geom.out_positions
    units: list[list[Piece]] = []
    if band >= first:
        images = max(1, band // first)
        for n0 in range(0, geom.batch, images):
            n1 = min(n0 + images, geom.batch)
            units.append([Piece(slice(n0, n1), slice(0, first), n0 * positions,
                                (n1 - n0) * positions)])
        return units
    parts = -(-first // band)
    bounds = [first * i // parts for i in range(parts + 1)]
    for n in range(geom.batch):
        units.append([Piece(slice(n, n + 1), slice(a, b), n * positions + a * inner, (b - a) * inner)
                      for a, b in zip(bounds, bounds[1:])])
    return units


def stripes(units: list[list[Piece]]) -> list[list[Piece]]:
    """At most :data:`MAX_STRIPES` contiguous runs of units, flattened to pieces."""
    count = min(MAX_STRIPES, len(units))
    bounds = [len(units) * i // count for i in range(count + 1)]
    return [[p for unit in units[a:b] for p in unit] for a, b in zip(bounds, bounds[1:])]


def sum_stripes(partial: np.ndarray) -> np.ndarray:
    """``partial[0] + partial[1] + ...`` in that order, as a new array (``partial`` may be a
    reused buffer). A fixed order keeps the bits independent of the thread count."""
    total: np.ndarray = partial[0].copy()
    for stripe in partial[1:]:
        total += stripe
    return total
