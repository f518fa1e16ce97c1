"""FLOPs exactly as ``torch.utils.flop_counter.FlopCounterMode`` counts them, faster.

``FlopCounterMode`` tries to decompose every operator before counting (``func.decompose``) and
tracks the module hierarchy with global hooks. :class:`FlopTally` applies the same formulas
(``flop_registry``) to the same operators, decomposing exactly when ``FlopCounterMode`` would,
but remembers operator overloads whose decomposition is impossible or counted no FLOPs (batch
norm, layer norm, activations) and runs those directly from then on; the total is the same.

On meta tensors it also remembers what each operator produced (:class:`MetaMemo`): many of
PyTorch's meta kernels are Python reference implementations costing 0.5-3 ms per call, while a
model repeats the same call on the same shapes block after block (and an LSTM step after step).
The commonest of them (norms, softmax, activations, addmm, same-shape arithmetic) are not run at
all: :mod:`stridelab.inspect.metashapes` gives their results first.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_unflatten
from torch.utils.flop_counter import flop_registry

from stridelab.inspect.metashapes import meta_result

_aten = torch.ops.aten
_SKIP = frozenset({
    _aten.sym_is_contiguous.default, _aten.is_contiguous.default,
    _aten.is_contiguous.memory_format, _aten.is_strides_like_format.default,
    _aten.is_non_overlapping_and_dense.default, _aten.size.default, _aten.sym_size.default,
    _aten.stride.default, _aten.sym_stride.default, _aten.storage_offset.default,
    _aten.sym_storage_offset.default, _aten.numel.default, _aten.sym_numel.default,
    _aten.dim.default, torch.ops.prim.layout.default,
}) if hasattr(_aten, "sym_is_contiguous") else frozenset()

_PLAIN = (bool, int, float, str, type(None), torch.dtype, torch.device, torch.memory_format,
          torch.layout)


_UNSEEN = object()


class _Unmemoisable(Exception):
    """An argument or result that a key or a cached entry cannot represent."""


def _key_of(value: Any) -> Any:
    """A hashable description of an argument: tensors by their metadata, never their values.

    Scalars keep their type (``2`` and ``2.0`` give different result dtypes)."""
    if isinstance(value, torch.Tensor):
        if value.device.type != "meta":
            raise _Unmemoisable
        return ("T", tuple(value.shape), value.stride(), value.storage_offset(), value.dtype)
    if isinstance(value, _PLAIN):
        return (type(value), value)
    if isinstance(value, (list, tuple)):
        return (type(value), tuple(_key_of(item) for item in value))
    if isinstance(value, dict):
        return (dict, tuple((name, _key_of(item)) for name, item in value.items()))
    raise _Unmemoisable  # SymInts, generators, opaque objects


def _metadata(t: torch.Tensor) -> tuple[Any, ...]:
    return tuple(t.shape), t.stride(), t.storage_offset(), t.dtype


def _kind(func: Any) -> str:
    """``"functional"``: no argument written, no result aliasing an argument; ``"inplace"``: only
    ``self`` is written and it is the one result; anything else (views, ``out=``): ``"other"``."""
    schema = func._schema
    written = [a for a in schema.arguments if a.alias_info is not None and a.alias_info.is_write]
    aliased = [r for r in schema.returns if r.alias_info is not None]
    if not written and not aliased:
        return "functional"
    if (len(written) == 1 and schema.arguments and written[0].name == schema.arguments[0].name
            and len(schema.returns) == 1 and len(aliased) == 1):
        return "inplace"
    return "other"


class MetaMemo:
    """Results of operators on meta tensors, keyed by the operator and its arguments' metadata.

    A functional operator's results are rebuilt as empty meta tensors with the recorded shapes,
    strides and dtypes (a meta kernel is a function of metadata only). An in-place operator that
    left ``self``'s metadata unchanged the first time returns ``self`` without running
    (``unsqueeze_`` / ``resize_`` and the like change it and are always run). Views and ``out=``
    variants are always run: their results share storage with an argument.
    """

    def __init__(self) -> None:
        self._kinds: dict[Any, str] = {}
        self._results: dict[Any, Any] = {}

    def call(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        shortcut = meta_result(func, args, kwargs)
        if shortcut is not None:
            return shortcut
        kind = self._kinds.get(func)
        if kind is None:
            kind = self._kinds[func] = _kind(func)
        if kind == "other":
            return func(*args, **kwargs)
        try:
            key = (func, torch.get_default_dtype(), _key_of(args), _key_of(kwargs))
        except _Unmemoisable:
            return func(*args, **kwargs)
        cached = self._results.get(key)
        if cached is not None:
            return args[0] if kind == "inplace" else _rebuild(cached)
        if kind == "inplace":
            before = _metadata(args[0]) if isinstance(args[0], torch.Tensor) else None
            out = func(*args, **kwargs)
            if before is not None and out is args[0] and _metadata(out) == before:
                self._results[key] = True
            return out
        out = func(*args, **kwargs)
        try:
            self._results[key] = _describe(out)
        except _Unmemoisable:
            pass
        return out


def _describe(out: Any) -> tuple[list[Any], Any]:
    """Shapes, strides and dtypes of a result; its pytree spec, or None for one tensor (most
    results: rebuilt without pytree)."""
    if type(out) is torch.Tensor:
        leaves: list[Any] = [out]
        spec = None
    else:
        leaves, spec = tree_flatten(out)
    described: list[Any] = []
    for leaf in leaves:
        if isinstance(leaf, torch.Tensor):
            if leaf.device.type != "meta" or leaf.requires_grad or leaf.storage_offset():
                raise _Unmemoisable
            described.append(("T", tuple(leaf.shape), leaf.stride(), leaf.dtype))
        elif isinstance(leaf, (bool, int, float, type(None))):
            described.append(("V", leaf))
        else:
            raise _Unmemoisable
    return described, spec


def _rebuild(cached: tuple[list[Any], Any]) -> Any:
    described, spec = cached
    leaves = [torch.empty_strided(item[1], item[2], dtype=item[3], device="meta")
              if item[0] == "T" else item[1] for item in described]
    return leaves[0] if spec is None else tree_unflatten(leaves, spec)


class FlopTally(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """Counts FLOPs of every operator run under it (``total``, ``get_total_flops()``)."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.total = 0
        self._direct: set[Any] = set()
        self._memo = MetaMemo()
        self._formulas: dict[Any, Any] = {}  # operator overload -> its formula, or None
        self._counted: dict[Any, int] = {}  # (operator, arguments' metadata) -> FLOPs

    def get_total_flops(self) -> int:
        return self.total

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        if func in _SKIP:
            return NotImplemented
        return self.count_call(func, args, kwargs or {})

    def count_call(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run ``func`` and add its FLOPs: what the mode does for each operator, callable from
        another dispatch mode (the recorder) without stacking a second mode."""
        if func in _SKIP:
            return func(*args, **kwargs)
        if func not in self._direct and func is not torch.ops.prim.device.default:
            before = self.total
            with self:
                result = func.decompose(*args, **kwargs)
            if result is not NotImplemented:
                if self.total == before:
                    self._direct.add(func)
                return result
            self._direct.add(func)
        out = self._memo.call(func, args, kwargs)
        formula = self._formulas.get(func, _UNSEEN)
        if formula is _UNSEEN:
            formula = self._formulas[func] = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += self._flops(formula, func, args, kwargs, out)
        return out

    def _flops(self, formula: Any, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
               out: Any) -> int:
        """The formula's count; on meta tensors remembered per operator and argument metadata
        (a formula reads shapes only, and a model repeats its shapes block after block)."""
        try:
            key = (func, _key_of(args), _key_of(kwargs))
        except _Unmemoisable:
            return int(formula(*args, **kwargs, out_val=out))
        flops = self._counted.get(key)
        if flops is None:
            flops = self._counted[key] = int(formula(*args, **kwargs, out_val=out))
        return flops
