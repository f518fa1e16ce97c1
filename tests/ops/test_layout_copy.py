"""The padded channels-last layout copy, channel by channel for few channels.

``channels_last_padded`` interleaves a channels-first input of at most ``FEW_CHANNELS``
channels one channel at a time (split over images); more channels, or channels-last memory,
take one transposing copy. Oracles: ``np.pad`` + ``moveaxis`` for the buffer itself (exact),
PyTorch for the convolutions that read it (float64 1e-10, float32), and the same bits for
every thread count with the image split forced on small inputs.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stridelab import ops
from stridelab.ops import _parallel, _windows
from tests._budget import budget
from tests.ops import _torch_ref as ref
from tests.ops._configs import ConvCase


@pytest.fixture
def split_small(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Parallel copies split even tiny arrays over the threads (normally inline below 1 MiB)."""
    monkeypatch.setattr(_parallel, "_MIN_PARALLEL_BYTES", 0)
    yield


def _expected(x: np.ndarray, pads: list[tuple[int, int]], extent: list[int], fill: float
              ) -> np.ndarray:
    padded = np.pad(x, [(0, 0), (0, 0), *pads], constant_values=fill)
    index = (slice(None), slice(None), *(slice(0, e) for e in extent))
    return np.ascontiguousarray(np.moveaxis(padded[index], 1, -1))


@settings(max_examples=budget(40), deadline=None)
@given(data=st.data(), nd=st.integers(1, 3), channels=st.integers(1, 6),
       batch=st.integers(1, 3), dtype=st.sampled_from([np.float32, np.float64]),
       memory=st.sampled_from(["first", "last", "sliced"]), threads=st.integers(1, 3))
def test_padded_copy_matches_np_pad(data: st.DataObject, nd: int,
                                    channels: int, batch: int, dtype: type, memory: str,
                                    threads: int) -> None:
    """Every element of the buffer (border, interior, cropped extent) equals ``np.pad``'s, for
    channel counts on both sides of ``FEW_CHANNELS`` and any input memory layout."""
    size = [data.draw(st.integers(1, 7)) for _ in range(nd)]
    pads = [(data.draw(st.integers(0, 3)), data.draw(st.integers(0, 3))) for _ in range(nd)]
    extent = [data.draw(st.integers(1, s + a + b)) for s, (a, b) in zip(size, pads)]
    fill = data.draw(st.sampled_from([0.0, -np.inf]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    x = rng.standard_normal((batch, channels, *size)).astype(dtype)
    if memory == "last":  # channels-last memory seen as (N, C, *S)
        x = np.moveaxis(np.ascontiguousarray(np.moveaxis(x, 1, -1)), -1, 1)
    elif memory == "sliced":  # every other channel and image row of a larger array
        big = rng.standard_normal((batch, 2 * channels, *(2 * s for s in size))).astype(dtype)
        x = big[(slice(None),) + (slice(None, None, 2),) * (nd + 1)]
    out = np.full((batch, *extent, channels), np.nan, dtype=dtype)  # leftovers would show
    with pytest.MonkeyPatch.context() as patch, _parallel.thread_scope(threads):
        patch.setattr(_parallel, "_MIN_PARALLEL_BYTES", 0)  # split even tiny copies
        got = _windows.channels_last_padded(x, pads, extent, fill, out=out)
    assert got is out
    np.testing.assert_array_equal(got, _expected(x, pads, extent, fill))


def _stem(batch: int, size: tuple[int, int], cin: int, pads: tuple[tuple[int, int], ...]
          ) -> ConvCase:
    return ConvCase(batch, cin, 5, 1, size, (7, 7), (2, 2), (1, 1), pads, pads)


STEMS = [
    _stem(1, (23, 23), 3, ((3, 3), (3, 3))),  # the ResNet stem, odd size, batch 1
    _stem(3, (20, 17), 3, ((2, 3), (0, 4))),  # asymmetric padding, odd width
    _stem(2, (15, 16), 1, ((3, 3), (3, 3))),  # one channel
    _stem(2, (16, 15), 4, ((1, 2), (3, 0))),  # the largest per-channel count
    _stem(2, (16, 15), 5, ((1, 2), (3, 0))),  # just above it: the transposing copy
]


@pytest.mark.parametrize("case", STEMS, ids=lambda c: f"c{c.in_channels}-{c.size}-{c.pads}")
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-10), (np.float32, 2e-5)])
def test_few_channel_convolution_matches_torch(split_small: None, case: ConvCase, dtype: type,
                                               rtol: float) -> None:
    """Forward and backward of stem-like layers against torch, channels-first input."""
    rng = np.random.default_rng(case.in_channels)
    x = rng.standard_normal((case.batch, case.in_channels, *case.size)).astype(dtype)
    w = rng.standard_normal((case.out_channels, case.in_channels, *case.kernel)).astype(dtype)
    b = rng.standard_normal(case.out_channels).astype(dtype)
    y = ops.conv(x, w, b, case.stride, case.pads, threads=2)
    g = rng.standard_normal(y.shape).astype(dtype)
    gx, gw, gb = ops.conv_backward(g, x, w, case.stride, case.pads, threads=2)
    expected = ref.conv(case, x, w, b, g)
    for name, a, e in zip(("output", "grad_x", "grad_weight", "grad_bias"), (y, gx, gw, gb),
                          expected):
        assert a is not None
        ref.assert_close(a, e, rtol, f"{name} {case}")


@pytest.mark.parametrize("case", STEMS[:2], ids=["stem", "asymmetric"])
def test_few_channel_forward_same_bits_for_every_thread_count(split_small: None,
                                                              case: ConvCase) -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((case.batch, case.in_channels, *case.size)).astype(np.float32)
    w = rng.standard_normal((case.out_channels, case.in_channels, *case.kernel)).astype(
        np.float32)
    one = ops.conv(x, w, None, case.stride, case.pads, threads=1)
    for threads in (2, 3):
        assert np.array_equal(ops.conv(x, w, None, case.stride, case.pads, threads=threads), one)
