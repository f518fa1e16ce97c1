"""Accumulators for input gradients (col2im): every tap adds into a window, no zeros multiplied.

A stride-``s`` window tap ``t`` touches padded positions ``u * s + t * d``, ``u < out``.

* Channels-last (many channels): the buffer is the padded input ``(N, *padded, C)``; a tap's
  window is a strided view whose contiguous runs are ``C`` numbers long, and the finished
  gradient is a cropped *view* (no copy).
* Channels-first (few channels, e.g. the 3-channel stem): writing ``p = q * s + phase`` splits
  each axis into ``s`` stride phases; tap ``t`` touches only phase ``(t * d) % s`` at
  ``q = u + (t * d) // s``, a unit-stride run of ``out_w`` numbers. The buffer is stored
  phase-major ``(N, C, *stride, *q)``; one strided copy per phase interleaves it (and crops the
  padding) into the result, image by image, on the worker thread that finished the image
  (:meth:`GradBuffer.finish`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from stridelab.ops._geometry import ConvGeometry
from stridelab.ops._windows import copy_into


class GradBuffer:
    """Gradient of the padded input (layout chosen by ``channels_first``), zero-initialised.

    ``zeroed=False``: the memory is left uninitialised and the caller zeroes each image with
    :meth:`clear` before adding into it (on the worker thread that owns the image, so the
    zero-filling is split over the threads instead of done by ``np.zeros`` on the caller: a
    freed large block is reused from the heap and ``calloc`` then clears it serially).
    """

    def __init__(self, geom: ConvGeometry, channels: int, dtype: np.dtype,
                 channels_first: bool = False, zeroed: bool = True) -> None:
        self.geom = geom
        self.channels = channels
        self.channels_first = channels_first
        self.full = tuple(max(i + pb + pa, e) for i, (pb, pa), e in
                          zip(geom.in_size, geom.pads, geom.padded_extent))
        self.quotient = tuple(-(-f // s) for f, s in zip(self.full, geom.stride))
        if channels_first:
            shape = (geom.batch, channels, *geom.stride, *self.quotient)
        else:
            shape = (geom.batch, *self.full, channels)
        self.data = np.zeros(shape, dtype=dtype) if zeroed else np.empty(shape, dtype=dtype)
        self.result: np.ndarray | None = None  # filled image by image by :meth:`finish`
        self.finished: np.ndarray | None = None
        self._lock = threading.Lock()

    def clear(self, images: slice) -> None:
        """Zero every number of ``images`` (a contiguous block of the buffer)."""
        self.data[images] = 0

    def window(self, chunk: slice, tap: Sequence[int], rows: slice | None = None) -> np.ndarray:
        """Writable view ``(n, *out, C)`` (``(n, C, *out)`` if channels-first) for one tap.

        ``rows`` restricts the first output axis to a band (default: all of it).
        """
        g = self.geom
        band = rows if rows is not None else slice(0, g.out_size[0])
        index: tuple[int | slice, ...]
        if self.channels_first:
            phase: list[int] = []
            runs: list[slice] = []
            for axis, (t, s, d, o) in enumerate(zip(tap, g.stride, g.dilation, g.out_size)):
                base, rest = divmod(t * d, s)
                phase.append(rest)
                lo, hi = (band.start, band.stop) if axis == 0 else (0, o)
                runs.append(slice(base + lo, base + hi))
            index = (chunk, slice(None), *phase, *runs)
        else:
            spans = []
            for axis, (t, s, d, o) in enumerate(zip(tap, g.stride, g.dilation, g.out_size)):
                lo, hi = (band.start, band.stop) if axis == 0 else (0, o)
                spans.append(slice(t * d + lo * s, t * d + (hi - 1) * s + 1, s))
            index = (chunk, *spans, slice(None))
        return self.data[index]

    @property
    def interleaves(self) -> bool:
        """Whether :meth:`to_input` has to copy (channels-first phase buffer, some stride > 1)."""
        return self.channels_first and any(s > 1 for s in self.geom.stride)

    def finish(self, images: slice) -> None:
        """Write the finished gradient of ``images`` (no more additions to come) into the result
        :meth:`to_input` returns, interleaving the stride phases and cropping the padding in one
        strided copy per phase. Called by the worker thread that owns the images, right after
        its last addition, so the copies run on the threads while the images are in cache
        (instead of one parallel pass per phase over the whole batch at the end). Only for a
        buffer that :attr:`interleaves`; images not finished are interleaved by :meth:`to_input`.
        """
        if not self.interleaves:
            return
        g = self.geom
        if self.result is None:
            with self._lock:
                if self.result is None:
                    self.result = np.empty((g.batch, self.channels, *g.in_size), self.data.dtype)
                    self.finished = np.zeros(g.batch, dtype=bool)
        assert self.result is not None and self.finished is not None
        for phase in np.ndindex(*g.stride):
            dst: list[slice] = [images, slice(None)]
            src: list[int | slice] = [images, slice(None), *phase]
            for ph, s, (pb, _), size in zip(phase, g.stride, g.pads, g.in_size):
                first = (ph - pb) % s  # first unpadded index i with (i + pb) % s == ph
                count = len(range(first, size, s))
                start = (first + pb) // s
                dst.append(slice(first, size, s))
                src.append(slice(start, start + count))
            np.copyto(self.result[tuple(dst)], self.data[tuple(src)])
        self.finished[images] = True

    def to_input(self) -> np.ndarray:
        """The input gradient ``(N, C, *in_size)`` with the padding cropped."""
        g = self.geom
        if self.result is not None and self.finished is not None:
            missing = np.flatnonzero(~self.finished)
            for n in missing:
                self.finish(slice(int(n), int(n) + 1))
            return self.result
        crop = tuple(slice(pb, pb + i) for (pb, _), i in zip(g.pads, g.in_size))
        if not self.channels_first:
            last = (slice(None), *crop, slice(None))
            return np.moveaxis(self.data[last], -1, 1)
        if all(s == 1 for s in g.stride):
            standard = self.data.reshape(g.batch, self.channels, *self.quotient)
        else:
            spatial = tuple(q * s for q, s in zip(self.quotient, g.stride))
            standard = np.empty((g.batch, self.channels, *spatial), dtype=self.data.dtype)
            for phase in np.ndindex(*g.stride):
                dst = (slice(None), slice(None),
                       *(slice(p, None, s) for p, s in zip(phase, g.stride)))
                src: tuple[int | slice, ...] = (slice(None), slice(None), *phase)
                copy_into(standard[dst], self.data[src])
        first = (slice(None), slice(None), *crop)
        return standard[first]
