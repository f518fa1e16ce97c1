"""What each frame of a convolution animation shows, as plain data (no drawing).

Every position, size and padding here comes from :mod:`stridelab.arith`: output sizes from
``conv_output_size`` / ``transposed_output_size``, resolved padding from ``padding_pairs``, the
taps of each window from ``windows``, unread input pixels from ``uncovered_pixels`` and the
dropped border from ``dropped_pixels``. The renderer (:mod:`stridelab.viz.render`) only draws
what :func:`animation_frames` returns, so tests can check the content of every frame.

Conventions: 2-D, axes ``(height, width)``; a cell is ``(row, column)`` in *input* coordinates,
so padding cells have a row or column ``< 0`` or ``>= size``. Padding pairs are
``(before, after)`` = (top, bottom) on the height axis and (left, right) on the width axis.

* Convolution: one frame per output position, row-major. The frame's ``input_cells`` are the
  kernel taps (in kernel order, dilation gaps skipped) and ``output_cells`` is the one output
  cell being written.
* Transposed convolution (PyTorch's ``conv_transpose2d``): one frame per *input* position,
  row-major. Input cell ``i`` scatters a kernel-sized patch into the output, ``stride`` apart:
  output position ``i * s - p_before + t * d`` for tap ``t``. These are exactly the windows of
  the forward convolution over the transposed output (the transposed conv is that convolution's
  adjoint), so they come from ``arith.windows`` on the output size. Taps that land outside the
  output are cropped by ``padding``: they are drawn as ghost cells.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import product

from stridelab import arith
from stridelab.arith import PaddingPair, PaddingSpec

Cell = tuple[int, int]
Pair = tuple[int, int]

#: Largest input side the animation accepts (frames grow as the product of the output sides).
MAX_SIDE = 32


@dataclass(frozen=True)
class ConvSpec:
    """A fully resolved 2-D (transposed) convolution: every value per axis ``(height, width)``."""

    input_size: Pair
    kernel: Pair
    stride: Pair
    padding: tuple[PaddingPair, PaddingPair]
    dilation: Pair
    output_size: Pair
    transposed: bool = False
    output_padding: Pair = (0, 0)

    def describe(self) -> str:
        """One line such as ``conv 5x5 k3x3 s2x2 pad (1,1)x(1,1) d1x1 -> 3x3``."""
        def axes(pair: Sequence[object]) -> str:
            return "x".join(str(v) for v in pair)
        pads = "x".join(f"({b},{a})" for b, a in self.padding)
        kind = "transposed conv" if self.transposed else "conv"
        extra = f" output_padding {axes(self.output_padding)}" if self.transposed else ""
        return (f"{kind} {axes(self.input_size)}, kernel {axes(self.kernel)}, stride "
                f"{axes(self.stride)}, padding {pads}, dilation {axes(self.dilation)}{extra}"
                f" -> {axes(self.output_size)}")


def _pair(name: str, value: object, minimum: int) -> Pair:
    """An int (both axes) or a pair ``(height, width)`` of ints >= ``minimum``."""
    if isinstance(value, (tuple, list)) and len(value) != 2:
        raise ValueError(f"{name} must be an int or a (height, width) pair, got {value!r}")
    return _per_axis(name, value, minimum)


def _per_axis(name: str, value: object, minimum: int) -> Pair:
    """One int per axis (height, width), validated by :func:`stridelab.arith.per_axis`."""
    height, width = arith.per_axis(name, value, 2, minimum)
    return height, width


def conv_spec(
    input_size: int | Sequence[int], kernel: int | Sequence[int], stride: int | Sequence[int] = 1,
    padding: PaddingSpec = 0, dilation: int | Sequence[int] = 1, *, transposed: bool = False,
    output_padding: int | Sequence[int] = 0,
) -> ConvSpec:
    """Validate and resolve a 2-D (transposed) convolution for drawing.

    Ints apply to both axes; pairs are ``(height, width)``. ``padding`` takes every form of
    :func:`stridelab.arith.padding_pairs` (note: in 2-D a pair of ints means *per axis*, use
    ``((top, bottom), (left, right))`` for before/after). Strings (``"valid"``, ``"same"``,
    ``"same_lower"``) are accepted for convolution only. Inputs are limited to
    ``MAX_SIDE`` per axis so that an animation stays watchable.
    """
    size = _pair("input_size", input_size, 1)
    if max(size) > MAX_SIDE:
        raise ValueError(f"input_size must be at most {MAX_SIDE} per axis for an animation, "
                         f"got {size[0]}x{size[1]}")
    ks = _pair("kernel", kernel, 1)
    ss = _pair("stride", stride, 1)
    ds = _pair("dilation", dilation, 1)
    ops = _pair("output_padding", output_padding, 0)
    if not isinstance(transposed, bool):
        raise TypeError(f"transposed must be True or False, got {transposed!r}")
    if not transposed and ops != (0, 0):
        raise ValueError("output_padding applies only to a transposed convolution (transposed=True)")
    if transposed and isinstance(padding, str):
        raise ValueError("padding must be numeric for a transposed convolution (int, per-axis "
                         f"ints or (before, after) pairs), got {padding!r}")
    pads = arith.padding_pairs(padding, size, ks, ss, ds)
    if any(max(p) > MAX_SIDE for p in pads):
        raise ValueError(f"padding must be at most {MAX_SIDE} per side, got {pads}")
    if transposed:
        out = arith.transposed_output_size(size, ks, ss, pads, ds, ops)
    else:
        out = arith.conv_output_size(size, ks, ss, pads, ds)
    assert isinstance(out, tuple)
    return ConvSpec(size, ks, ss, (pads[0], pads[1]), ds, (out[0], out[1]), transposed, ops)


@dataclass(frozen=True)
class Frame:
    """One step of the animation.

    ``input_cells`` / ``output_cells`` are highlighted; ``taps`` gives the kernel index
    ``(row, column)`` of each cell of the side that has one cell per tap (the input for a
    convolution, the output for a transposed convolution), in the same order.
    """

    step: int
    input_cells: tuple[Cell, ...]
    output_cells: tuple[Cell, ...]
    taps: tuple[Cell, ...]


@dataclass(frozen=True)
class FramePlan:
    """Everything the animation draws: grid extents, special cells and the frames.

    ``input_rows`` / ``input_cols`` (and the output ones) are the index ranges drawn, including
    padding (convolution) or cropped positions (transposed). ``input_padding``: padding cells of
    the input grid. ``output_cropped``: positions a transposed conv writes outside its output
    (removed by ``padding``). ``dropped``: real input pixels at the bottom / right that no window
    reaches (``arith.dropped_pixels``). ``unread``: every real input pixel no tap reads
    (``arith.uncovered_pixels``: dropped border, gaps between windows, dilation holes).
    ``unwritten``: output cells no input of a transposed conv writes (e.g. ``output_padding``).
    """

    spec: ConvSpec
    frames: tuple[Frame, ...]
    input_rows: range
    input_cols: range
    output_rows: range
    output_cols: range
    input_padding: frozenset[Cell]
    output_cropped: frozenset[Cell]
    dropped: frozenset[Cell]
    unread: frozenset[Cell]
    unwritten: frozenset[Cell]


def _grid(rows: Iterable[int], cols: Iterable[int]) -> list[Cell]:
    return [(r, c) for r, c in product(rows, cols)]


def _conv_plan(spec: ConvSpec) -> FramePlan:
    (h, w), (kh, kw), (sh, sw) = spec.input_size, spec.kernel, spec.stride
    (pt, pb), (pl, pr) = spec.padding
    dh, dw = spec.dilation
    rows_win = arith.windows(h, kh, sh, (pt, pb), dh)
    cols_win = arith.windows(w, kw, sw, (pl, pr), dw)
    frames = []
    for step, (orow, ocol) in enumerate(product(range(len(rows_win)), range(len(cols_win)))):
        taps = list(product(range(kh), range(kw)))
        cells = tuple((rows_win[orow][a], cols_win[ocol][b]) for a, b in taps)
        frames.append(Frame(step, cells, ((orow, ocol),), tuple(taps)))
    in_rows, in_cols = range(-pt, h + pb), range(-pl, w + pr)
    padding = frozenset(c for c in _grid(in_rows, in_cols)
                        if not (0 <= c[0] < h and 0 <= c[1] < w))
    drop = arith.dropped_pixels((h, w), (kh, kw), (sh, sw), spec.padding, (dh, dw))
    assert isinstance(drop, tuple)
    dropped = frozenset((r, c) for r, c in _grid(range(h), range(w))
                        if r >= h - drop[0] or c >= w - drop[1])
    unread_rows = set(arith.uncovered_pixels(h, kh, sh, (pt, pb), dh))
    unread_cols = set(arith.uncovered_pixels(w, kw, sw, (pl, pr), dw))
    unread = frozenset((r, c) for r, c in _grid(range(h), range(w))
                       if r in unread_rows or c in unread_cols)
    oh, ow = spec.output_size
    return FramePlan(spec, tuple(frames), in_rows, in_cols, range(oh), range(ow), padding,
                     frozenset(), dropped, unread, frozenset())


def _transposed_plan(spec: ConvSpec) -> FramePlan:
    (h, w), (kh, kw), (sh, sw) = spec.input_size, spec.kernel, spec.stride
    (oh, ow), (dh, dw) = spec.output_size, spec.dilation
    (pt, pb), (pl, pr) = spec.padding
    # The scatter of input i is the window i of the forward conv over the output (its adjoint);
    # with output_padding >= stride (possible when dilation > stride) that conv has extra
    # windows, which no input feeds: keep the first h (w).
    rows_win = arith.windows(oh, kh, sh, (pt, pb), dh)[:h]
    cols_win = arith.windows(ow, kw, sw, (pl, pr), dw)[:w]
    frames = []
    written: set[Cell] = set()
    for step, (irow, icol) in enumerate(product(range(h), range(w))):
        taps = list(product(range(kh), range(kw)))
        cells = tuple((rows_win[irow][a], cols_win[icol][b]) for a, b in taps)
        written.update(cells)
        frames.append(Frame(step, ((irow, icol),), cells, tuple(taps)))
    lo_r = min(0, min(r for r, _ in written))
    hi_r = max(oh - 1, max(r for r, _ in written))
    lo_c = min(0, min(c for _, c in written))
    hi_c = max(ow - 1, max(c for _, c in written))
    out_rows, out_cols = range(lo_r, hi_r + 1), range(lo_c, hi_c + 1)
    cropped = frozenset(c for c in _grid(out_rows, out_cols)
                        if not (0 <= c[0] < oh and 0 <= c[1] < ow))
    unwritten = frozenset(c for c in _grid(range(oh), range(ow)) if c not in written)
    return FramePlan(spec, tuple(frames), range(h), range(w), out_rows, out_cols, frozenset(),
                     cropped, frozenset(), frozenset(), unwritten)


def animation_frames(spec: ConvSpec) -> FramePlan:
    """The frames and special cells of the animation of ``spec`` (see the module docstring)."""
    if not isinstance(spec, ConvSpec):
        raise TypeError(f"spec must be a ConvSpec (see conv_spec), got {type(spec).__name__}")
    return _transposed_plan(spec) if spec.transposed else _conv_plan(spec)


__all__ = ["MAX_SIDE", "Cell", "ConvSpec", "Frame", "FramePlan", "animation_frames", "conv_spec"]
