"""``ReceptiveField.first_unit_from`` / ``last_unit_within``: the first / last index of an earlier
map that a later unit reads, against a brute-force oracle (:func:`stridelab.arith.windows` lists
every tap of every window)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stridelab.arith import ReceptiveField, windows
from tests._budget import budget


@settings(max_examples=budget(100))
@given(r=st.integers(1, 9), big_s=st.integers(1, 4), big_p=st.integers(0, 6),
       k=st.integers(1, 7), s=st.integers(1, 4), d=st.integers(1, 3), size=st.integers(1, 30))
def test_first_and_last_index_a_window_reads(r: int, big_s: int, big_p: int, k: int, s: int,
                                             d: int, size: int) -> None:
    earlier = ReceptiveField((r,), (big_s,), (big_p,))
    pad = (d * (k - 1)) // 2
    if size + 2 * pad < d * (k - 1) + 1:
        return
    later = earlier.then(k, s, pad, d)
    for u, taps in enumerate(windows(size, k, s, pad, d)):
        start, end = later.start(u), later.end(u)
        assert isinstance(start, (int, Fraction)) and isinstance(end, (int, Fraction))
        assert earlier.first_unit_from(start) == min(taps)
        assert earlier.last_unit_within(end) == max(taps)


def test_per_axis_fractions_and_errors() -> None:
    field = ReceptiveField((3, 5), (2, 1), (1, 2))
    assert field.last_unit_within((Fraction(7, 2), 3)) == (1, 1)  # floor((7/2 - 1) / 2), 3 - 2
    assert field.last_unit_within(0) == (-1, -2)  # even unit 0 ends after position 0
    with pytest.raises(TypeError, match="position"):
        field.last_unit_within(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="position"):
        field.last_unit_within((1, 2, 3))


@settings(max_examples=budget(60))
@given(r=st.integers(1, 9), big_s=st.integers(1, 8), big_p=st.integers(0, 6),
       factor=st.integers(2, 8), size=st.integers(1, 12))
def test_nearest_upsampling_reads_one_unit(r: int, big_s: int, big_p: int, factor: int,
                                           size: int) -> None:
    """Nearest upsampling by ``factor`` is a transposed window (kernel = stride = factor): the
    linear field of unit ``u`` brackets the one unit it reads, ``floor(u / factor)`` (PyTorch's
    ``nearest`` index rule ``src = floor(dst * in / out)``), and both inversions find it."""
    earlier = ReceptiveField((r,), (big_s,), (big_p,))
    later = earlier.then(factor, factor, 0, transposed=True)
    for u in range(size * factor):
        start, end = later.start(u), later.end(u)
        assert isinstance(start, (int, Fraction)) and isinstance(end, (int, Fraction))
        assert earlier.first_unit_from(start) == u // factor
        assert earlier.last_unit_within(end) == u // factor


def test_first_unit_per_axis_and_errors() -> None:
    field = ReceptiveField((3, 5), (2, 1), (1, 2))
    assert field.first_unit_from((Fraction(1, 2), -3)) == (1, -1)  # ceil((1/2 + 1) / 2), -3 + 2
    assert field.first_unit_from(-1) == (0, 1)
    with pytest.raises(TypeError, match="position"):
        field.first_unit_from(0.5)  # type: ignore[arg-type]
