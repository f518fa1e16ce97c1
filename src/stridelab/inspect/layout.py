"""Which spatial positions each index of a captured tensor stands for.

Models move the spatial axes of their input around: channels-last blocks permute ``(N, C, H, W)``
to ``(N, H, W, C)``, vision transformers flatten the patch grid into a token sequence, Swin
partitions it into windows folded into the batch. A :class:`Layout` keeps track of where the
positions went, per tensor dimension, as a mixed-radix number:

* every dimension is a list of :class:`Factor` ``(axis, count, step)`` from outer to inner; the
  index ``i`` of the dimension is split into digits ``d_j < count_j`` and the digit of a factor on
  spatial ``axis`` moves ``d_j * step_j`` positions along that axis (``axis=None``: a batch,
  channel, head or feature digit that moves nothing);
* a dimension may carry ``before`` / ``after`` extra entries that stand for no position (a class
  token concatenated to the patch tokens);
* the position of an element on axis ``a`` is ``base[a] + sum(d_j * step_j)`` over the factors on
  ``a`` of all dimensions; the field of a tensor (one :class:`~stridelab.arith.ReceptiveField`) is
  indexed by these positions.

So ``(N, C, H, W)`` is ``[N] [C] [(h, H, 1)] [(w, W, 1)]``; ``flatten(2).transpose(1, 2)`` gives
``[N] [(h, H, 1), (w, W, 1)] [C]``; a ``w x w`` window partition gives
``[N, (h, H/w, w), (w, W/w, w)] [(h, w, 1), (w, w, 1)] [C]``. Reshapes that do not factor the
existing digits return ``None`` (the caller then gives up on the positions).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Factor:
    """One digit of a dimension: ``count`` values, each moving ``step`` positions on ``axis``."""

    axis: int | None
    count: int
    step: int = 0


@dataclass(frozen=True)
class Dim:
    """A tensor dimension: its digits, outer first, plus entries that are no position.

    ``core`` (the digits' product), ``size`` and ``spatial`` (some digit is on an axis), like the
    layout's ``shape`` and ``spatial``, are computed when the object is made: a capture reads
    them tens of thousands of times, most objects only once or twice, which is too few for
    ``functools.cached_property`` (a lock and a call per first read) to pay off.
    """

    factors: tuple[Factor, ...] = ()
    before: int = 0
    after: int = 0
    core: int = field(init=False, repr=False, compare=False)
    size: int = field(init=False, repr=False, compare=False)
    spatial: bool = field(init=False, repr=False, compare=False)
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        core = 1
        spatial = False
        for f in self.factors:
            core *= f.count
            spatial = spatial or f.axis is not None
        object.__setattr__(self, "core", core)
        object.__setattr__(self, "size", self.before + core + self.after)
        object.__setattr__(self, "spatial", spatial)
        object.__setattr__(self, "_hash", hash((self.factors, self.before, self.after)))

    def __hash__(self) -> int:
        return self._hash

    def axes(self) -> set[int]:
        return {f.axis for f in self.factors if f.axis is not None and f.count > 1}


@functools.lru_cache(maxsize=4096)
def plain_dim(size: int) -> Dim:
    """A dimension of ``size`` entries that are no position (one object per size: immutable)."""
    return Dim((Factor(None, size),) if size != 1 else ())


@dataclass(frozen=True)
class Layout:
    """Per dimension a :class:`Dim`; ``base`` is the position of index 0 on each spatial axis."""

    dims: tuple[Dim, ...]
    base: tuple[int, ...]
    shape: tuple[int, ...] = field(init=False, repr=False, compare=False)
    spatial: bool = field(init=False, repr=False, compare=False)
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        dims = self.dims
        object.__setattr__(self, "shape", tuple([d.size for d in dims]))
        object.__setattr__(self, "spatial", any([d.spatial for d in dims]))
        object.__setattr__(self, "_hash", hash((dims, self.base)))

    def __hash__(self) -> int:
        """Computed once (layouts are keys of the memoised layout functions below)."""
        return self._hash

    @property
    def grid(self) -> bool:
        """Some dimension indexes positions only (a map, a token sequence, window tokens);
        False once positions are only folded into features (after ``flatten(1)``)."""
        return any(d.spatial and all(f.axis is not None or f.count == 1 for f in d.factors)
                   for d in self.dims)

    def factors(self, axis: int) -> list[tuple[int, Factor]]:
        """``(dim, factor)`` of every digit on ``axis`` (count 1 included)."""
        return [(i, f) for i, d in enumerate(self.dims) for f in d.factors if f.axis == axis]

    def extent(self, axis: int) -> int:
        """Positions spanned on ``axis``: ``1 + sum((count - 1) * step)``."""
        return 1 + sum((f.count - 1) * f.step for _, f in self.factors(axis))

    def axes(self) -> set[int]:
        """Axes along which this tensor holds more than one position."""
        return {a for d in self.dims for a in d.axes()}


def image(shape: Sequence[int], ndim: int) -> Layout:
    """``(N, C, *spatial)``: the model input."""
    lead = len(shape) - ndim
    dims = [plain_dim(n) for n in shape[:lead]]
    dims += [Dim((Factor(a, n, 1),)) for a, n in enumerate(shape[lead:])]
    return Layout(tuple(dims), (0,) * ndim)


def plain(shape: Sequence[int], ndim: int) -> Layout:
    return Layout(tuple(plain_dim(n) for n in shape), (0,) * ndim)


def _index(dim: int, rank: int) -> int:
    return dim + rank if dim < 0 else dim


def permute(layout: Layout, order: Sequence[int]) -> Layout:
    rank = len(layout.dims)
    return Layout(tuple([layout.dims[_index(d, rank)] for d in order]), layout.base)


def transpose(layout: Layout, first: int, second: int) -> Layout:
    rank = len(layout.dims)
    order = list(range(rank))
    a, b = _index(first, rank), _index(second, rank)
    order[a], order[b] = order[b], order[a]
    return permute(layout, order)


def _atoms(layout: Layout) -> list[Factor | Dim] | None:
    """Digits outer to inner; a dimension with extra entries stays one opaque atom."""
    atoms: list[Factor | Dim] = []
    for dim in layout.dims:
        if dim.before or dim.after:
            atoms.append(dim)
        else:
            atoms += [f for f in dim.factors if f.count != 1 or f.axis is not None]
    return atoms


def reshape(layout: Layout, shape: Sequence[int]) -> Layout | None:
    """The layout after ``view`` / ``reshape`` to ``shape``, or None if the sizes do not factor
    the digits (a reshape that scrambles positions)."""
    return _reshape(layout, tuple(shape))


# memoised: layouts are immutable, and a model repeats the same reshapes and slices on the
# same layouts block after block (MViT-v2-H: 2,500 reshapes of a few dozen distinct layouts)
@functools.lru_cache(maxsize=4096)
def _reshape(layout: Layout, shape: tuple[int, ...]) -> Layout | None:
    atoms = _atoms(layout)
    if atoms is None:
        return None
    atoms.reverse()  # pop from the end = outermost first
    dims: list[Dim] = []
    for size in shape:
        need = size
        taken: list[Factor] = []
        while atoms and isinstance(atoms[-1], Factor) and atoms[-1].count == 1:
            single = atoms.pop()  # keep singleton spatial digits (a 1x1 map) in place
            assert isinstance(single, Factor)
            taken.append(single)
        if need == 1:
            dims.append(Dim(tuple(f for f in taken if f.axis is not None)))
            continue
        if atoms and isinstance(atoms[-1], Dim):
            dim = atoms.pop()
            assert isinstance(dim, Dim)
            if dim.size != need or taken:
                return None
            dims.append(dim)
            continue
        while need > 1:
            if not atoms:
                return None
            atom = atoms.pop()
            if isinstance(atom, Dim):
                return None
            if atom.count == 1:
                continue
            if need % atom.count == 0:
                taken.append(atom)
                need //= atom.count
            elif atom.count % need == 0:
                inner = atom.count // need
                taken.append(Factor(atom.axis, need, atom.step * inner))
                atoms.append(Factor(atom.axis, inner, atom.step))
                need = 1
            else:
                return None
        dims.append(_merge_plain(taken))
    if any(isinstance(a, Dim) or a.count != 1 for a in atoms):
        return None
    return Layout(tuple(dims), layout.base)


def _merge_plain(factors: list[Factor]) -> Dim:
    """Adjacent digits that form one number merge: non-spatial ones multiply, and an outer
    digit on the same axis whose step is the inner one's span (a window index followed by the
    position inside the window) becomes one digit again."""
    out: list[Factor] = []
    for f in factors:
        if f.count == 1 and f.axis is None:
            continue
        last = out[-1] if out else None
        if last is not None and f.axis is None and last.axis is None:
            out[-1] = Factor(None, last.count * f.count)
        elif (last is not None and f.axis is not None and last.axis == f.axis
              and last.step == f.count * f.step):
            out[-1] = Factor(f.axis, last.count * f.count, f.step)
        else:
            out.append(f)
    return Dim(tuple(out))


def expand(layout: Layout, shape: Sequence[int]) -> Layout:
    """Broadcast singleton dimensions (and new leading ones) to ``shape``: repeats, no positions."""
    dims = list(layout.dims)
    lead = len(shape) - len(dims)
    out = [plain_dim(n) for n in shape[:lead]]
    for dim, size in zip(dims, shape[lead:]):
        out.append(dim if size in (-1, dim.size) else plain_dim(size))
    return Layout(tuple(out), layout.base)


def select(layout: Layout, dim: int, index: int) -> tuple[Layout, bool] | None:
    """Drop dimension ``dim`` keeping entry ``index``; ``(layout, extra)`` where ``extra`` says
    the entry was an extra (class) token, or None if the digits cannot say where it sits."""
    sliced = slice_dim(layout, dim, index, index + 1, 1)
    if sliced is None:
        return None
    new, extra = sliced
    rank = len(layout.dims)
    d = _index(dim, rank)
    kept = new.dims[d]
    if kept.before or kept.after or kept.core != 1:
        return None
    return Layout(new.dims[:d] + new.dims[d + 1:], new.base), extra


def slice_dim(layout: Layout, dim: int, start: int, stop: int, step: int
              ) -> tuple[Layout, bool] | None:
    """Keep entries ``start:stop:step`` (already clamped to ``[0, size]``) of ``dim``.

    Works on a dimension with one digit per axis (a crop or a strided subsampling: the base and
    step move), on a run of non-spatial digits, and on slices that only keep or drop the extra
    entries. Returns ``(layout, only_extras)``.
    """
    return _slice_dim(layout, int(dim), int(start), int(stop), int(step))


@functools.lru_cache(maxsize=4096)
def _slice_dim(layout: Layout, dim: int, start: int, stop: int, step: int
               ) -> tuple[Layout, bool] | None:
    rank = len(layout.dims)
    d = _index(dim, rank)
    old = layout.dims[d]
    count = max(0, -(-(stop - start) // step))
    if not old.spatial and not old.before and not old.after:
        return _replace_dim(layout, d, plain_dim(count)), False
    lo, hi = old.before, old.before + old.core
    if stop <= lo or start >= hi:  # only extra entries
        return _replace_dim(layout, d, Dim((), count, 0) if count else Dim()), True
    if start == lo and stop == hi and step == 1:  # drop the extras, keep the grid
        return _replace_dim(layout, d, Dim(old.factors)), False
    if start < lo or stop > hi or old.before or old.after:
        return None
    spatial = [f for f in old.factors if f.count > 1]
    if len(spatial) != 1 or spatial[0].axis is None:
        return None
    f = spatial[0]
    axis = f.axis
    assert axis is not None
    base = list(layout.base)
    base[axis] += start * f.step
    new = Dim((Factor(f.axis, count, f.step * step),))
    return Layout(_replace_dim(layout, d, new).dims, tuple(base)), False


def _replace_dim(layout: Layout, d: int, dim: Dim) -> Layout:
    return Layout(layout.dims[:d] + (dim,) + layout.dims[d + 1:], layout.base)


def unfold_dim(layout: Layout, dim: int, size: int, step: int) -> Layout | None:
    """``Tensor.unfold(dim, size, step)``: ``dim`` keeps the window starts, a new last dimension
    holds the ``size`` positions inside each window (the same axis, overlapping windows)."""
    rank = len(layout.dims)
    d = _index(dim, rank)
    old = layout.dims[d]
    starts = (old.size - size) // step + 1
    if not old.spatial:
        return Layout(_replace_dim(layout, d, plain_dim(starts)).dims + (plain_dim(size),),
                      layout.base)
    spatial = [f for f in old.factors if f.count > 1]
    if old.before or old.after or len(spatial) != 1:
        return None
    f = spatial[0]
    return Layout(_replace_dim(layout, d, Dim((Factor(f.axis, starts, f.step * step),))).dims
                  + (Dim((Factor(f.axis, size, f.step),)),), layout.base)


def interleave(bases: Sequence[tuple[int, ...]]) -> tuple[tuple[Factor, ...], tuple[int, ...]] | None:
    """Digits that enumerate ``bases`` (one position per concatenated tensor, in order) as a
    mixed-radix number, and the first base; None if they do not form such a grid.

    ``x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2]`` concatenated along channels
    (Swin's patch merging) give ``[(w, 2, 1), (h, 2, 1)]``: space-to-depth.
    """
    points = [tuple(b) for b in bases]
    factors: list[Factor] = []
    while len(points) > 1:
        delta = tuple(q - p for p, q in zip(points[0], points[1]))
        moved = [a for a, v in enumerate(delta) if v != 0]
        if len(moved) != 1 or delta[moved[0]] < 0:
            return None
        run = 1
        while run < len(points) and points[run] == tuple(
                p + run * v for p, v in zip(points[0], delta)):
            run += 1
        if len(points) % run:
            return None
        for start in range(0, len(points), run):
            for k in range(run):
                if points[start + k] != tuple(p + k * v for p, v in
                                               zip(points[start], delta)):
                    return None
        factors.insert(0, Factor(moved[0], run, delta[moved[0]]))
        points = points[::run]
    return tuple(factors), points[0]


def same_positions(a: Layout, b: Layout) -> bool:
    return a.dims == b.dims and a.base == b.base
