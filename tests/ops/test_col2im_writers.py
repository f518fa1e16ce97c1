"""Input gradients whose writer taps replace the zero-filling (``GradBuffer.prepare``).

With channels-last memory, dilation 1 and kernel >= stride, the last ``s`` taps of every axis
are copied into the input-gradient buffer before the other taps are added, and only the strips
they do not cover are zeroed. The buffer starts as NaN here (instead of whatever ``np.empty``
returns, often zeros), so a pixel that is neither written nor zeroed shows in the result.
Oracles: a brute-force count of the positions every writer tap touches, and PyTorch autograd
(float64 1e-10, float32) with cache-sized pieces shrunk to a few output rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import product
from math import prod
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stridelab import ops
from stridelab.ops import _chunks, _gradbuffer
from stridelab.ops._geometry import conv_geometry
from tests._budget import budget
from tests.ops import _torch_ref as ref
from tests.ops._configs import ConvCase, conv_cases


class _Poisoned:
    """Patch ``GradBuffer`` so that buffers created without zeros start as NaN; counts the
    buffers whose writer taps tile them."""

    def __init__(self, patch: pytest.MonkeyPatch) -> None:
        self.tiled = 0
        real = _gradbuffer.GradBuffer.__init__

        def init(buf: _gradbuffer.GradBuffer, *args: Any, **kwargs: Any) -> None:
            real(buf, *args, **kwargs)
            if kwargs.get("zeroed") is False:
                buf.data[...] = np.nan
                self.tiled += buf.tiles

        patch.setattr(_gradbuffer.GradBuffer, "__init__", init)


@pytest.fixture
def poisoned(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Poisoned]:
    yield _Poisoned(monkeypatch)


def _case(batch: int, cin: int, size: tuple[int, ...], k: int, s: int,
          pads: tuple[tuple[int, int], ...], groups: int = 1, dilation: int = 1) -> ConvCase:
    nd = len(size)
    return ConvCase(batch, cin, 2 * groups, groups, size, (k,) * nd, (s,) * nd, (dilation,) * nd,
                    pads, pads)


def _grads(case: ConvCase, dtype: type, seed: int, threads: int | None = None
           ) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((case.batch, case.in_channels, *case.size)).astype(dtype)
    w = rng.standard_normal((case.out_channels, case.in_channels // case.groups,
                             *case.kernel)).astype(dtype)
    b = rng.standard_normal(case.out_channels).astype(dtype)
    y = ops.conv(x, w, b, case.stride, case.padding, case.dilation, case.groups)
    g = rng.standard_normal(y.shape).astype(dtype)
    gx, gw, _ = ops.conv_backward(g, x, w, case.stride, case.padding, case.dilation, case.groups,
                                  threads=threads)
    return x, w, b, g, gx, gw


CASES = [
    _case(1, 16, (13, 11), 3, 2, ((1, 1), (1, 1))),  # ResNet's 3x3 stride 2, odd sizes, batch 1
    _case(3, 16, (12, 12), 3, 2, ((1, 2), (0, 1))),  # asymmetric padding
    _case(2, 16, (9, 10), 2, 2, ((0, 0), (0, 0))),  # kernel == stride: no head strip
    _case(2, 16, (14, 13), 4, 3, ((2, 0), (1, 3))),  # tail strips wider than the padding
    _case(2, 16, (8, 9), 3, 1, ((1, 1), (1, 1))),  # stride 1: one writer tap
    _case(2, 16, (7, 6, 7), 3, 2, ((1, 1), (0, 1), (1, 0))),  # 3-D
    _case(2, 32, (11, 9), 3, 2, ((1, 1), (1, 1)), groups=2),  # grouped
    _case(2, 16, (12, 12), 2, 3, ((1, 1), (1, 1))),  # kernel < stride: zero-filled instead
    _case(2, 16, (12, 12), 3, 2, ((2, 2), (2, 2)), dilation=2),  # dilated: zero-filled
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"k{c.kernel[0]}s{c.stride[0]}d"
                         f"{c.dilation[0]}g{c.groups}-{c.size}-{c.pads}")
@pytest.mark.parametrize("budget_bytes", [256, None], ids=["row-pieces", "default-pieces"])
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-10), (np.float32, 2e-5)])
def test_input_gradient_matches_torch(poisoned: _Poisoned, monkeypatch: pytest.MonkeyPatch,
                                      case: ConvCase, budget_bytes: int | None, dtype: type,
                                      rtol: float) -> None:
    if budget_bytes is not None:  # bands of one output row or less: many band boundaries
        monkeypatch.setattr(_chunks, "column_bytes", lambda backward=False: budget_bytes)
    x, w, b, g, gx, gw = _grads(case, dtype, 11)
    tiles = case.dilation[0] == 1 and case.kernel[0] >= case.stride[0]
    assert poisoned.tiled == int(tiles)  # the path under test was taken (or not)
    _, ex, ew, _ = ref.conv(case, x, w, b, g)
    ref.assert_close(gx, ex, rtol, f"grad_x {case}")
    ref.assert_close(gw, ew, rtol, f"grad_weight {case}")


@settings(max_examples=budget(40), deadline=None)
@given(case=conv_cases(ndims=(1, 2, 3)), seed=st.integers(0, 2**31),
       limit=st.sampled_from([64, 512, 4096, None]), threads=st.integers(1, 3))
def test_any_geometry_matches_torch(case: ConvCase, seed: int, limit: int | None,
                                    threads: int) -> None:
    """Random geometries (tiling or not), random piece sizes, NaN-started buffers."""
    with pytest.MonkeyPatch.context() as patch:
        _Poisoned(patch)
        if limit is not None:
            patch.setattr(_chunks, "column_bytes", lambda backward=False: limit)
        x, w, b, g, gx, gw = _grads(case, np.float64, seed, threads)
    _, ex, ew, _ = ref.conv(case, x, w, b, g)
    ref.assert_close(gx, ex, 1e-10, f"grad_x {case}")
    ref.assert_close(gw, ew, 1e-10, f"grad_weight {case}")


@pytest.mark.parametrize("case", CASES[:6], ids=lambda c: f"k{c.kernel[0]}s{c.stride[0]}-{c.size}")
def test_writer_taps_cover_the_middle_exactly_once(case: ConvCase) -> None:
    """Brute force: counting, per padded position, the writer taps that touch it gives 1 on
    ``[k - s, s * out + k - s)`` of every axis and 0 elsewhere (the zeroed strips)."""
    geom = conv_geometry((case.batch, case.in_channels, *case.size),
                         (case.out_channels, case.in_channels, *case.kernel), case.stride,
                         case.padding, case.dilation, case.groups)
    buf = _gradbuffer.GradBuffer(geom, 1, np.dtype(np.float64), zeroed=True)
    assert buf.tiles
    count = np.zeros(buf.full, dtype=int)
    for tap in product(*(range(k) for k in geom.kernel)):
        if not buf.writes(tap):
            continue
        for out in product(*(range(o) for o in geom.out_size)):
            count[tuple(t + s * u for t, s, u in zip(tap, geom.stride, out))] += 1
    middle = tuple(slice(k - s, s * o + k - s)
                   for k, s, o in zip(geom.kernel, geom.stride, geom.out_size))
    assert np.all(count[middle] == 1)
    assert count.sum() == prod(geom.out_size) * prod(geom.stride)  # nothing outside it


def test_same_bits_for_every_thread_count(poisoned: _Poisoned,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_chunks, "column_bytes", lambda backward=False: 2048)
    case = _case(5, 16, (15, 13), 3, 2, ((1, 1), (1, 1)))
    one = _grads(case, np.float32, 3, threads=1)
    for threads in (2, 3):
        for a, e in zip(_grads(case, np.float32, 3, threads=threads)[4:], one[4:]):
            assert np.array_equal(a, e)
