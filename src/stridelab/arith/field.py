"""Receptive-field algebra (Araujo, Norris & Sim, "Computing Receptive Fields of Convolutional
Neural Networks", Distill 2019).

A :class:`ReceptiveField` maps an output unit of a network prefix back to the input, per axis:

* ``size`` r: how many input positions one unit sees (its span, padding included);
* ``stride`` S: how far apart, in input positions, neighbouring units' regions start;
* ``padding`` P: effective padding, so unit ``u`` sees ``[u * S - P, u * S - P + r - 1]``.

Layers are appended one at a time with the Distill recurrences (eq. 2, 5 and 7 of the article,
written forward from the input)::

    r_new = r + (k_eff - 1) * S        S_new = S * s        P_new = P + p_before * S

Only the padding *before* enters. A transposed layer (upsampling by ``s``) is the same recurrence
with kernel ``(k_eff - 1) / s + 1``, stride ``1 / s`` and padding ``(k_eff - 1 - p_before) / s``
in its input's units, so stride, size and padding can become fractions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from stridelab.arith._check import PaddingSpec, check_int, is_int, per_axis, per_axis_sizes
from stridelab.arith.sizes import padding_pairs

Number = int | Fraction
IndexLike = int | Sequence[int]


class MisalignedError(ValueError):
    """Branches joined at a merge have different effective strides or centre offsets."""


def _num(value: Number | float) -> Number:
    """Normalise to ``int`` when integral, else an exact ``Fraction``."""
    if type(value) is int:
        return value
    frac = Fraction(value)
    return int(frac) if frac.denominator == 1 else frac


def _axis_values(name: str, value: object, ndim: int | None) -> tuple[Number, ...]:
    if isinstance(value, (int, Fraction)) and not isinstance(value, bool):
        return (_num(value),) * (ndim or 1)
    if isinstance(value, (tuple, list)):
        if ndim is not None and len(value) != ndim:
            raise ValueError(f"{name} must have {ndim} values, got {len(value)}")
        out = []
        for v in value:
            if not isinstance(v, (int, Fraction)) or isinstance(v, bool):
                raise TypeError(f"{name} values must be ints or Fractions, got {v!r}")
            out.append(_num(v))
        return tuple(out)
    raise TypeError(f"{name} must be a number or a tuple of numbers, got {value!r}")


@dataclass(frozen=True)
class ReceptiveField:
    """Per-axis receptive field of an output unit: ``size``, effective ``stride``, ``padding``.

    All three are tuples with one value per spatial axis (ints, or Fractions after transposed
    layers). Construct with ints or tuples; ``ReceptiveField.identity(ndim)`` is the input itself.
    """

    size: tuple[Number, ...]
    stride: tuple[Number, ...]
    padding: tuple[Number, ...]

    def __post_init__(self) -> None:
        sizes = _axis_values("size", self.size, None)
        ndim = len(sizes)
        strides = _axis_values("stride", self.stride, ndim)
        pads = _axis_values("padding", self.padding, ndim)
        if len(sizes) == 1 and ndim == 1:
            ndim = max(len(strides), len(pads))
            sizes = sizes * ndim if len(sizes) == 1 else sizes
            strides = _axis_values("stride", self.stride, ndim)
            pads = _axis_values("padding", self.padding, ndim)
        if any(s <= 0 for s in strides):
            raise ValueError(f"stride must be > 0 on every axis, got {strides}")
        if any(r <= 0 for r in sizes):
            raise ValueError(f"size must be > 0 on every axis, got {sizes}")
        object.__setattr__(self, "size", sizes)
        object.__setattr__(self, "stride", strides)
        object.__setattr__(self, "padding", pads)

    @classmethod
    def _derived(cls, size: tuple[Number, ...], stride: tuple[Number, ...],
                 padding: tuple[Number, ...]) -> ReceptiveField:
        """A field computed from valid ones by the recurrences (already normalised tuples of
        equal length, sizes and strides > 0): made without ``__post_init__``'s checks, which
        cost more than the recurrence itself when an inspection makes thousands of fields."""
        made = object.__new__(cls)
        object.__setattr__(made, "size", size)
        object.__setattr__(made, "stride", stride)
        object.__setattr__(made, "padding", padding)
        return made

    @classmethod
    def identity(cls, ndim: int = 1) -> ReceptiveField:
        """The field of the input itself: size 1, stride 1, padding 0 on ``ndim`` axes."""
        return cls((1,) * ndim, (1,) * ndim, (0,) * ndim)

    @property
    def ndim(self) -> int:
        return len(self.size)

    def _index(self, index: IndexLike) -> tuple[int, ...]:
        return per_axis("index", index, self.ndim, 0)

    def _shape(self, index: IndexLike, values: list[Number]) -> Number | tuple[Number, ...]:
        if self.ndim == 1 and is_int(index):
            return values[0]
        return tuple(values)

    def start(self, index: IndexLike) -> Number | tuple[Number, ...]:
        """First input position seen by output unit ``index``: ``u * S - P`` (may be < 0)."""
        idx = self._index(index)
        return self._shape(index, [_num(u * s - p) for u, s, p in zip(idx, self.stride, self.padding)])

    def end(self, index: IndexLike) -> Number | tuple[Number, ...]:
        """Last input position seen (inclusive): ``start + r - 1`` (may be past the input)."""
        idx = self._index(index)
        return self._shape(index, [_num(u * s - p + r - 1)
                                   for u, s, p, r in zip(idx, self.stride, self.padding, self.size)])

    def last_unit_within(self, position: Number | Sequence[Number]) -> int | tuple[int, ...]:
        """Per axis, the last unit whose region ends at or before input ``position``:
        ``floor((position - (r - 1 - P)) / S)`` (negative when even unit 0 ends after it).

        For a field ``F`` and a later layer ``G = F.then(k, s, p, d)`` (one path),
        ``F.last_unit_within(G.end(u)) = u * s - p_before + d * (k - 1)``: the last index of
        ``F``'s map that unit ``u`` of ``G`` reads (padding included). Through merged branches
        (``G``'s field the largest of several paths) it is an upper bound for each branch.
        """
        single = not isinstance(position, (tuple, list))
        values = self._positions(position)
        units = [math.floor((x - (r - 1 - p)) / s)
                 for x, s, p, r in zip(values, self.stride, self.padding, self.size)]
        return units[0] if single and self.ndim == 1 else tuple(units)

    def first_unit_from(self, position: Number | Sequence[Number]) -> int | tuple[int, ...]:
        """Per axis, the first unit whose region starts at or after input ``position``:
        ``ceil((position + P) / S)`` (the mirror of :meth:`last_unit_within`).

        For a field ``F`` and a later layer ``G = F.then(k, s, p, d)`` (one path),
        ``F.first_unit_from(G.start(u)) = u * s - p_before``: the first index of ``F``'s map that
        unit ``u`` of ``G`` reads (padding included). After a nearest upsampling by a whole
        ``f`` (a transposed window of kernel ``f``, stride ``f``), it is ``floor(u / f)``, the one
        unit read, which the linear field ``G`` itself only brackets.
        """
        single = not isinstance(position, (tuple, list))
        values = self._positions(position)
        units = [math.ceil((x + p) / s) for x, s, p in zip(values, self.stride, self.padding)]
        return units[0] if single and self.ndim == 1 else tuple(units)

    def _positions(self, position: Number | Sequence[Number]) -> list[Fraction]:
        single = not isinstance(position, (tuple, list))
        values: list[Fraction] = []
        for value in ([position] * self.ndim if single else list(position)):  # type: ignore[arg-type]
            if not isinstance(value, (int, Fraction)) or isinstance(value, bool):
                raise TypeError(f"position must be an int or Fraction per axis ({self.ndim}), "
                                f"got {position!r}")
            values.append(Fraction(value))
        if len(values) != self.ndim:
            raise TypeError(f"position must be an int or Fraction per axis ({self.ndim}), "
                            f"got {position!r}")
        return values

    def center(self, index: IndexLike) -> Number | tuple[Number, ...]:
        """Centre of the region: ``start + (r - 1) / 2`` (a half-integer for even sizes)."""
        idx = self._index(index)
        return self._shape(index, [_num(u * s - p + Fraction(r - 1, 2))
                                   for u, s, p, r in zip(idx, self.stride, self.padding, self.size)])

    @property
    def center_offset(self) -> tuple[Number, ...]:
        """Centre of unit 0, ``-P + (r - 1) / 2``: the alignment quantity compared at merges."""
        return tuple(_num(-p + Fraction(r - 1, 2)) for p, r in zip(self.padding, self.size))

    def then(
        self, kernel: IndexLike = 1, stride: IndexLike = 1, padding: PaddingSpec = 0,
        dilation: IndexLike = 1, *, transposed: bool = False, input_size: IndexLike | None = None,
    ) -> ReceptiveField:
        """The field after appending one layer (Distill 2019 recurrences, see module docstring).

        ``padding`` takes every form of :mod:`stridelab.arith`; strings need ``input_size`` (the
        size entering this layer) unless the padding is size-independent.
        """
        ndim = self.ndim
        ks = per_axis("kernel", kernel, ndim, 1)
        ss = per_axis("stride", stride, ndim, 1)
        ds = per_axis("dilation", dilation, ndim, 1)
        sizes = per_axis_sizes("input_size", input_size, ndim)
        if transposed and isinstance(padding, str):
            raise ValueError("padding strings are not supported for transposed layers here; "
                             "pass the numeric (before, after) padding")
        pads = padding_pairs(padding, sizes, ks, ss, ds)
        return self._appended(ks, ss, ds, tuple(before for before, _after in pads), transposed)

    def then_on_axis(self, axis: int, kernel: int, stride: int, padding_before: int,
                     dilation: int = 1) -> ReceptiveField:
        """:meth:`then` with a window on one axis only (kernel 1, stride 1, no padding on the
        others), checked as cheaply as an inner loop needs: ints, ``kernel, stride,
        dilation >= 1``, ``padding_before >= 0``."""
        if not 0 <= axis < self.ndim:
            raise ValueError(f"axis must be in [0, {self.ndim}), got {axis}")
        for name, value, low in (("kernel", kernel, 1), ("stride", stride, 1),
                                 ("padding_before", padding_before, 0),
                                 ("dilation", dilation, 1)):
            if type(value) is not int and not is_int(value):
                raise TypeError(f"{name} must be an int, got {value!r}")
            if value < low:
                raise ValueError(f"{name} must be >= {low}, got {value}")
        ones = (1,) * self.ndim
        ks = ones[:axis] + (int(kernel),) + ones[axis + 1:]
        ss = ones[:axis] + (int(stride),) + ones[axis + 1:]
        ds = ones[:axis] + (int(dilation),) + ones[axis + 1:]
        pads = (0,) * axis + (int(padding_before),) + (0,) * (self.ndim - axis - 1)
        return self._appended(ks, ss, ds, pads, False)

    def _appended(self, kernels: Sequence[int], strides: Sequence[int],
                  dilations: Sequence[int], pads_before: Sequence[int], transposed: bool
                  ) -> ReceptiveField:
        """The recurrences themselves, on checked per-axis values (padding: before only)."""
        new_size, new_stride, new_pad = [], [], []
        for r, S, P, k, s, d, pb in zip(self.size, self.stride, self.padding, kernels, strides,
                                        dilations, pads_before):
            k_eff = d * (k - 1) + 1
            if transposed:
                kernel_in = Fraction(k_eff - 1, s) + 1
                stride_in: Number = Fraction(1, s)
                pad_in: Number = Fraction(k_eff - 1 - pb, s)
            else:
                kernel_in, stride_in, pad_in = k_eff, s, pb
            new_size.append(_num(r + (kernel_in - 1) * S))
            new_stride.append(_num(S * stride_in))
            new_pad.append(_num(P + pad_in * S))
        return ReceptiveField._derived(tuple(new_size), tuple(new_stride), tuple(new_pad))

    def is_aligned_with(self, other: ReceptiveField) -> bool:
        """Same effective stride and same :attr:`center_offset` on every axis (compared as
        ``2 * offset = r - 1 - 2P``, which needs no Fraction for integer fields)."""
        return self.stride == other.stride and all(
            r - 1 - 2 * p == r2 - 1 - 2 * p2
            for r, p, r2, p2 in zip(self.size, self.padding, other.size, other.padding))

    def merge(self, other: ReceptiveField) -> ReceptiveField:
        """Join two branches (add / mul / cat): the Distill 2019 alignment rule.

        Both paths must have the same effective stride and the same centre offset; the merged
        field is the larger one per axis. Otherwise :class:`MisalignedError` names both.
        """
        if not isinstance(other, ReceptiveField):
            raise TypeError(f"other must be a ReceptiveField, got {type(other).__name__}")
        if other.ndim != self.ndim:
            raise ValueError(f"cannot merge a {self.ndim}-D field with a {other.ndim}-D field")
        if not self.is_aligned_with(other):
            raise MisalignedError(
                f"misaligned branches: stride {_fmt(self.stride)} centre {_fmt(self.center_offset)} "
                f"vs stride {_fmt(other.stride)} centre {_fmt(other.center_offset)}"
            )
        pick = [a if a >= b else b for a, b in zip(self.size, other.size)]
        pads = [self.padding[ax] if pick[ax] == self.size[ax] else other.padding[ax]
                for ax in range(self.ndim)]
        return ReceptiveField._derived(tuple(pick), self.stride, tuple(pads))

    def sliced(self, axis: int, start: int, step: int) -> ReceptiveField:
        """The field after keeping positions ``start, start + step, ...`` of ``axis`` (crop/slice).

        A 1-tap window of stride ``step`` whose first tap sits ``start`` positions in:
        ``S_new = S * step``, ``P_new = P - start * S`` (negative padding = an offset into the map).
        """
        if not 0 <= axis < self.ndim:
            raise ValueError(f"axis must be in [0, {self.ndim}), got {axis}")
        check_int("start", start, 0)
        check_int("step", step, 1)
        return self.regrid(axis, start, step)

    def regrid(self, axis: int, origin: int, step: int) -> ReceptiveField:
        """The field of the map whose unit ``u`` on ``axis`` is unit ``origin + u * step`` of
        this one: ``S_new = S * step``, ``P_new = P - origin * S``, ``r`` unchanged.

        :meth:`sliced` for any ``origin``, negative included (a grid that starts in the padding,
        as the patches of ``F.unfold`` with padding do).
        """
        if not 0 <= axis < self.ndim:
            raise ValueError(f"axis must be in [0, {self.ndim}), got {axis}")
        if not is_int(origin):
            raise TypeError(f"origin must be an int, got {origin!r}")
        check_int("step", step, 1)
        strides = tuple(_num(s * step) if a == axis else s for a, s in enumerate(self.stride))
        pads = tuple(_num(p - origin * s) if a == axis else p
                     for a, (p, s) in enumerate(zip(self.padding, self.stride)))
        return ReceptiveField._derived(self.size, strides, pads)

    def axis(self, axis: int) -> ReceptiveField:
        """The 1-D field of one axis (see :meth:`from_axes`)."""
        if not 0 <= axis < self.ndim:
            raise ValueError(f"axis must be in [0, {self.ndim}), got {axis}")
        return ReceptiveField._derived((self.size[axis],), (self.stride[axis],),
                                       (self.padding[axis],))

    @classmethod
    def from_axes(cls, axes: Sequence[ReceptiveField]) -> ReceptiveField:
        """Stack 1-D fields into one field with an axis per entry (inverse of :meth:`axis`)."""
        if not axes or any(not isinstance(f, ReceptiveField) or f.ndim != 1 for f in axes):
            raise ValueError("axes must be a non-empty sequence of 1-D ReceptiveFields")
        return cls._derived(tuple([f.size[0] for f in axes]), tuple([f.stride[0] for f in axes]),
                            tuple([f.padding[0] for f in axes]))

    def to_dict(self) -> dict[str, list[float | int]]:
        """JSON-friendly form (Fractions become floats)."""
        def plain(values: tuple[Number, ...]) -> list[float | int]:
            return [v if isinstance(v, int) else float(v) for v in values]
        return {"size": plain(self.size), "stride": plain(self.stride), "padding": plain(self.padding)}


def hull(fields: Sequence[ReceptiveField], output_size: Sequence[int] | None = None) -> ReceptiveField:
    """Conservative join of misaligned branches: the smallest field (with the coarsest stride) whose
    region contains every branch's region at each of the ``output_size`` output positions.

    Per axis, with ``S = max S_j`` and ``n`` positions: ``P = max_j (P_j + (n - 1) * (S - S_j))``
    and ``r = max_j (r_j + P - P_j)``; for equal strides this is ``[min start, max end]``.
    Aligned branches give exactly :meth:`ReceptiveField.merge`.
    """
    if not fields:
        raise ValueError("fields must contain at least one ReceptiveField")
    ndim = fields[0].ndim
    if any(f.ndim != ndim for f in fields):
        raise ValueError("fields must all have the same number of axes")
    counts = per_axis("output_size", output_size, ndim, 1) if output_size is not None else (1,) * ndim
    sizes, strides, pads = [], [], []
    for axis in range(ndim):
        n = counts[axis]
        target = max(f.stride[axis] for f in fields)
        pad = max(f.padding[axis] + (n - 1) * (target - f.stride[axis]) for f in fields)
        sizes.append(_num(max(f.size[axis] + pad - f.padding[axis] for f in fields)))
        strides.append(target)
        pads.append(_num(pad))
    return ReceptiveField(tuple(sizes), tuple(strides), tuple(pads))


def _fmt(values: tuple[Number, ...]) -> str:
    return "x".join(str(v) for v in values)
