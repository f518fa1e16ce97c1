"""Where a piece's patches are read from: one padded channels-last copy, or a band per piece.

The patch gather reads a channels-last padded input (a window is then a run of ``k_w * C``
contiguous numbers). Two ways to provide it:

* :class:`WholeInput`: the whole padded input is copied channels-last once, before the pieces
  run (the copy is split over the threads). Cheapest when neighbouring pieces overlap a lot, as
  at stride 1 with bands of a few output rows.
* :class:`BandedInput`: each piece copies only the padded rows its windows read, a band of
  ``(band - 1) * s + d * (k - 1) + 1`` rows along the first spatial axis, into the worker's own
  reused buffer, right before gathering from it. Used when those bands add at most
  :data:`HALO_LIMIT` of the padded input (as at stride 2, where bands are long). The layout copy
  then runs inside the pieces, next to the GEMMs of the other threads, instead of as a separate
  memory-bound phase on every thread at once, and the gather reads a band that is still in cache.

Both give the same numbers in the same order, so the results are bit-identical.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from stridelab.ops._chunks import Piece
from stridelab.ops._geometry import ConvGeometry
from stridelab.ops._windows import channels_last_padded, window_view
from stridelab.ops._workspace import scratch

HALO_LIMIT = 1.25  # banded copies may read at most 25 % more rows than the padded input has


def padded_rows(geom: ConvGeometry, rows: slice) -> tuple[int, int]:
    """Padded rows ``[start, stop)`` along the first axis read by output rows ``rows``.

    Output row ``u`` reads padded rows ``u * s + t * d`` for taps ``t < k``.
    """
    s, d, k = geom.stride[0], geom.dilation[0], geom.kernel[0]
    return rows.start * s, (rows.stop - 1) * s + d * (k - 1) + 1


def banded_rows(geom: ConvGeometry, units: list[list[Piece]]) -> float:
    """Rows the per-piece bands of one image copy, over the padded rows the whole copy has."""
    first = units[0]
    copied = sum(stop - start for start, stop in (padded_rows(geom, p.rows) for p in first))
    return copied / geom.padded_extent[0]


class WholeInput:
    """The padded input copied channels-last once (in this thread's ``padded`` buffer)."""

    def __init__(self, x: np.ndarray, geom: ConvGeometry) -> None:
        shape = (geom.batch, *geom.padded_extent, geom.in_channels)
        buf = channels_last_padded(x, geom.pads, geom.padded_extent,
                                   out=scratch("padded", shape, x.dtype))
        self.view = window_view(buf, geom)

    def windows(self, piece: Piece) -> np.ndarray:
        """Read-only ``(images, band, *out[1:], *kernel, C)`` windows of ``piece``."""
        return self.view[piece.images, piece.rows]


class BandedInput:
    """Each piece's padded rows copied channels-last by the worker that gathers them."""

    def __init__(self, x: np.ndarray, geom: ConvGeometry) -> None:
        self.x = x
        self.geom = geom

    def windows(self, piece: Piece) -> np.ndarray:
        """As :meth:`WholeInput.windows`, from a band in this thread's ``band`` buffer."""
        g = self.geom
        start, stop = padded_rows(g, piece.rows)
        before = g.pads[0][0]
        lo = max(0, start - before)
        hi = max(lo, min(g.in_size[0], stop - before))
        extent = (stop - start, *g.padded_extent[1:])
        buf = scratch("band", (piece.batch, *extent, g.in_channels), self.x.dtype)
        pads = ((max(0, before - start), 0), *g.pads[1:])
        channels_last_padded(self.x[piece.images, :, lo:hi], pads, extent, out=buf, split=False)
        band = replace(g, out_size=(piece.band, *g.out_size[1:]))
        return window_view(buf, band)


def patch_source(x: np.ndarray, geom: ConvGeometry, units: list[list[Piece]]
                 ) -> WholeInput | BandedInput:
    """:class:`BandedInput` when the bands copy at most :data:`HALO_LIMIT` x the padded rows."""
    if banded_rows(geom, units) <= HALO_LIMIT:
        return BandedInput(x, geom)
    return WholeInput(x, geom)
