"""Fields on layouts: what a captured tensor's field means and how operators that read many
positions change it.

A tensor's :class:`Info` holds one :class:`~stridelab.arith.ReceptiveField` indexed by grid
positions (see :mod:`stridelab.inspect.layout`) and a ``context`` flag: some operator upstream
read a whole axis of the map (global pooling, attention over the whole token grid, a global gate,
group normalisation). The field is then the *local* field of the main path; the flag says that
every unit also depends on the whole input. Every change of a field is a call into
:mod:`stridelab.arith`; this module only decides which axis and which window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from stridelab.arith import ReceptiveField, block_window
from stridelab.inspect.geometry import merge_fields
from stridelab.inspect.layout import Dim, Factor, Layout


@dataclass(frozen=True)
class Info:
    """What the recorder knows about one tensor."""

    field: ReceptiveField
    layout: Layout
    context: bool
    origin: int

    @property
    def spatial(self) -> bool:
        """The tensor is still a map (see :attr:`Layout.grid`)."""
        return self.layout.grid


def normalize(field: ReceptiveField, layout: Layout, axis: int
              ) -> tuple[ReceptiveField, Layout] | None:
    """Re-index ``axis`` so that its positions are ``0, 1, 2, ...`` of one dimension (what a
    sliding window needs); the field absorbs the old origin and step
    (:meth:`~stridelab.arith.ReceptiveField.regrid`). None if the axis is split over several
    digits (windows, space-to-depth) or its dimension carries other digits."""
    base = layout.base[axis]
    found = [(d, f) for d, f in layout.factors(axis) if f.count > 1]
    if len(found) > 1:
        return None
    if not found:
        if base == 0:
            return field, layout
        new_base = tuple(0 if a == axis else b for a, b in enumerate(layout.base))
        return field.regrid(axis, base, 1), replace(layout, base=new_base)
    d, factor = found[0]
    dim = layout.dims[d]
    if dim.before or dim.after or any(f is not factor and f.count > 1 for f in dim.factors):
        return None
    if base == 0 and factor.step == 1:
        return field, layout
    field = field.regrid(axis, base, factor.step)
    dims = list(layout.dims)
    dims[d] = Dim(tuple(Factor(axis, factor.count, 1) if f is factor else f
                        for f in dim.factors))
    new_base = tuple(0 if a == axis else b for a, b in enumerate(layout.base))
    return field, Layout(tuple(dims), new_base)


def unit_field(field: ReceptiveField, layout: Layout) -> ReceptiveField:
    """The field a report row shows: unit ``u`` steps along the digit with the most positions
    on each axis; finer digits in other dimensions (space-to-depth channels, the tokens of a
    window) are part of the unit."""
    for axis in range(field.ndim):
        digits = [f for _, f in layout.factors(axis) if f.count > 1]
        base = layout.base[axis]
        if not digits:
            if base:
                field = field.regrid(axis, base, 1)
            continue
        main = max(digits, key=lambda f: (f.count, f.step))
        extent = 1 + sum((f.count - 1) * f.step for f in digits if f.step < main.step)
        if extent > 1:
            kernel, pad = block_window(extent, centred=False)
            field = field.then_on_axis(axis, kernel, 1, pad)
        if base or main.step != 1:
            field = field.regrid(axis, base, main.step)
    return field


@dataclass(frozen=True)
class Contracted:
    """A tensor's field after reading every position of some of its digits."""

    field: ReceptiveField
    context: bool
    whole: frozenset[int]  # axes read entirely
    rebased: frozenset[int]  # axes reduced away: their origin moved into the field

    def layout(self, layout: Layout) -> Layout:
        """``layout`` with the origin of reduced axes reset (the field holds it now)."""
        base = tuple(0 if a in self.rebased else b for a, b in enumerate(layout.base))
        return replace(layout, base=base)


def contract(info: Info, dims: Sequence[int], kept: Layout | None) -> Contracted:
    """Every output element reads all positions of the digits in ``dims`` of ``info``'s tensor.

    Per axis with extent ``E`` in those digits: if they span the whole axis of the tensor (every
    position, or every ``step``-th one from end to end as in MaxViT's grid attention) the axis is
    global context; if ``kept`` (the output's layout)
    has no position left on that axis the field becomes one window over the whole map (as a
    global pooling, :math:`kernel = stride = ` the map size), else the local field stays.
    A partial block (a window) widens the field by :func:`stridelab.arith.block_window`,
    centred when the output still has positions inside the block (attention: the query is one of
    the window's tokens), at the block start otherwise (a channel mix after space-to-depth).
    """
    field = info.field
    layout = info.layout
    context = info.context
    whole: set[int] = set()
    rebased: set[int] = set()
    for axis in range(field.ndim):
        digits = [f for d, f in layout.factors(axis) if d in dims and f.count > 1]
        if not digits:
            continue
        extent = 1 + sum((f.count - 1) * f.step for f in digits)
        total = layout.extent(axis)
        left = [] if kept is None else [f for _, f in kept.factors(axis) if f.count > 1]
        # the digits span the axis from end to end (every position, or every step-th one as
        # MaxViT's grid attention reads): global
        if extent + max(f.step for f in digits) - 1 >= total:
            context = True
            whole.add(axis)
            if not left:
                base = layout.base[axis]
                if base:
                    field = field.regrid(axis, base, 1)
                rebased.add(axis)
                field = field.then_on_axis(axis, total, total, 0)
            continue
        centred = any(f.step <= max(g.step for g in digits) for f in left)
        kernel, pad = block_window(extent, centred=centred)
        field = field.then_on_axis(axis, kernel, 1, pad)
    return Contracted(field, context, frozenset(whole), frozenset(rebased))


def combine(parts: Sequence[tuple[ReceptiveField, set[int]]], ndim: int,
            out_layout: Layout) -> tuple[ReceptiveField, tuple[ReceptiveField, ...]]:
    """Merge fields axis by axis, each axis over the parts that hold positions on it (Distill's
    alignment rule, :func:`~stridelab.inspect.geometry.merge_fields`); returns the field and,
    if some axis was misaligned, the full fields that met."""
    if len(parts) == 1:
        return parts[0][0], ()
    axes: list[ReceptiveField] = []
    misaligned = False
    for axis in range(ndim):
        fields = [f.axis(axis) for f, keep in parts if axis in keep] or [parts[0][0].axis(axis)]
        unique = list(dict.fromkeys(fields))
        size = max(out_layout.extent(axis), 1)
        merged, aligned = merge_fields(unique, (size,))
        # without positions on this axis every part is one global window: nothing to align
        misaligned |= not aligned and size > 1
        axes.append(merged)
    field = ReceptiveField.from_axes(axes)
    return field, tuple(dict.fromkeys(f for f, _ in parts)) if misaligned else ()
