"""Parsers for command-line values shared by subcommands (sizes like 224 or 3x224x224, paddings)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from stridelab.arith import PaddingSpec


def int_tuple(text: str, name: str) -> int | tuple[int, ...]:
    """``"224"`` -> 224, ``"224x160"`` (or ``224,160``) -> (224, 160)."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{name} must be an int or ints joined by 'x' (e.g. 224 or 224x160), got {text!r}"
        ) from None
    return values[0] if len(values) == 1 else values


def padding_arg(text: str) -> PaddingSpec:
    """``3``, ``1x2`` (per axis), ``0,1`` (before,after), ``0,1x1,1`` (pairs per axis) or a keyword."""
    word = text.strip().lower().replace("-", "_")
    if word in ("valid", "same", "same_lower"):
        return word
    try:
        axes = [[int(v) for v in axis.split(",")] for axis in word.split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            "padding must be an int, valid, same, same-lower, B,A (before,after) or per-axis values "
            f"joined by 'x' (e.g. 1x2 or 0,1x0,1); got {text!r}"
        ) from None
    if any(len(axis) not in (1, 2) for axis in axes):
        raise argparse.ArgumentTypeError(
            f"padding: each axis takes one value or a before,after pair; got {text!r}"
        )
    if len(axes) == 1:
        only = axes[0]
        # A bare "B,A" is one (before, after) pair for every axis: see broadcast_padding.
        return only[0] if len(only) == 1 else ((only[0], only[1]),)
    return tuple(axis[0] if len(axis) == 1 else (axis[0], axis[1]) for axis in axes)  # type: ignore[return-value]


def broadcast_padding(padding: PaddingSpec, ndim: int) -> PaddingSpec:
    """Repeat a single ``(before, after)`` pair from :func:`padding_arg` on all ``ndim`` axes.

    ``--padding 0,1`` means "0 before, 1 after" on every axis; without this a 2-D input would
    read it as one value per axis.
    """
    if (isinstance(padding, tuple) and len(padding) == 1 and isinstance(padding[0], tuple)
            and ndim > 1):
        return padding * ndim
    return padding


def size_type(name: str) -> Callable[[str], int | tuple[int, ...]]:
    """An argparse ``type=`` that parses sizes and names ``name`` in its error."""
    def parse(text: str) -> int | tuple[int, ...]:
        return int_tuple(text, name)
    parse.__name__ = name
    return parse
