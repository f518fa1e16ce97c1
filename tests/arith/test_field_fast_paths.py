"""The inspector's cheap entry points into the receptive-field recurrences: a window on one axis
(``ReceptiveField.then_on_axis``) and fields made from fields without re-checking
(``ReceptiveField._derived``, used by ``then`` / ``merge`` / ``regrid`` / ``axis`` / ``from_axes``).

Oracle: torch autograd on 2-D chains of all-ones windows (the input positions one output unit
reaches), and the checked constructor for everything the recurrences return."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from stridelab.arith import ReceptiveField
from tests._budget import budget

Window = tuple[int, int, int, int, int]  # axis, kernel, stride, padding, dilation


@st.composite
def windows(draw: st.DrawFn) -> list[Window]:
    out = []
    for _ in range(draw(st.integers(1, 4))):
        kernel = draw(st.integers(1, 5))
        out.append((draw(st.integers(0, 1)), kernel, draw(st.integers(1, 3)),
                    draw(st.integers(0, kernel // 2)), draw(st.integers(1, 2))))
    return out


def support_box(size: int, chain: list[Window], unit: tuple[int, int]
                ) -> tuple[tuple[int, int], tuple[int, int]]:
    """First and last input row / column whose gradient is nonzero for output ``unit``."""
    x = torch.rand(1, 1, size, size, dtype=torch.float64) + 0.5
    x.requires_grad_(True)
    y = x
    for axis, kernel, stride, padding, dilation in chain:
        shape = (kernel, 1) if axis == 0 else (1, kernel)
        y = F.conv2d(y, torch.ones(1, 1, *shape, dtype=y.dtype),
                     stride=(stride, 1) if axis == 0 else (1, stride),
                     padding=(padding, 0) if axis == 0 else (0, padding),
                     dilation=(dilation, 1) if axis == 0 else (1, dilation))
    y[0, 0, unit[0], unit[1]].backward()
    assert x.grad is not None
    rows, cols = torch.nonzero(x.grad[0, 0], as_tuple=True)
    return (int(rows.min()), int(rows.max())), (int(cols.min()), int(cols.max()))


@settings(max_examples=budget(150), deadline=None)
@given(chain=windows(), size=st.integers(20, 48), data=st.data())
def test_then_on_axis_matches_gradient_support(chain: list[Window], size: int,
                                               data: st.DataObject) -> None:
    field = ReceptiveField.identity(2)
    out = [size, size]
    for axis, kernel, stride, padding, dilation in chain:
        field = field.then_on_axis(axis, kernel, stride, padding, dilation)
        out[axis] = (out[axis] + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    assume(min(out) >= 1)
    unit = (data.draw(st.integers(0, out[0] - 1)), data.draw(st.integers(0, out[1] - 1)))
    start, end = field.start(unit), field.end(unit)
    assert isinstance(start, tuple) and isinstance(end, tuple)
    assume(all(0 <= s and e <= size - 1 for s, e in zip(start, end)))
    box = support_box(size, chain, unit)
    assert box == ((start[0], end[0]), (start[1], end[1]))


@settings(max_examples=budget(200))
@given(chain=windows())
def test_then_on_axis_is_then_with_per_axis_values(chain: list[Window]) -> None:
    fast = slow = ReceptiveField.identity(2)
    for axis, kernel, stride, padding, dilation in chain:
        fast = fast.then_on_axis(axis, kernel, stride, padding, dilation)
        ks = tuple(kernel if a == axis else 1 for a in range(2))
        ss = tuple(stride if a == axis else 1 for a in range(2))
        ps = tuple((padding, padding) if a == axis else (0, 0) for a in range(2))
        ds = tuple(dilation if a == axis else 1 for a in range(2))
        slow = slow.then(ks, ss, ps, ds)
    assert fast == slow and hash(fast) == hash(slow)


@settings(max_examples=budget(200))
@given(chain=windows(), origin=st.integers(-3, 5), step=st.integers(1, 3))
def test_derived_fields_equal_checked_ones(chain: list[Window], origin: int, step: int) -> None:
    field = ReceptiveField.identity(2)
    for axis, kernel, stride, padding, dilation in chain:
        field = field.then_on_axis(axis, kernel, stride, padding, dilation)
    made = [field, field.regrid(1, origin, step), field.axis(0),
            ReceptiveField.from_axes([field.axis(1), field.axis(0)]),
            field.merge(field), field.then((3, 1), (2, 1), ((1, 1), (0, 0)), transposed=True)]
    for derived in made:
        checked = ReceptiveField(derived.size, derived.stride, derived.padding)
        assert derived == checked and hash(derived) == hash(checked)
        assert all(type(v) is int or v.denominator != 1 for v in
                   (*derived.size, *derived.stride, *derived.padding))  # type: ignore[union-attr]


@pytest.mark.parametrize(("args", "error", "message"), [
    ((2, 3, 1, 0), ValueError, "axis must be in"),
    ((0, 0, 1, 0), ValueError, "kernel must be >= 1"),
    ((0, 3, 0, 0), ValueError, "stride must be >= 1"),
    ((0, 3, 1, -1), ValueError, "padding_before must be >= 0"),
    ((0, 1.5, 1, 0), TypeError, "kernel must be an int"),
    ((0, 3, True, 0), TypeError, "stride must be an int"),
    ((0, 3, 1, 0, 0), ValueError, "dilation must be >= 1"),
])
def test_then_on_axis_rejects_bad_input(args: tuple[object, ...], error: type[Exception],
                                        message: str) -> None:
    with pytest.raises(error, match=message):
        ReceptiveField.identity(2).then_on_axis(*args)  # type: ignore[arg-type]


@settings(max_examples=budget(300))
@given(first=windows(), second=windows(), up=st.integers(1, 3))
def test_alignment_is_the_centre_offset_comparison(first: list[Window], second: list[Window],
                                                   up: int) -> None:
    """``is_aligned_with`` compares doubled offsets in integers; oracle: the definition with
    Fractions, also for fractional fields after a transposed layer."""
    fields = []
    for chain in (first, second):
        field = ReceptiveField.identity(2)
        for axis, kernel, stride, padding, dilation in chain:
            field = field.then_on_axis(axis, kernel, stride, padding, dilation)
        fields.append(field)
        fields.append(field.then((2 * up, 1), (up, 1), 0, transposed=True))
    for a in fields:
        for b in fields:
            expected = a.stride == b.stride and a.center_offset == b.center_offset
            assert a.is_aligned_with(b) is expected
