"""Argument validation and broadcasting shared by every formula in :mod:`stridelab.arith`.

Conventions used across the project:

* A *size-like* argument (size, kernel, stride, dilation, output_padding) is an ``int`` (one
  spatial axis, or the same value on every axis) or a tuple with one ``int`` per spatial axis.
* ``padding`` is one of: an ``int`` (every side of every axis); a tuple with one ``int`` per axis
  (PyTorch's symmetric convention); a tuple with one ``(before, after)`` pair per axis; or one of
  the strings ``"valid"``, ``"same"`` (TF / ONNX SAME_UPPER: the odd pixel goes *after*) and
  ``"same_lower"`` (ONNX SAME_LOWER: the odd pixel goes *before*). In 1-D a bare pair of ints
  ``(before, after)`` is also accepted.
"""

from __future__ import annotations

import numbers
import operator
from collections.abc import Sequence

PaddingPair = tuple[int, int]
IntOrTuple = int | Sequence[int]
SizeSpec = int | Sequence[int | None] | None
PaddingSpec = int | str | Sequence[int] | Sequence[Sequence[int]]

PADDING_STRINGS = ("valid", "same", "same_lower")


def is_int(value: object) -> bool:
    """True for integers, NumPy's included (any ``numbers.Integral``); ``bool`` is rejected."""
    if type(value) is int:  # the common case, without the abstract-class check
        return True
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int(name: str, value: object, minimum: int) -> int:
    """Return ``value`` as an int if it is an integer >= ``minimum``; else a message naming ``name``."""
    if type(value) is int and value >= minimum:
        return value
    if not is_int(value):
        raise TypeError(f"{name} must be an int >= {minimum}, got {value!r} ({type(value).__name__})")
    number = operator.index(value)  # type: ignore[arg-type]  # is_int checked Integral
    if number < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {number}")
    return number


def ndim_of(size: object) -> int:
    """Number of spatial axes described by ``size`` (an int is one axis)."""
    if is_int(size) or size is None:
        return 1
    if isinstance(size, (tuple, list)):
        if len(size) == 0:
            raise ValueError("size must be an int or a non-empty tuple of ints, got ()")
        return len(size)
    raise TypeError(f"size must be an int or a tuple of ints, got {size!r} ({type(size).__name__})")


def per_axis(name: str, value: object, ndim: int, minimum: int) -> tuple[int, ...]:
    """Broadcast an int (or validate a tuple) to one int per axis, each >= ``minimum``."""
    if is_int(value):
        return (check_int(name, value, minimum),) * ndim
    if isinstance(value, (tuple, list)):
        if len(value) != ndim:
            raise ValueError(
                f"{name} must be an int or a tuple of {ndim} ints (one per spatial axis), "
                f"got {len(value)} values: {tuple(value)!r}"
            )
        return tuple(check_int(f"{name}[{axis}]", v, minimum) for axis, v in enumerate(value))
    raise TypeError(f"{name} must be an int or a tuple of ints, got {value!r} ({type(value).__name__})")


def per_axis_sizes(name: str, value: object, ndim: int) -> tuple[int | None, ...]:
    """Like :func:`per_axis` for input sizes (>= 1), but ``None`` means 'unknown'."""
    if value is None:
        return (None,) * ndim
    if isinstance(value, (tuple, list)) and any(v is None for v in value):
        if len(value) != ndim:
            raise ValueError(f"{name} must have {ndim} values, got {len(value)}: {tuple(value)!r}")
        return tuple(None if v is None else check_int(f"{name}[{a}]", v, 1) for a, v in enumerate(value))
    return per_axis(name, value, ndim, 1)


def check_padding_string(padding: str) -> str:
    """Normalise a padding string (``same-lower`` is accepted as a spelling of ``same_lower``)."""
    normalised = padding.strip().lower().replace("-", "_")
    if normalised not in PADDING_STRINGS:
        raise ValueError(
            f"padding must be an int, a tuple, or one of {', '.join(map(repr, PADDING_STRINGS))}; "
            f"got {padding!r}"
        )
    return normalised


def static_padding(padding: object, ndim: int, name: str = "padding") -> tuple[PaddingPair, ...]:
    """Normalise a numeric padding spec to one ``(before, after)`` pair per axis.

    Strings are not accepted here (they need the input size): see
    :func:`stridelab.arith.padding_pairs`.
    """
    if is_int(padding):
        p = check_int(name, padding, 0)
        return ((p, p),) * ndim
    if isinstance(padding, (tuple, list)):
        items = list(padding)
        if ndim == 1 and len(items) == 2 and all(is_int(v) for v in items):
            return ((check_int(f"{name} before", items[0], 0), check_int(f"{name} after", items[1], 0)),)
        if len(items) != ndim:
            raise ValueError(
                f"{name} must be an int, a tuple of {ndim} ints, or a tuple of {ndim} "
                f"(before, after) pairs; got {len(items)} values: {tuple(items)!r}"
            )
        pairs: list[PaddingPair] = []
        for axis, item in enumerate(items):
            if is_int(item):
                p = check_int(f"{name}[{axis}]", item, 0)
                pairs.append((p, p))
            elif isinstance(item, (tuple, list)) and len(item) == 2:
                pairs.append(
                    (check_int(f"{name}[{axis}] before", item[0], 0),
                     check_int(f"{name}[{axis}] after", item[1], 0))
                )
            else:
                raise ValueError(
                    f"{name}[{axis}] must be an int or a (before, after) pair of ints, got {item!r}"
                )
        return tuple(pairs)
    raise TypeError(
        f"{name} must be an int, a tuple, or one of {', '.join(map(repr, PADDING_STRINGS))}; "
        f"got {padding!r} ({type(padding).__name__})"
    )


def shape_like(template: object, values: Sequence[int]) -> int | tuple[int, ...]:
    """Return a scalar when the caller passed scalars (1-D), else a tuple."""
    if len(values) == 1 and not isinstance(template, (tuple, list)):
        return values[0]
    return tuple(values)
