"""Reading the page's query parameters: every bad value becomes a :class:`ParamError` naming the
control it came from, which the app answers with HTTP 422 (never a stack trace).

Parameter names are the page's ``data-testid`` names (``input-size``, ``kernel``, ``stride``,
``dilation``, ``padding``, ``mode``, ``output-padding``, ``layers``, ``model-spec`` ...), so the
page can put the message next to the control that caused it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from stridelab.arith import PaddingSpec

#: Largest value any size-like control accepts (keeps every answer fast).
MAX_VALUE = 100_000

MODES = ("conv", "pool", "transposed")


class ParamError(ValueError):
    """A bad query parameter: ``param`` is the control's name, ``message`` says what is allowed."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


def text(query: Mapping[str, str], name: str, default: str | None = None) -> str:
    """The stripped value of ``name``; missing (and no default) is a :class:`ParamError`."""
    value = query.get(name)
    if value is None or not value.strip():
        if default is None:
            raise ParamError(name, "is required")
        return default
    return value.strip()


def sizes(query: Mapping[str, str], name: str, *, default: str | None = None,
          minimum: int = 1) -> tuple[int, ...]:
    """``"6"`` -> ``(6,)``, ``"6x8"`` -> ``(6, 8)``: one value per spatial axis (1 or 2 axes)."""
    raw = text(query, name, default)
    parts = raw.lower().replace(" ", "").split("x")
    if not 1 <= len(parts) <= 2 or not all(re.fullmatch(r"\d+", p) for p in parts):
        raise ParamError(name, f"must be an int or two ints joined by 'x' (e.g. 6 or 6x8), "
                               f"got {raw!r}")
    values = tuple(int(p) for p in parts)
    if any(not minimum <= v <= MAX_VALUE for v in values):
        raise ParamError(name, f"must be between {minimum} and {MAX_VALUE}, got {raw!r}")
    return values


def per_axis(name: str, values: tuple[int, ...], ndim: int) -> tuple[int, ...]:
    """Broadcast one value to ``ndim`` axes; a different count is a :class:`ParamError`."""
    if len(values) == ndim:
        return values
    if len(values) == 1:
        return values * ndim
    raise ParamError(name, f"has {len(values)} values but the input has {ndim} axis(es): give "
                           f"one value, or one per axis")


def padding(query: Mapping[str, str], ndim: int, name: str = "padding") -> PaddingSpec:
    """Every padding form of :mod:`stridelab.arith` as text.

    ``1`` (every side), ``0,1`` (before,after on every axis), ``1x2`` (per axis), ``0,1x1,0``
    (a before,after pair per axis), ``valid``, ``same``, ``same_lower`` (``same-lower``).
    Returns ``"valid"``/``"same"``/``"same_lower"`` or one ``(before, after)`` pair per axis.
    """
    raw = text(query, name, "0")
    word = raw.lower().replace("-", "_").replace(" ", "")
    if word in ("valid", "same", "same_lower"):
        return word
    axes = word.split("x")
    if not all(re.fullmatch(r"\d+(,\d+)?", a) for a in axes):
        raise ParamError(name, "must be an int, B,A (before,after), per-axis values joined by "
                               "'x' (1x2 or 0,1x1,0), valid, same or same_lower; got "
                               f"{raw!r}")
    pairs = []
    for axis in axes:
        values = [int(v) for v in axis.split(",")]
        if any(v > MAX_VALUE for v in values):
            raise ParamError(name, f"must be at most {MAX_VALUE} per side, got {raw!r}")
        pairs.append((values[0], values[-1]))
    if len(pairs) == 1:
        return tuple(pairs * ndim)
    if len(pairs) != ndim:
        raise ParamError(name, f"has {len(pairs)} axes but the input has {ndim}")
    return tuple(pairs)


def choice(query: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = text(query, name, default).lower()
    if value not in allowed:
        raise ParamError(name, f"must be one of {', '.join(allowed)}; got {value!r}")
    return value


def flag(query: Mapping[str, str], name: str) -> bool:
    value = text(query, name, "0").lower()
    if value not in ("0", "1", "true", "false", "on", "off"):
        raise ParamError(name, f"must be 0 or 1, got {value!r}")
    return value in ("1", "true", "on")


def integer(query: Mapping[str, str], name: str, default: int, minimum: int,
            maximum: int) -> int:
    raw = text(query, name, str(default))
    if not re.fullmatch(r"-?\d+", raw) or not minimum <= int(raw) <= maximum:
        raise ParamError(name, f"must be an int from {minimum} to {maximum}, got {raw!r}")
    return int(raw)


def number(query: Mapping[str, str], name: str, minimum: float, below: float) -> float:
    """A finite number in ``[minimum, below)`` (a clicked position in input pixels)."""
    raw = text(query, name)
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not minimum <= value < below:
        raise ParamError(name, f"must be a number in [{minimum:g}, {below:g}), got {raw!r}")
    return value


#: Words in an arithmetic error message -> the control that caused it (first match wins).
_ARITH_PARAMS = (
    ("output_padding", "output-padding"), ("padding", "padding"), ("dilation", "dilation"),
    ("stride", "stride"), ("kernel", "kernel"), ("ceil", "mode"), ("size", "input-size"),
)


def from_arith(err: Exception, fallback: str = "input-size") -> ParamError:
    """Turn a ValueError / TypeError of :mod:`stridelab.arith` into a ParamError for a control."""
    message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    message = re.sub(r"^layer \d+ \(\w+\): ", "", message)
    head = message.split(" must ")[0].split(" is ")[0].lower()
    for word, param in _ARITH_PARAMS:
        if word in head:
            return ParamError(param, message)
    return ParamError(fallback, message)
