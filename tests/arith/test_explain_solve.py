"""explain(): the floor and the dropped pixels are visible; solve(): brute force agrees."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from stridelab import arith
from tests._budget import budget


def test_explain_exact_division() -> None:
    assert arith.explain(5, 3, 2, 1) == "(5 + 2*1 - 3) / 2 + 1 = 2 + 1 = 3"


def test_explain_makes_the_tutorial_mistake_visible() -> None:
    text = arith.explain(6, 3, 2, 0)
    assert "floor(3 / 2) + 1 = 1 + 1 = 2" in text
    assert "= 3" not in text
    assert "DROPPED: input position 5" in text


def test_explain_padding_only_and_gaps() -> None:
    assert "no real pixel is dropped" in arith.explain(224, 3, 2, 1)
    assert "SKIPPED: 4 input positions between taps are never read (1, 2, 4, 5)" in arith.explain(7, 1, 3, 0)


def test_explain_pool_ceil_and_transposed() -> None:
    text = arith.explain(5, 2, 2, 1, kind="pool", ceil_mode=True)
    assert "ceil((5 + 2*1 - 2) / 2) + 1 = ceil(5 / 2) + 1 = 4" in text
    assert "inside the right padding), so it is dropped: 3" in text
    assert arith.pool_output_size(5, 2, 2, 1, ceil_mode=True) == 3
    assert arith.explain(3, 3, 2, 1, kind="transposed", output_padding=1).endswith("= 6")


@settings(max_examples=budget(200))
@given(size=st.integers(1, 40), target=st.integers(1, 40))
def test_solve_agrees_with_brute_force(size: int, target: int) -> None:
    found = arith.solve(size, target)
    assert isinstance(found, list)
    brute = set()
    for k in (1, 2, 3, 5, 7):
        for s in (1, 2, 3, 4):
            for total in range(0, 2 * (k - 1) + 1):
                if size + total >= k and (size + total - k) // s + 1 == target:
                    brute.add((k, s, (total // 2, total - total // 2)))
    assert {(x.kernel, x.stride, x.padding) for x in found} == brute
    keys = [x.sort_key() for x in found]
    assert keys == sorted(keys)
    for x in found:
        assert arith.conv_output_size(size, x.kernel, x.stride, x.padding) == target
        assert x.dropped == arith.dropped_pixels(size, x.kernel, x.stride, x.padding)
