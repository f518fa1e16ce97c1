"""What one ATen operator does to the receptive field.

The capture layer (:mod:`stridelab.inspect.capture`) sees every tensor operator at the dispatch
level. For each operator this module answers two questions, per spatial axis:

* is it a sliding window (convolution, transposed convolution, pooling, padding, resizing,
  cropping), and with which kernel, stride, padding ``(before, after)`` and dilation?
* how does it change the field of its output? Every answer is a call to
  :meth:`stridelab.arith.ReceptiveField.then` or :meth:`~stridelab.arith.ReceptiveField.merge`;
  the only arithmetic done here turns an operator without a kernel (adaptive pooling, resizing,
  cropping) into an equivalent window, documented on each helper. Resizes and adaptive pools
  whose ratio is not a whole number use two composed windows (:class:`FieldSteps`, from
  :func:`stridelab.arith.equivalent.sampled_window`): the field gets a fractional stride.

Fields are per spatial axis of the model input. Which tensor dimensions hold those axes (after
permutes, token sequences, windows) is the business of :mod:`stridelab.inspect.layout`; the rules
in :mod:`stridelab.inspect.rules` call :func:`window_of`, :func:`project` and
:func:`window_field` here for the dimensions a window slides over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from stridelab.arith import (
    MisalignedError,
    ReceptiveField,
    adaptive_window,
    hull,
    padding_pairs,
    resize_window,
)
from stridelab.arith.equivalent import sampled_window, sampling_ratio

Pair = tuple[int, int]

CONVOLUTIONS = frozenset({"convolution", "_convolution", "convolution_overrideable"})
MAX_POOLS = frozenset({"max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices",
                       "max_pool2d_with_indices", "max_pool3d_with_indices"})
AVG_POOLS = frozenset({"avg_pool1d", "avg_pool2d", "avg_pool3d"})
ADAPTIVE_POOLS = frozenset({"adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
                            "_adaptive_avg_pool2d", "_adaptive_avg_pool3d", "adaptive_max_pool1d",
                            "adaptive_max_pool2d", "adaptive_max_pool3d"})
PADS = frozenset({"constant_pad_nd", "reflection_pad1d", "reflection_pad2d", "reflection_pad3d",
                  "replication_pad1d", "replication_pad2d", "replication_pad3d", "_pad_circular"})
RESIZES = frozenset({"upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d",
                     "_upsample_nearest_exact1d", "_upsample_nearest_exact2d",
                     "_upsample_nearest_exact3d", "upsample_linear1d", "upsample_bilinear2d",
                     "upsample_trilinear3d", "upsample_bicubic2d", "_upsample_bilinear2d_aa",
                     "_upsample_bicubic2d_aa"})

@dataclass(frozen=True)
class FieldSteps:
    """How a resize / adaptive pool changes the field, per axis: a transposed window
    (``up_kernel``, ``up_stride``, ``up_padding``) then a plain window (``kernel``, ``stride``,
    ``padding`` before). An axis with a whole-number ratio uses one of the two and leaves the other
    at the identity (kernel 1, stride 1, padding 0).
    """

    up_kernel: tuple[int, ...]
    up_stride: tuple[int, ...]
    up_padding: tuple[Pair, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]


@dataclass(frozen=True)
class Window:
    """A sliding window as it acts on one tensor, per spatial axis.

    ``kind`` is one of ``conv``, ``transposed``, ``maxpool``, ``avgpool``, ``adaptive``, ``pad``,
    ``resize``, ``crop``, ``global``. ``padding`` holds ``(before, after)`` pairs (for a crop,
    the negative of the removed pixels). ``exact`` is False when the window is a conservative
    stand-in (a superset of the true region, see the helpers below). ``steps``, when set, is how
    the field really changes (the other fields then describe the window shown in reports).
    """

    kind: str
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[Pair, ...]
    dilation: tuple[int, ...]
    input_size: tuple[int, ...]
    output_size: tuple[int, ...]
    ceil_mode: bool = False
    groups: int = 1
    exact: bool = True
    upsample: tuple[int, ...] | None = None
    steps: FieldSteps | None = None

    @property
    def strided(self) -> bool:
        return any(s > 1 for s in self.stride) and self.kind not in ("transposed", "resize")


@dataclass(frozen=True)
class Effect:
    """Result of one operator: the output field, whether the output is still spatial, the window
    (if the operator is one) and, for a merge that failed the alignment rule, the fields that met.
    """

    field: ReceptiveField
    spatial: bool
    window: Window | None = None
    misaligned: tuple[ReceptiveField, ...] = ()
    broadcast: bool = False
    unknown: bool = False
    context: bool = False


def _ints(value: object, ndim: int, default: int) -> tuple[int, ...]:
    if value is None or (isinstance(value, (list, tuple)) and len(value) == 0):
        return (default,) * ndim
    if isinstance(value, (list, tuple)):
        items = [int(v) for v in value]
        return tuple(items) if len(items) == ndim else (items[0],) * ndim
    return (int(value),) * ndim  # type: ignore[call-overload]


def _arg(args: Sequence[object], kwargs: dict[str, object], index: int, name: str,
         default: object = None) -> object:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def shifted(field: ReceptiveField, axis: int, start: int, step: int) -> ReceptiveField:
    """The field after a crop/slice of one axis (see :meth:`ReceptiveField.sliced`)."""
    return field.sliced(axis, start, step)


def merge_fields(fields: Sequence[ReceptiveField],
                 output_size: Sequence[int] | None) -> tuple[ReceptiveField, bool]:
    """Distill's alignment rule over all branches; ``(field, aligned)``.

    When the branches are misaligned the result is :func:`hull` (documented conservative choice)
    and ``aligned`` is False so the caller can report it.
    """
    merged = fields[0]
    try:
        for other in fields[1:]:
            merged = merged.merge(other)
    except MisalignedError:
        return hull(fields, output_size), False
    return merged, True


def _pad_pairs(pad: Sequence[int], ndim: int) -> tuple[Pair, ...]:
    """PyTorch pad lists run from the last axis backwards: ``(left, right, top, bottom, ...)``."""
    pairs = [(0, 0)] * ndim
    for index in range(min(len(pad) // 2, ndim)):
        pairs[ndim - 1 - index] = (int(pad[2 * index]), int(pad[2 * index + 1]))
    return tuple(pairs)


def window_of(name: str, args: Sequence[object], kwargs: dict[str, object],
              spatial_in: tuple[int, ...], spatial_out: tuple[int, ...]) -> Window | None:
    """The sliding window an operator applies, or None if it is not one."""
    ndim = len(spatial_in)
    ones = (1,) * ndim

    def win(kind: str, kernel: tuple[int, ...], stride: tuple[int, ...],
            pads: tuple[Pair, ...], dilation: tuple[int, ...] = ones, **extra: object) -> Window:
        return Window(kind, kernel, stride, pads, dilation, spatial_in, spatial_out,
                      **extra)  # type: ignore[arg-type]

    if name in CONVOLUTIONS:
        weight = args[1]
        kernel = tuple(int(k) for k in weight.shape[2:])  # type: ignore[attr-defined]
        stride = _ints(_arg(args, kwargs, 3, "stride"), ndim, 1)
        pads = padding_pairs(_ints(_arg(args, kwargs, 4, "padding"), ndim, 0), spatial_in,
                             kernel, stride)
        dilation = _ints(_arg(args, kwargs, 5, "dilation"), ndim, 1)
        transposed = bool(_arg(args, kwargs, 6, "transposed", False))
        groups = int(_arg(args, kwargs, 8, "groups", 1))  # type: ignore[call-overload]
        return win("transposed" if transposed else "conv", kernel, stride, pads, dilation,
                   groups=groups)
    if name in MAX_POOLS or name in AVG_POOLS:
        kernel = _ints(_arg(args, kwargs, 1, "kernel_size"), ndim, 1)
        stride = _ints(_arg(args, kwargs, 2, "stride"), ndim, 0)
        stride = kernel if 0 in stride else stride
        pads = tuple((p, p) for p in _ints(_arg(args, kwargs, 3, "padding"), ndim, 0))
        if name in MAX_POOLS:
            dilation = _ints(_arg(args, kwargs, 4, "dilation"), ndim, 1)
            ceil = bool(_arg(args, kwargs, 5, "ceil_mode", False))
            return win("maxpool", kernel, stride, pads, dilation, ceil_mode=ceil)
        ceil = bool(_arg(args, kwargs, 4, "ceil_mode", False))
        return win("avgpool", kernel, stride, pads, ceil_mode=ceil)
    if name in ADAPTIVE_POOLS:
        steps = _sampled_steps([sampled_window(i, o, "adaptive")
                                for i, o in zip(spatial_in, spatial_out)])
        if any(o > i for i, o in zip(spatial_in, spatial_out)):
            # Pooling onto a larger grid repeats pixels: exactly a nearest resize when o % i == 0,
            # otherwise windows of up to two pixels at a fractional stride (shown as a resize).
            repeat = all(o % i == 0 for i, o in zip(spatial_in, spatial_out) if o > i)
            shown = _resize_window("nearest" if repeat else "linear", (), {}, spatial_in,
                                   spatial_out)
            exact = all(o % i == 0 if o > i else i % o == 0
                        for i, o in zip(spatial_in, spatial_out))
            return replace(shown, exact=exact, steps=steps)
        pairs = [adaptive_window(i, o) for i, o in zip(spatial_in, spatial_out)]
        exact = all(i % o == 0 for i, o in zip(spatial_in, spatial_out))
        return win("adaptive", tuple(k for k, _ in pairs), tuple(s for _, s in pairs),
                   ((0, 0),) * ndim, exact=exact, steps=None if exact else steps)
    if name in PADS:
        pads = _pad_pairs(_arg(args, kwargs, 1, "pad", ()), ndim)  # type: ignore[arg-type]
        return win("pad", ones, ones, pads)
    if name == "pixel_unshuffle":
        factor = int(_arg(args, kwargs, 1, "downscale_factor", 1))  # type: ignore[call-overload]
        return win("rearrange", (factor,) * ndim, (factor,) * ndim, ((0, 0),) * ndim)
    if name in RESIZES or name == "pixel_shuffle":
        return _resize_window(name, args, kwargs, spatial_in, spatial_out)
    return None


def _scales(name: str, args: Sequence[object], kwargs: dict[str, object],
            ndim: int) -> tuple[float | None, ...]:
    """The ``scale_factor`` per axis an upsample operator received (None where not given)."""
    first = 2 if "nearest" in name else 3
    names = {1: ("scales",), 2: ("scales_h", "scales_w"),
             3: ("scales_d", "scales_h", "scales_w")}.get(ndim, ())
    found: list[float | None] = []
    for axis in range(ndim):
        value = _arg(args, kwargs, first + axis, names[axis] if axis < len(names) else "")
        found.append(float(value) if isinstance(value, (int, float)) and value > 0 else None)
    return tuple(found)


def _sampled_steps(windows: Sequence[tuple[int, int, int, int]]) -> FieldSteps:
    """:class:`FieldSteps` from :func:`sampled_window` results ``(up, kernel, stride, before)``."""
    ups, kernels, strides, befores = zip(*windows)
    return FieldSteps(ups, ups, ((0, 0),) * len(windows), kernels, strides, befores)


def _resize_steps(name: str, mode: str, align: bool, scales: tuple[float | None, ...],
                  spatial_in: tuple[int, ...], spatial_out: tuple[int, ...]
                  ) -> tuple[FieldSteps, bool]:
    """Field steps of a resize, and whether they are exact.

    An axis upsampled by a whole number ``s`` (ratio exactly ``1 / s``, no ``align_corners``)
    keeps the exact transposed window of :func:`resize_window`; every other axis uses the
    fractional-stride window of :func:`sampled_window`, which contains every read.
    """
    sampling = "nearest-exact" if "exact" in name else mode
    up: list[tuple[int, int, Pair]] = []
    down: list[tuple[int, int, int]] = []
    exact = True
    for i, o, scale in zip(spatial_in, spatial_out, scales):
        ratio = sampling_ratio(i, o, sampling, align_corners=align, scale=scale)
        if name == "pixel_shuffle" or (ratio.numerator == 1 and (not align or i == o)):
            factor = -(-o // i) if name == "pixel_shuffle" else ratio.denominator
            kernel, pad = resize_window(factor, mode)
            up.append((kernel, factor, pad))
            down.append((1, 1, 0))
            continue
        exact = False
        q, kernel, stride, before = sampled_window(i, o, sampling, align_corners=align,
                                                   scale=scale)
        up.append((q, q, (0, 0)))
        down.append((kernel, stride, before))
    return FieldSteps(*zip(*up), *zip(*down)), exact


def _resize_window(name: str, args: Sequence[object], kwargs: dict[str, object],
                   spatial_in: tuple[int, ...], spatial_out: tuple[int, ...]) -> Window:
    """A resize: the window shown in reports (nearest whole-number scale, or the containing
    adaptive window when downsampling) and the :class:`FieldSteps` its field follows."""
    ndim = len(spatial_in)
    mode = "cubic" if "cubic" in name else "nearest" if "nearest" in name else "linear"
    if name == "pixel_shuffle":
        mode = "nearest"
    align = mode != "nearest" and bool(_arg(args, kwargs, 2, "align_corners", False))
    scales = _scales(name, args, kwargs, ndim) if name in RESIZES else (None,) * ndim
    mixed = any(o > i for i, o in zip(spatial_in, spatial_out)) and any(
        o < i for i, o in zip(spatial_in, spatial_out))
    shown: list[tuple[int, int, Pair, int]] = []  # kernel, stride, padding, upsampling
    for i, o in zip(spatial_in, spatial_out):
        if o >= i and mixed:  # shown as one pixel: a window cannot upsample some axes only
            shown.append((1, 1, (0, 0), 1))
        elif o >= i:
            scale = -(-o // i)
            kernel, pad = resize_window(scale, mode) if scale > 1 else (1, (0, 0))
            shown.append((kernel, scale, pad, scale))
        else:  # downsampling by interpolation: the adaptive-pooling window contains every read
            kernel, stride = adaptive_window(i, o)
            wide = mode != "nearest"
            shown.append((kernel + 2 * wide, stride, (1, 1) if wide else (0, 0), 1))
    kernels, strides, pads, scale_shown = zip(*shown)
    steps, exact = _resize_steps(name, mode, align, scales, spatial_in, spatial_out)
    kind = "adaptive" if mixed else "resize" if all(
        o >= i for i, o in zip(spatial_in, spatial_out)) else "avgpool"
    return Window(kind, kernels, strides, pads, (1,) * ndim, spatial_in, spatial_out,
                  exact=exact, upsample=scale_shown, steps=steps)


def project(window: Window, axes: Sequence[int | None], ndim: int) -> Window:
    """``window`` (one entry per tensor dimension it slides over) as a window over the ``ndim``
    spatial axes: dimension ``i`` acts on axis ``axes[i]`` (None: a dimension that holds no
    position, e.g. channels in an ECA gate's 1-D convolution); other axes get the identity."""
    where = {a: i for i, a in enumerate(axes) if a is not None}

    def pick(values: tuple[object, ...] | None, identity: object) -> tuple[Any, ...]:
        if values is None:
            return (identity,) * ndim
        return tuple(values[where[a]] if a in where else identity for a in range(ndim))

    steps = window.steps
    if steps is not None:
        steps = FieldSteps(pick(steps.up_kernel, 1), pick(steps.up_stride, 1),
                           pick(steps.up_padding, (0, 0)), pick(steps.kernel, 1),
                           pick(steps.stride, 1), pick(steps.padding, 0))
    return Window(window.kind, pick(window.kernel, 1), pick(window.stride, 1),
                  pick(window.padding, (0, 0)), pick(window.dilation, 1),
                  pick(window.input_size, 1), pick(window.output_size, 1), window.ceil_mode,
                  window.groups, window.exact,
                  None if window.upsample is None else pick(window.upsample, 1), steps)


def restrict(window: Window, dims: Sequence[int]) -> Window:
    """The window over some of its dimensions only (those that hold positions), for reports."""
    def pick(values: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(values[i] for i in dims)

    return Window(window.kind, pick(window.kernel), pick(window.stride), pick(window.padding),
                  pick(window.dilation), pick(window.input_size), pick(window.output_size),
                  window.ceil_mode, window.groups, window.exact,
                  None if window.upsample is None else pick(window.upsample), None)


def window_field(field: ReceptiveField, window: Window) -> ReceptiveField:
    """The field after ``window`` (already projected onto the field's axes): the Distill
    recurrences of :meth:`ReceptiveField.then`; transposed for upsampling; composed
    :class:`FieldSteps` for fractional resizes; F.pad with negative amounts crops."""
    steps = window.steps
    if steps is not None:
        upsampled = field.then(steps.up_kernel, steps.up_stride, steps.up_padding,
                               transposed=True)
        return upsampled.then(steps.kernel, steps.stride, steps.padding)
    if window.kind == "pad" and any(b < 0 or a < 0 for b, a in window.padding):
        positive = tuple((max(b, 0), max(a, 0)) for b, a in window.padding)
        new = field.then(1, 1, positive)
        for axis, (before, _after) in enumerate(window.padding):
            if before < 0:
                new = shifted(new, axis, -before, 1)
        return new
    transposed = window.kind in ("transposed", "resize")
    return field.then(window.kernel, window.stride, window.padding, window.dilation,
                      transposed=transposed)
