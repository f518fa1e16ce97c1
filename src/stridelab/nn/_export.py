"""ONNX export of size-dependent 'same' padding that stays exact at every input size.

For stride > 1, 'same' padding depends on the input size (``i % s``), so a graph that froze the
padding of the traced size is wrong at other sizes. During ``torch.onnx.export`` a 'same' conv or
pool of :mod:`stridelab.nn` therefore becomes one of:

* **native**: the ONNX op with ``auto_pad="SAME_UPPER"`` / ``"SAME_LOWER"`` when ONNX computes
  exactly what PyTorch does: zero padding, dilation 1 (onnxruntime refuses dilation with
  ``auto_pad``), ``kernel >= stride`` on every axis (below that the ONNX total is negative and
  onnxruntime crops the input, while the padding here never goes below 0), and for pools no
  ``ceil_mode`` and no ``divisor_override``.
* **in-graph**: otherwise, ``Shape -> Gather`` of each spatial size, the formula of
  :func:`stridelab.arith.same_total_padding` (only ``+ - * // %``, so it evaluates on graph values
  exactly as on ints), a ``Pad`` with those amounts, then the op without padding.

Either way a *static* export (no dynamic axes) folds to plain numbers: the legacy exporter
(``dynamo=False``) sees the sizes in the symbolic functions below and writes ``pads`` attributes;
the dynamo exporter (``dynamo=True``) sees plain ints unless ``dynamic_shapes`` makes them
``torch.SymInt``, in which case the same arith formula builds the symbolic sizes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from stridelab.arith import same_total_padding, split_same_padding

ONNX_PAD_MODES = {"constant": "constant", "zeros": "constant", "reflect": "reflect",
                  "replicate": "edge", "circular": "wrap"}


@dataclass(frozen=True)
class SameWindow:
    """One 'same' / 'same_lower' conv or pool, as the exporters need it.

    ``op_type`` is the ONNX op (``Conv``, ``MaxPool``, ``AveragePool``); ``attrs`` its attributes
    other than padding, ``kernel_shape`` and ``strides``; ``native`` whether ``auto_pad`` gives
    PyTorch's result (see the module docstring); ``out_channels`` ``None`` for pools.
    """

    op_type: str
    mode: str  # "upper" (SAME_UPPER, odd pixel after) or "lower" (SAME_LOWER, odd pixel before)
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    native: bool
    attrs: tuple[tuple[str, Any], ...] = field(default=())
    out_channels: int | None = None

    @property
    def ndim(self) -> int:
        return len(self.kernel)

    @property
    def auto_pad(self) -> str:
        return "SAME_UPPER" if self.mode == "upper" else "SAME_LOWER"

    def pairs(self, sizes: Sequence[Any]) -> list[tuple[Any, Any]]:
        """``(before, after)`` per spatial axis; ``sizes`` may be ints, SymInts or graph values."""
        out = []
        for i, k, s, d in zip(sizes, self.kernel, self.stride, self.dilation):
            out.append(split_same_padding(same_total_padding(i, d * (k - 1) + 1, s), self.mode))
        return out

    def torch_pad(self, sizes: Sequence[Any]) -> list[Any]:
        """``F.pad`` order: last axis first, before then after."""
        flat: list[Any] = []
        for before, after in reversed(self.pairs(sizes)):
            flat += [before, after]
        return flat

    def onnx_attrs(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {"kernel_shape": list(self.kernel), "strides": list(self.stride)}
        attrs.update(self.attrs)
        return attrs

    def output_shape(self, x: Tensor, weight: Tensor | None) -> list[Any]:
        """``(N, C, ceil(i / s)...)``; ``(i + s - 1) // s`` keeps SymInts symbolic."""
        channels = x.shape[1] if weight is None else weight.shape[0]
        spatial = [(i + s - 1) // s for i, s in zip(x.shape[-self.ndim:], self.stride)]
        return [x.shape[0], channels, *spatial]


def legacy_exporting() -> bool:
    """True while the TorchScript-based exporter (``dynamo=False``) traces."""
    return torch.onnx.is_in_onnx_export() and torch.jit.is_tracing()  # type: ignore[attr-defined,no-untyped-call]


def exporting() -> bool:
    return torch.onnx.is_in_onnx_export()


def _symbolic_sizes(x: Tensor, ndim: int) -> bool:
    """True when ``torch.export`` traces with dynamic spatial sizes (the dynamo exporter)."""
    dynamic = any(isinstance(i, torch.SymInt) for i in x.shape[-ndim:])
    if dynamic and not hasattr(torch.onnx, "ops"):
        raise RuntimeError("exporting a size-dependent 'same' padding with dynamic shapes and "
                           "dynamo=True needs torch >= 2.8 (torch.onnx.ops); use dynamo=False "
                           "with dynamic_axes on older torch")
    return dynamic


# -- legacy exporter: autograd Functions with ONNX symbolics ---------------------------------------


class GraphInt:
    """An int64 ONNX graph value with Python's ``+ - * // %``, so arith formulas run on it.

    Only non-negative operands reach ``//`` in :func:`stridelab.arith.same_total_padding`, where
    ONNX's truncating ``Div`` equals Python's floor division; ``Mod`` uses ``fmod=0`` (Python's
    sign rule).
    """

    def __init__(self, graph: Any, value: Any) -> None:
        self.graph, self.value = graph, value

    def _lift(self, other: Any) -> Any:
        if isinstance(other, GraphInt):
            return other.value
        return self.graph.op("Constant", value_t=torch.tensor([int(other)], dtype=torch.int64))

    def _op(self, name: str, left: Any, right: Any, **attrs: Any) -> GraphInt:
        return GraphInt(self.graph, self.graph.op(name, self._lift(left), self._lift(right), **attrs))

    def __add__(self, other: Any) -> GraphInt:
        return self._op("Add", self, other)

    __radd__ = __add__

    def __sub__(self, other: Any) -> GraphInt:
        return self._op("Sub", self, other)

    def __rsub__(self, other: Any) -> GraphInt:
        return self._op("Sub", other, self)

    def __mul__(self, other: Any) -> GraphInt:
        return self._op("Mul", self, other)

    __rmul__ = __mul__

    def __floordiv__(self, other: Any) -> GraphInt:
        return self._op("Div", self, other)

    def __mod__(self, other: Any) -> GraphInt:
        return self._op("Mod", self, other, fmod_i=0)


def _static_sizes(x: Any, ndim: int) -> list[int | None]:
    """The spatial sizes the exporter knows (``None`` on a dynamic axis) from the JIT type."""
    try:
        sizes = x.type().varyingSizes()
    except RuntimeError:  # not a complete tensor type
        sizes = None
    if sizes is None:
        return [None] * ndim
    return [None if s is None else int(s) for s in list(sizes)[-ndim:]]


def _graph_sizes(g: Any, x: Any, ndim: int, rank: int) -> list[Any]:
    """Each spatial size: an int when the exporter knows it, else a :class:`GraphInt`."""
    known = _static_sizes(x, ndim)
    if all(s is not None for s in known):
        return known
    shape = g.op("Shape", x)
    sizes: list[Any] = []
    for axis, size in enumerate(known):
        if size is not None:
            sizes.append(size)
            continue
        index = g.op("Constant", value_t=torch.tensor([rank - ndim + axis], dtype=torch.int64))
        sizes.append(GraphInt(g, g.op("Gather", shape, index, axis_i=0)))
    return sizes


def _onnx_pads(g: Any, window: SameWindow, sizes: list[Any]) -> Any:
    """ONNX ``Pad``'s pads input: all begins then all ends, N and C unpadded."""
    pairs = window.pairs(sizes)
    items = [0, 0, *(b for b, _ in pairs), 0, 0, *(a for _, a in pairs)]
    if not any(isinstance(v, GraphInt) for v in items):
        return g.op("Constant", value_t=torch.tensor(items, dtype=torch.int64))
    parts = [v.value if isinstance(v, GraphInt)
             else g.op("Constant", value_t=torch.tensor([v], dtype=torch.int64)) for v in items]
    return g.op("Concat", *parts, axis_i=0)


def _rank(x: Any, window: SameWindow) -> int:
    try:
        rank = x.type().dim()
    except RuntimeError:
        rank = None
    return window.ndim + 2 if rank is None else int(rank)


class _SamePad(torch.autograd.Function):
    """``F.pad`` by the 'same' amounts; exported as ``Pad`` with constant or in-graph amounts."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, window: SameWindow, mode: str, value: float) -> Tensor:
        pads = window.torch_pad([int(i) for i in x.shape[-window.ndim:]])
        if mode == "constant":
            return F.pad(x, pads, mode="constant", value=value)
        return F.pad(x, pads, mode=mode)

    @staticmethod
    def symbolic(g: Any, x: Any, window: SameWindow, mode: str, value: float) -> Any:
        pads = _onnx_pads(g, window, _graph_sizes(g, x, window.ndim, _rank(x, window)))
        if mode != "constant":
            return g.op("Pad", x, pads, mode_s=ONNX_PAD_MODES[mode])
        fill = g.op("CastLike", g.op("Constant", value_t=torch.tensor(value)), x)
        return g.op("Pad", x, pads, fill, mode_s="constant")


class _NativeSame(torch.autograd.Function):
    """The eager computation; exported as one ONNX op with ``auto_pad`` (or static ``pads``)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, window: SameWindow, eager: Callable[..., Tensor],
                *params: Tensor) -> Tensor:
        return eager(x, *params)

    @staticmethod
    def symbolic(g: Any, x: Any, window: SameWindow, eager: Callable[..., Tensor],
                 *params: Any) -> Any:
        attrs = window.onnx_attrs()
        known = _static_sizes(x, window.ndim)
        if all(s is not None for s in known):
            pairs = window.pairs(known)
            attrs["pads"] = [b for b, _ in pairs] + [a for _, a in pairs]
        else:
            attrs["auto_pad"] = window.auto_pad
        suffixed = {f"{name}_{'s' if isinstance(v, str) else 'i'}": v for name, v in attrs.items()}
        inputs = [p for p in params if p is not None]
        return g.op(window.op_type, x, *inputs, **suffixed)


# -- entry points used by the layers --------------------------------------------------------------


def same_pad(x: Tensor, window: SameWindow, mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad ``x`` by the 'same' amounts for its own size, exactly in eager mode and both exporters."""
    if legacy_exporting():
        return _SamePad.apply(x, window, mode, value)  # type: ignore[no-untyped-call,no-any-return]
    if exporting() and _symbolic_sizes(x, window.ndim):
        return _dynamo_same_pad(x, window, mode, value)
    pads = window.torch_pad([int(i) for i in x.shape[-window.ndim:]])
    if mode == "constant":
        return F.pad(x, pads, mode="constant", value=value)
    return F.pad(x, pads, mode=mode)


def _dynamo_same_pad(x: Tensor, window: SameWindow, mode: str, value: float) -> Tensor:
    """ONNX ``Shape -> Gather -> arith formula -> Pad``, built from int64 tensors.

    The formula is evaluated on tensors rather than on ``torch.SymInt``: the exporter lowers a
    SymInt ``//`` to ONNX's truncating ``Div`` (onnxscript assumes non-negative operands), and
    sympy may rewrite ``(c - m) // 2`` into ``c // 2 + (-m) // 2``, which then rounds the wrong
    way. Tensor ``//`` lowers to a sign-correct floor division. The SymInt shape passed along is
    metadata only.
    """
    rank = x.dim()
    shape = torch.onnx.ops.symbolic("Shape", [x], {}, dtype=torch.int64, shape=[rank])
    sizes = [shape[rank - window.ndim + axis:rank - window.ndim + axis + 1]
             for axis in range(window.ndim)]
    pairs = window.pairs(sizes)
    zeros = torch.zeros(2, dtype=torch.int64)
    pads = torch.cat([zeros[:2], *(b for b, _ in pairs), zeros[:2], *(a for _, a in pairs)])
    meta = window.pairs(list(x.shape[-window.ndim:]))
    out_shape = [*x.shape[:2], *(i + b + a for i, (b, a) in zip(x.shape[-window.ndim:], meta))]
    inputs: list[Tensor] = [x, pads]
    if mode == "constant":
        inputs.append(torch.tensor(value, dtype=x.dtype))
    return torch.onnx.ops.symbolic("Pad", inputs, {"mode": ONNX_PAD_MODES[mode]},
                                   dtype=x.dtype, shape=out_shape)


def native_same(x: Tensor, window: SameWindow, eager: Callable[..., Tensor],
                params: Sequence[Tensor | None] = ()) -> Tensor:
    """The ONNX op with ``auto_pad`` when exporting dynamic sizes; ``eager(x, *params)`` otherwise."""
    if legacy_exporting():
        return _NativeSame.apply(x, window, eager, *params)  # type: ignore[no-untyped-call,no-any-return]
    if exporting() and _symbolic_sizes(x, window.ndim):
        weight = params[0] if params else None
        attrs = window.onnx_attrs()
        attrs["auto_pad"] = window.auto_pad
        return torch.onnx.ops.symbolic(
            window.op_type, [x, *(p for p in params if p is not None)], attrs,
            dtype=x.dtype, shape=window.output_shape(x, weight))
    return eager(x, *params)
