"""Channels-last input gradients accumulated phase-major, from tap-major patch gradients.

The GEMM backward's many-channel path computes the patch gradients one product per tap
(``(g, taps, rows, C_in/g)``) and adds each tap's block into a channels-last buffer split by
stride phase (``GradBuffer(phase_major=True)``), whose finished images are interleaved into a
channels-last result. Oracles: the plain channels-last buffer fed the same blocks (a strided
window per tap, no phases: exact equality), a brute-force scatter-add loop, and PyTorch autograd
(float64 1e-10, float32) with pieces shrunk to a few output rows and every thread count giving
the same bits.
"""

from __future__ import annotations

from itertools import product

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stridelab import ops
from stridelab.ops import _chunks, _gemm
from stridelab.ops._geometry import conv_geometry
from stridelab.ops._gradbuffer import GradBuffer
from tests._budget import budget
from tests.ops import _torch_ref as ref
from tests.ops._configs import ConvCase


def _brute_force(blocks: dict[tuple[int, ...], np.ndarray], geom: object, shape: tuple[int, ...]
                 ) -> np.ndarray:
    """Scatter-add every tap block number by number: ``(N, C, *in)`` gradient."""
    g = geom  # ConvGeometry
    padded = np.zeros((shape[0], *(i + a + b for i, (a, b) in zip(g.in_size, g.pads)), shape[1]))
    for tap, block in blocks.items():  # block: (N, *out, C)
        for out in product(*(range(o) for o in g.out_size)):
            pos = tuple(t * d + u * s for t, d, u, s in zip(tap, g.dilation, out, g.stride))
            if all(p < e for p, e in zip(pos, padded.shape[1:-1])):
                padded[(slice(None), *pos)] += block[(slice(None), *out)]
    crop = tuple(slice(a, a + i) for (a, _), i in zip(g.pads, g.in_size))
    return np.moveaxis(padded[(slice(None), *crop)], -1, 1)


@settings(max_examples=budget(60), deadline=None)
@given(data=st.data(), nd=st.integers(1, 3))
def test_phase_major_buffer_equals_plain_and_brute_force(data: st.DataObject, nd: int) -> None:
    """Images finished one by one, some of them, or none (``to_input`` interleaves the rest)."""
    size = tuple(data.draw(st.integers(1, 7)) for _ in range(nd))
    kernel = tuple(data.draw(st.integers(1, 4)) for _ in range(nd))
    stride = tuple(data.draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(data.draw(st.integers(1, 2)) for _ in range(nd))
    pads = tuple((data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))) for _ in range(nd))
    if any(i + a + b < d * (k - 1) + 1 for i, (a, b), k, d in zip(size, pads, kernel, dilation)):
        return  # no window fits
    batch, channels = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 5))
    geom = conv_geometry((batch, channels, *size), (2, channels, *kernel), stride, pads,
                         dilation, 1)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    taps = list(product(*(range(k) for k in kernel)))
    blocks = {tap: rng.standard_normal((batch, *geom.out_size, channels)) for tap in taps}
    first = geom.out_size[0]
    cut = data.draw(st.integers(1, first))  # one or two bands of output rows, in order
    bands = [slice(0, cut), slice(cut, first)] if cut < first else [slice(0, first)]
    plain = GradBuffer(geom, channels, np.dtype(np.float64))
    for n, rows, tap in product(range(batch), bands, taps):
        plain.window(slice(n, n + 1), tap, rows)[...] += blocks[tap][n:n + 1, rows]
    expected = plain.to_input()
    np.testing.assert_allclose(expected, _brute_force(blocks, geom, (batch, channels)),
                               rtol=1e-12, atol=1e-12)
    for finished in ([], list(range(batch)), list(range(0, batch, 2))):
        phased = GradBuffer(geom, channels, np.dtype(np.float64), zeroed=False,
                            phase_major=True)
        phased.data[...] = np.nan  # every number the result reads must be zeroed or added
        for n in range(batch):
            images = slice(n, n + 1)
            phased.clear(images)
            for rows, tap in product(bands, taps):
                phased.window(images, tap, rows)[...] += blocks[tap][images, rows]
            if n in finished:
                phased.finish(images)
        got = phased.to_input()
        assert got.shape == (batch, channels, *size)
        np.testing.assert_array_equal(got, expected)  # same additions in the same order


def _case(batch: int, cin: int, size: tuple[int, ...], k: int, s: int,
          pads: tuple[tuple[int, int], ...], groups: int = 1, dilation: int = 1) -> ConvCase:
    nd = len(size)
    return ConvCase(batch, cin, 24, groups, size, (k,) * nd, (s,) * nd, (dilation,) * nd, pads,
                    pads)


CASES = [  # at least FEW_CHANNELS input channels: the channels-last path
    _case(1, 16, (13, 11), 3, 2, ((1, 1), (1, 1))),  # ResNet's 3x3 stride 2, odd sizes, batch 1
    _case(3, 16, (12, 12), 3, 2, ((1, 2), (0, 1))),  # asymmetric padding
    _case(2, 16, (14, 13), 4, 3, ((2, 0), (1, 3))),  # stride 3, rows no window reaches
    _case(2, 16, (8, 9), 3, 1, ((1, 1), (1, 1))),  # stride 1: one phase, no interleave
    _case(2, 16, (7, 6, 7), 3, 2, ((1, 1), (0, 1), (1, 0))),  # 3-D
    _case(2, 32, (11, 9), 3, 2, ((1, 1), (1, 1)), groups=2),  # grouped
    _case(2, 16, (12, 12), 2, 3, ((1, 1), (1, 1))),  # kernel < stride: gaps
    _case(2, 16, (12, 12), 3, 2, ((2, 2), (2, 2)), dilation=2),  # dilated
]


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


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"k{c.kernel[0]}s{c.stride[0]}d"
                         f"{c.dilation[0]}g{c.groups}-{c.size}-{c.pads}")
@pytest.mark.parametrize("budget_bytes", [256, None], ids=["row-pieces", "default-pieces"])
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-10), (np.float32, 2e-5)])
def test_input_gradient_matches_torch(monkeypatch: pytest.MonkeyPatch, case: ConvCase,
                                      budget_bytes: int | None, dtype: type, rtol: float) -> None:
    assert case.in_channels >= _gemm.FEW_CHANNELS
    if budget_bytes is not None:  # bands of one output row or less: many band boundaries
        monkeypatch.setattr(_chunks, "column_bytes", lambda backward=False: budget_bytes)
    x, w, b, g, gx, gw = _grads(case, dtype, 11)
    _, ex, ew, _ = ref.conv(case, x, w, b, g)
    ref.assert_close(gx, ex, rtol, f"grad_x {case}")
    ref.assert_close(gw, ew, rtol, f"grad_weight {case}")


def test_same_bits_for_every_thread_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_chunks, "column_bytes", lambda backward=False: 2048)
    case = _case(5, 16, (15, 13), 3, 2, ((1, 1), (1, 1)))
    one = _grads(case, np.float32, 3, threads=1)
    for threads in (2, 3):
        for a, e in zip(_grads(case, np.float32, 3, threads=threads)[4:], one[4:]):
            assert np.array_equal(a, e)


def test_tap_weights_follow_the_weight_array() -> None:
    """The per-tap weight matrices are cached per weight array and rebuilt after an in-place
    change: the second backward sees the new weight (checked against torch)."""
    case = _case(2, 16, (9, 9), 3, 2, ((1, 1), (1, 1)))
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 16, 9, 9))
    w = rng.standard_normal((24, 16, 3, 3))
    g = rng.standard_normal((2, 24, 5, 5))
    for _ in range(2):
        gx, _, _ = ops.conv_backward(g, x, w, 2, 1)
        ref.assert_close(gx, ref.conv(case, x, w, np.zeros(24), g)[1], 1e-10, "grad_x")
        w *= -0.5  # in place: same array, new bytes
