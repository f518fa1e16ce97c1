"""FLOPs exactly as ``torch.utils.flop_counter.FlopCounterMode`` counts them, faster.

``FlopCounterMode`` tries to decompose every operator before counting (``func.decompose``) and
tracks the module hierarchy with global hooks. :class:`FlopTally` applies the same formulas
(``flop_registry``) to the same operators, decomposing exactly when ``FlopCounterMode`` would,
but remembers operator overloads whose decomposition is impossible or counted no FLOPs (batch
norm, layer norm, activations) and runs those directly from then on; the total is the same.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

_aten = torch.ops.aten
_SKIP = frozenset({
    _aten.sym_is_contiguous.default, _aten.is_contiguous.default,
    _aten.is_contiguous.memory_format, _aten.is_strides_like_format.default,
    _aten.is_non_overlapping_and_dense.default, _aten.size.default, _aten.sym_size.default,
    _aten.stride.default, _aten.sym_stride.default, _aten.storage_offset.default,
    _aten.sym_storage_offset.default, _aten.numel.default, _aten.sym_numel.default,
    _aten.dim.default, torch.ops.prim.layout.default,
}) if hasattr(_aten, "sym_is_contiguous") else frozenset()


class FlopTally(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """Counts FLOPs of every operator run under it (``total``, ``get_total_flops()``)."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.total = 0
        self._direct: set[Any] = set()

    def get_total_flops(self) -> int:
        return self.total

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        if func in _SKIP:
            return NotImplemented
        if func not in self._direct and func is not torch.ops.prim.device.default:
            before = self.total
            with self:
                result = func.decompose(*args, **kwargs)
            if result is not NotImplemented:
                if self.total == before:
                    self._direct.add(func)
                return result
            self._direct.add(func)
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += int(formula(*args, **kwargs, out_val=out))
        return out
