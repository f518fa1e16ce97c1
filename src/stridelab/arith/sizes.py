"""Output sizes, 'same' padding and dropped pixels for convolution, pooling and transposed conv.

All formulas follow ``shared/reference/arithmetic.md`` (Dumoulin & Visin 2016, "A guide to
convolution arithmetic for deep learning"; PyTorch's and ONNX's documented shape rules). Per
spatial axis: ``i`` input size, ``k`` kernel, ``s`` stride, ``d`` dilation, ``p_b`` / ``p_a``
padding before / after, ``k_eff = d * (k - 1) + 1``. Every function takes an int (1-D) or a tuple
(one value per spatial axis) and answers in the same shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar, cast

from stridelab.arith._check import (
    IntOrTuple,
    PaddingPair,
    PaddingSpec,
    SizeSpec,
    check_padding_string,
    is_int,
    per_axis,
    per_axis_sizes,
    shape_like,
    static_padding,
)

SAME_MODES = ("upper", "lower")


def spatial_ndim(*values: object) -> int:
    """Axes implied by the first tuple among ``values`` (1 if all are scalars)."""
    for value in values:
        if isinstance(value, (tuple, list)):
            if len(value) == 0:
                raise ValueError("size-like arguments must not be empty tuples")
            return len(value)
    return 1


def effective_kernel(kernel: IntOrTuple, dilation: IntOrTuple = 1) -> int | tuple[int, ...]:
    """Span of a dilated kernel: ``k_eff = d * (k - 1) + 1`` (input positions, first to last tap)."""
    ndim = spatial_ndim(kernel, dilation)
    ks = per_axis("kernel", kernel, ndim, 1)
    ds = per_axis("dilation", dilation, ndim, 1)
    return shape_like(kernel if isinstance(kernel, (tuple, list)) else dilation,
                      [d * (k - 1) + 1 for k, d in zip(ks, ds)])


class IntLike(Protocol):
    """What :func:`same_total_padding` needs of a size: ``+ - * // %`` with ints.

    ``int``, ``torch.SymInt`` (``torch.export`` with dynamic shapes), a size traced as a 0-d
    tensor (``torch.jit.trace``, the legacy ONNX exporter) and a wrapper around ONNX graph values
    all qualify.
    """

    def __add__(self, other: int, /) -> Any: ...
    def __radd__(self, other: int, /) -> Any: ...
    def __sub__(self, other: int, /) -> Any: ...
    def __rsub__(self, other: int, /) -> Any: ...
    def __mul__(self, other: Any, /) -> Any: ...
    def __floordiv__(self, other: int, /) -> Any: ...
    def __mod__(self, other: int, /) -> Any: ...


SizeT = TypeVar("SizeT", bound=IntLike)


def same_total_padding(size: SizeT, k_eff: int, stride: int) -> SizeT:
    """Total 'same' padding ``t = max((ceil(i / s) - 1) * s + k_eff - i, 0)``, branch-free.

    With ``i = q * s + r`` and ``r = (i - 1) % s + 1`` in ``[1, s]``, ``(ceil(i / s) - 1) * s - i
    = -r``, so ``t = max(k_eff - r, 0)``. When ``k_eff >= s`` the max never binds; otherwise
    ``a = k_eff - r`` lies in ``[1 - s, s - 2]`` and ``max(a, 0) = a * ((a + s) // s)``. Only
    ``+ - * // %`` on non-negative operands are used (no comparison, no ``max``), so the formula
    gives the same answer on an ``int``, a ``torch.SymInt`` and a traced size, and exports to an
    ONNX graph whose truncating ``Div`` agrees with ``//``. ``k_eff`` and ``stride`` are ints >= 1.
    """
    remainder = (size - 1) % stride + 1
    excess = k_eff - remainder
    if k_eff >= stride:
        return cast(SizeT, excess)
    return cast(SizeT, excess * ((excess + stride) // stride))


def split_same_padding(total: SizeT, mode: str = "upper") -> tuple[SizeT, SizeT]:
    """``(before, after)`` of a 'same' total: SAME_UPPER puts the odd pixel after, SAME_LOWER before.

    Like :func:`same_total_padding` it uses only ``//`` and ``-``, so ``total`` may be symbolic.
    """
    if mode not in SAME_MODES:
        raise ValueError(f"mode must be one of {SAME_MODES}, got {mode!r}")
    small = total // 2
    large = cast(SizeT, total - small)
    return (small, large) if mode == "upper" else (large, small)


def _same_total(size: int, k_eff: int, stride: int) -> int:
    """Total 'same' padding for a known size (see :func:`same_total_padding`)."""
    return same_total_padding(size, k_eff, stride)


def _split_same(total: int, mode: str) -> PaddingPair:
    return split_same_padding(total, mode)


def same_padding(
    size: SizeSpec,
    kernel: IntOrTuple,
    stride: IntOrTuple = 1,
    dilation: IntOrTuple = 1,
    mode: str = "upper",
) -> PaddingPair | tuple[PaddingPair, ...]:
    """``(before, after)`` padding that gives ``ceil(i / s)`` outputs (TF 'SAME', ONNX SAME_*).

    ``mode="upper"`` (TF, ONNX SAME_UPPER) puts the odd pixel after (right / bottom);
    ``mode="lower"`` (ONNX SAME_LOWER) puts it before. With ``size=None`` the padding is returned
    only where it does not depend on the input size (stride 1, or a 1-tap kernel); otherwise a
    ValueError says so, because for stride > 1 it must be computed per input.
    """
    if mode not in SAME_MODES:
        raise ValueError(f"mode must be one of {SAME_MODES}, got {mode!r}")
    ndim = spatial_ndim(size, kernel, stride, dilation)
    sizes = per_axis_sizes("size", size, ndim)
    ks = per_axis("kernel", kernel, ndim, 1)
    ss = per_axis("stride", stride, ndim, 1)
    ds = per_axis("dilation", dilation, ndim, 1)
    pairs: list[PaddingPair] = []
    for axis, (i, k, s, d) in enumerate(zip(sizes, ks, ss, ds)):
        k_eff = d * (k - 1) + 1
        if i is None:
            if s != 1 and k_eff != 1:
                raise ValueError(
                    f"'same' padding for stride {s} and effective kernel {k_eff} depends on the "
                    f"input size (axis {axis}); pass size=<int> or compute it per input at run time"
                )
            total = k_eff - 1
        else:
            total = _same_total(i, k_eff, s)
        pairs.append(_split_same(total, mode))
    if ndim == 1 and not isinstance(size, (tuple, list)) and not isinstance(kernel, (tuple, list)):
        return pairs[0]
    return tuple(pairs)


def padding_pairs(
    padding: PaddingSpec,
    size: SizeSpec,
    kernel: IntOrTuple,
    stride: IntOrTuple = 1,
    dilation: IntOrTuple = 1,
) -> tuple[PaddingPair, ...]:
    """Resolve any padding spec to one ``(before, after)`` pair per axis (always a tuple of pairs).

    Strings need ``size`` unless the padding is size-independent (see :func:`same_padding`).
    """
    ndim = spatial_ndim(size, kernel, stride, dilation)
    if isinstance(padding, str):
        name = check_padding_string(padding)
        if name == "valid":
            return ((0, 0),) * ndim
        mode = "upper" if name == "same" else "lower"
        sizes = per_axis_sizes("size", size, ndim)
        pairs = same_padding(sizes, per_axis("kernel", kernel, ndim, 1),
                             per_axis("stride", stride, ndim, 1),
                             per_axis("dilation", dilation, ndim, 1), mode)
        return pairs  # type: ignore[return-value]  # tuple input -> tuple of pairs
    return static_padding(padding, ndim)


def _axes(
    size: IntOrTuple, kernel: IntOrTuple, stride: IntOrTuple, padding: PaddingSpec,
    dilation: IntOrTuple,
) -> tuple[int, list[tuple[int, int, int, PaddingPair, int]]]:
    ndim = spatial_ndim(size, kernel, stride, dilation)
    sizes = per_axis("size", size, ndim, 1)
    ks = per_axis("kernel", kernel, ndim, 1)
    ss = per_axis("stride", stride, ndim, 1)
    ds = per_axis("dilation", dilation, ndim, 1)
    pads = padding_pairs(padding, sizes, ks, ss, ds)
    return ndim, list(zip(sizes, ks, ss, pads, ds))


def _check_fits(axis: int, i: int, k_eff: int, pad: PaddingPair) -> int:
    span = i + pad[0] + pad[1] - k_eff
    if span < 0:
        raise ValueError(
            f"kernel is larger than the padded input on axis {axis}: effective kernel {k_eff} > "
            f"input {i} + padding {pad[0]} + {pad[1]} = {i + pad[0] + pad[1]}; "
            f"kernel must be <= the padded input size"
        )
    return span


def conv_output_size(
    size: IntOrTuple, kernel: IntOrTuple, stride: IntOrTuple = 1,
    padding: PaddingSpec = 0, dilation: IntOrTuple = 1,
) -> int | tuple[int, ...]:
    """Convolution output size: ``o = (i + p_b + p_a - k_eff) // s + 1`` (floor division)."""
    template = size if isinstance(size, (tuple, list)) else kernel
    _, axes = _axes(size, kernel, stride, padding, dilation)
    out = []
    for axis, (i, k, s, pad, d) in enumerate(axes):
        out.append(_check_fits(axis, i, d * (k - 1) + 1, pad) // s + 1)
    return shape_like(template, out)


POOL_CONVENTIONS = ("torch", "onnx")


def check_convention(convention: object) -> str:
    """``"torch"`` (PyTorch's pooling rules, the default) or ``"onnx"``."""
    if convention not in POOL_CONVENTIONS:
        raise ValueError(f"convention must be one of {POOL_CONVENTIONS}, got {convention!r}")
    return str(convention)


def check_pool_padding(pads: Sequence[PaddingPair], kernel: Sequence[int],
                       convention: str = "torch") -> None:
    """PyTorch's pooling limit: each side's padding at most ``kernel // 2`` (ONNX: no limit).

    PyTorch checks the kernel size, not the dilated span. Under ``convention="onnx"`` any
    padding is accepted, as ONNX MaxPool / AveragePool do.
    """
    if check_convention(convention) == "onnx":
        return
    for axis, (pad, k) in enumerate(zip(pads, kernel)):
        if max(pad) > k // 2:
            raise ValueError(
                f"pooling padding must be at most half the kernel ({k} // 2 = {k // 2}) on "
                f"axis {axis}, got {pad} (PyTorch's rule; convention='onnx' allows any "
                f"padding, as ONNX does)"
            )


def pool_output_size(
    size: IntOrTuple, kernel: IntOrTuple, stride: IntOrTuple | None = None,
    padding: PaddingSpec = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False,
    convention: str = "torch",
) -> int | tuple[int, ...]:
    """Pooling output size with PyTorch's (default) or ONNX's exact rule.

    Floor mode is the convolution formula. ``ceil_mode``: ``o = ceil((i + p_b + p_a - k_eff) / s)
    + 1``, then ``o -= 1`` when ``(o - 1) * s >= i + p_b`` (the last window would start in the
    right padding, and PyTorch / ONNX drop it). ``stride=None`` means stride = kernel. The two
    conventions differ only in the padding allowed: ``"torch"`` limits each side to
    ``kernel // 2`` (:func:`check_pool_padding`), ``"onnx"`` accepts any padding.
    """
    if not isinstance(ceil_mode, bool):
        raise TypeError(f"ceil_mode must be True or False, got {ceil_mode!r}")
    template = size if isinstance(size, (tuple, list)) else kernel
    _, axes = _axes(size, kernel, kernel if stride is None else stride, padding, dilation)
    check_pool_padding([pad for _, _, _, pad, _ in axes], [k for _, k, _, _, _ in axes],
                       convention)
    out = []
    for axis, (i, k, s, pad, d) in enumerate(axes):
        k_eff = d * (k - 1) + 1
        if ceil_mode:
            # In ceil mode the last window may hang past the padded input as long as it starts
            # inside it, so the kernel may exceed the padded input; at least one output must remain.
            span = i + pad[0] + pad[1] - k_eff
            o = -(-span // s) + 1
            if (o - 1) * s >= i + pad[0]:
                o -= 1
            if o < 1:
                raise ValueError(
                    f"pooling output would be empty on axis {axis}: kernel {k_eff} does not fit "
                    f"input {i} + padding {pad[0]} + {pad[1]} even in ceil_mode"
                )
        else:
            o = _check_fits(axis, i, k_eff, pad) // s + 1
        out.append(o)
    return shape_like(template, out)


def _transposed_axes(
    size: IntOrTuple, kernel: IntOrTuple, stride: IntOrTuple, dilation: IntOrTuple,
    output_padding: IntOrTuple,
) -> tuple[int, list[tuple[int, int, int, int, int]]]:
    ndim = spatial_ndim(size, kernel, stride, dilation, output_padding)
    sizes = per_axis("size", size, ndim, 1)
    ks = per_axis("kernel", kernel, ndim, 1)
    ss = per_axis("stride", stride, ndim, 1)
    ds = per_axis("dilation", dilation, ndim, 1)
    ops = per_axis("output_padding", output_padding, ndim, 0)
    for axis, (op, s, d) in enumerate(zip(ops, ss, ds)):
        if op >= max(s, d):
            raise ValueError(
                f"output_padding must be in [0, max(stride, dilation)) = [0, {max(s, d)}) on "
                f"axis {axis}, got {op}"
            )
    return ndim, list(zip(sizes, ks, ss, ds, ops))


def transposed_output_size(
    size: IntOrTuple, kernel: IntOrTuple, stride: IntOrTuple = 1, padding: PaddingSpec = 0,
    dilation: IntOrTuple = 1, output_padding: IntOrTuple = 0,
) -> int | tuple[int, ...]:
    """Transposed-conv output size: ``o = (i - 1) * s - p_b - p_a + k_eff + output_padding``.

    ``padding`` is the padding of the convolution this one transposes (PyTorch's meaning).
    ``"same"`` / ``"same_lower"`` follow ONNX ConvTranspose auto_pad: ``o = i * s``.
    """
    template = size if isinstance(size, (tuple, list)) else kernel
    ndim, axes = _transposed_axes(size, kernel, stride, dilation, output_padding)
    if isinstance(padding, str) and check_padding_string(padding) != "valid":
        out = []
        for axis, (i, k, s, d, op) in enumerate(axes):
            if d * (k - 1) + 1 + op < s:
                raise ValueError(
                    f"'same' transposed padding needs effective kernel + output_padding >= stride "
                    f"on axis {axis}; got {d * (k - 1) + 1} + {op} < {s}"
                )
            out.append(i * s)
        return shape_like(template, out)
    pads = static_padding(0 if isinstance(padding, str) else padding, ndim)
    out = []
    for axis, ((i, k, s, d, op), (pb, pa)) in enumerate(zip(axes, pads)):
        o = (i - 1) * s - pb - pa + d * (k - 1) + 1 + op
        if o < 1:
            raise ValueError(
                f"transposed conv output would be {o} < 1 on axis {axis}: padding {pb} + {pa} "
                f"is too large for input {i}, kernel {k}, stride {s}"
            )
        out.append(o)
    return shape_like(template, out)


def transposed_padding(
    size: IntOrTuple, kernel: IntOrTuple, stride: IntOrTuple = 1, padding: PaddingSpec = 0,
    dilation: IntOrTuple = 1, output_padding: IntOrTuple = 0,
    output_shape: IntOrTuple | None = None,
) -> tuple[tuple[int, int], ...]:
    """``(before, after)`` padding of a transposed conv per axis, ONNX ConvTranspose's rule.

    With numeric ``padding`` and no ``output_shape`` this is ``padding`` itself. Otherwise the
    output size ``o`` is ``output_shape`` or, for ``"same"`` / ``"same_lower"``, ``i * s``, and
    ``total = (i - 1) * s + output_padding + k_eff - o`` is split as ONNX specifies: ``"same"``
    (SAME_UPPER) puts ``total // 2`` before and the rest after; ``"same_lower"`` and an
    ``output_shape`` with numeric padding (ONNX's NOTSET) put ``total - total // 2`` before. The
    total includes ``output_padding``, so 'same' with ``output_padding > 0`` is not the plain
    'same' split. Values may be negative: a negative ``after`` means extra output positions at
    the end (they hold only the bias), a negative ``before`` extra positions at the start.
    """
    ndim = spatial_ndim(size, kernel, stride, dilation, output_padding,
                        1 if output_shape is None else output_shape)
    sizes = per_axis("size", size, ndim, 1)
    ks = per_axis("kernel", kernel, ndim, 1)
    ss = per_axis("stride", stride, ndim, 1)
    ds = per_axis("dilation", dilation, ndim, 1)
    ops = per_axis("output_padding", output_padding, ndim, 0)
    name = check_padding_string(padding) if isinstance(padding, str) else None
    if output_shape is None and name in (None, "valid"):
        return static_padding(0 if name == "valid" else padding, ndim)
    if output_shape is not None:
        outs = per_axis("output_shape", output_shape, ndim, 1)
    else:
        outs = tuple(i * s for i, s in zip(sizes, ss))
    pairs = []
    for i, k, s, d, op, o in zip(sizes, ks, ss, ds, ops, outs):
        total = (i - 1) * s + op + d * (k - 1) + 1 - o
        pairs.append(_split_same(total, "upper" if name == "same" else "lower"))
    return tuple(pairs)


def output_padding_for(
    size_in: IntOrTuple, size_out: IntOrTuple, kernel: IntOrTuple, stride: IntOrTuple = 1,
    padding: PaddingSpec = 0, dilation: IntOrTuple = 1,
) -> int | tuple[int, ...]:
    """``output_padding`` that makes a transposed conv map ``size_in`` back to ``size_out``.

    This inverts the convolution ``size_out -> size_in`` with the same kernel, stride, padding and
    dilation; the answer is that conv's remainder ``(i + p_b + p_a - k_eff) % s`` (Dumoulin & Visin,
    relationship 14). Raises ValueError when no ``output_padding`` in ``[0, max(s, d))`` works.
    """
    template = size_in if isinstance(size_in, (tuple, list)) else size_out
    ndim = spatial_ndim(size_in, size_out, kernel, stride, dilation)
    ins = per_axis("size_in", size_in, ndim, 1)
    outs = per_axis("size_out", size_out, ndim, 1)
    ks = per_axis("kernel", kernel, ndim, 1)
    ss = per_axis("stride", stride, ndim, 1)
    ds = per_axis("dilation", dilation, ndim, 1)
    pads = padding_pairs(padding, outs, ks, ss, ds)
    result = []
    for axis, (i, o, k, s, d, (pb, pa)) in enumerate(zip(ins, outs, ks, ss, ds, pads)):
        base = (i - 1) * s - pb - pa + d * (k - 1) + 1
        op = o - base
        if not 0 <= op < max(s, d):
            raise ValueError(
                f"no output_padding turns {i} into {o} on axis {axis}: without it the transposed "
                f"conv gives {base}, and output_padding must be in [0, {max(s, d)})"
            )
        result.append(op)
    return shape_like(template, result)


def dropped_pixels(
    size: IntOrTuple, kernel: IntOrTuple, stride: IntOrTuple,
    padding: PaddingSpec = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False,
) -> int | tuple[int, ...]:
    """Real input pixels at the end (right / bottom) that no window reaches.

    The padded input leaves ``r = (i + p_b + p_a - k_eff) % s`` positions after the last window;
    the first ``p_a`` of those that are padding cost nothing, so the count of real pixels lost is
    ``max(r - p_a, 0)``. ``ceil_mode`` (pooling): the last window is the one
    :func:`pool_output_size` keeps in ceil mode (it may hang past the padded end), so the loss is
    ``max(i - ((o - 1) * s - p_b + k_eff), 0)`` with that ``o``; in floor mode both expressions
    agree. (Gaps *between* windows when ``s > k_eff`` are listed by :func:`uncovered_pixels`.)
    """
    template = size if isinstance(size, (tuple, list)) else kernel
    _, axes = _axes(size, kernel, stride, padding, dilation)
    out = []
    for axis, (i, k, s, pad, d) in enumerate(axes):
        k_eff = d * (k - 1) + 1
        remainder = _check_fits(axis, i, k_eff, pad) % s
        if ceil_mode:
            o = pool_output_size(i, k, s, pad, d, ceil_mode=True, convention="onnx")
            assert isinstance(o, int)
            out.append(max(i - ((o - 1) * s - pad[0] + k_eff), 0))
        else:
            out.append(max(remainder - pad[1], 0))
    return shape_like(template, out)


def uncovered_pixels(
    size: int, kernel: int, stride: int = 1, padding: PaddingSpec = 0, dilation: int = 1,
) -> list[int]:
    """Every real input index (1-D) that no kernel tap reads: gaps, dilation holes and the end."""
    _, axes = _axes(size, kernel, stride, padding, dilation)
    (i, k, s, (pb, pa), d), = axes
    o = _check_fits(0, i, d * (k - 1) + 1, (pb, pa)) // s + 1
    read = {u * s - pb + t * d for u in range(o) for t in range(k)}
    return [x for x in range(i) if x not in read]


def windows(
    size: int, kernel: int, stride: int = 1, padding: PaddingSpec = 0, dilation: int = 1,
) -> list[list[int]]:
    """For each output position (1-D), the input indices its taps read (negative or >= size: padding)."""
    _, axes = _axes(size, kernel, stride, padding, dilation)
    (i, k, s, (pb, pa), d), = axes
    o = _check_fits(0, i, d * (k - 1) + 1, (pb, pa)) // s + 1
    return [[u * s - pb + t * d for t in range(k)] for u in range(o)]


__all__: Sequence[str] = (
    "conv_output_size", "dropped_pixels", "effective_kernel", "output_padding_for", "padding_pairs",
    "pool_output_size", "same_padding", "same_total_padding", "spatial_ndim", "split_same_padding",
    "transposed_output_size", "transposed_padding", "uncovered_pixels", "windows", "is_int",
    "POOL_CONVENTIONS", "check_convention", "check_pool_padding",
)
