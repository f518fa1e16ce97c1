"""The operator table: one small rule per ATen operator (family), filled by :func:`rule`.

A rule receives a :class:`Call` (the operator's arguments, which of them are captured tensors and
their :class:`~stridelab.inspect.positions.Info`) and returns an :class:`Outcome`: per output
tensor its field, layout and context flag, plus what a report shows (the window, a misaligned
merge, a global gate, an operator it does not understand). Returning None hands the call to the
default rule (element-wise with broadcasting, else unknown). The idea follows
``torch.utils.flop_counter``'s ``register_flop_formula`` table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from stridelab.arith import ReceptiveField
from stridelab.inspect.geometry import Window
from stridelab.inspect.layout import Layout
from stridelab.inspect.positions import Info


@dataclass(frozen=True)
class Result:
    """Field, layout and context of one output tensor (``origin`` is set by the recorder)."""

    field: ReceptiveField
    layout: Layout
    context: bool


@dataclass
class Outcome:
    """What one operator did: ``results[i]`` for output ``i`` (the last one repeats for the
    rest), the sliding window it applies (shown in reports), the fields of a misaligned merge,
    whether a global-context input was broadcast over the map (a gate), whether the operator is
    unknown (positions given up), and whether the field changed through an approximation."""

    results: list[Result]
    window: Window | None = None
    misaligned: tuple[ReceptiveField, ...] = ()
    broadcast: bool = False
    unknown: bool = False


@dataclass
class Call:
    """One operator call as a rule sees it."""

    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    infos: dict[int, Info]  # id(tensor) -> info, for the captured inputs
    outputs: list[torch.Tensor]
    ndim: int
    params: frozenset[int] = field(default_factory=frozenset)
    _tracked: list[tuple[torch.Tensor, Info]] | None = field(default=None, init=False,
                                                             repr=False, compare=False)
    _out_shape: tuple[int, ...] | None = field(default=None, init=False, repr=False,
                                               compare=False)

    def arg(self, index: int, name: str, default: object = None) -> Any:
        if len(self.args) > index:
            return self.args[index]
        return self.kwargs.get(name, default)

    def info(self, value: object) -> Info | None:
        if isinstance(value, torch.Tensor):
            return self.infos.get(id(value))
        return None

    def set_info(self, tensor: torch.Tensor, info: Info) -> None:
        """Replace a captured input's info (a rule that reinterprets its input)."""
        self.infos[id(tensor)] = info
        if self._tracked is not None and any(t is tensor for t, _ in self._tracked):
            # the same tensors in the same order, one info replaced: no second walk
            self._tracked = [(t, info if t is tensor else old) for t, old in self._tracked]
        else:
            self._tracked = None

    def tracked(self) -> list[tuple[torch.Tensor, Info]]:
        """Captured tensor arguments in order, each once (computed once per call)."""
        if self._tracked is None:
            seen: set[int] = set()
            found = []
            for value in _leaves((self.args, self.kwargs)):
                if isinstance(value, torch.Tensor) and id(value) in self.infos \
                        and id(value) not in seen:
                    seen.add(id(value))
                    found.append((value, self.infos[id(value)]))
            self._tracked = found
        return list(self._tracked)

    @property
    def first(self) -> tuple[torch.Tensor, Info]:
        return self.tracked()[0]

    @property
    def out_shape(self) -> tuple[int, ...]:
        """The first output's shape (read once per call: rules ask for it several times)."""
        if self._out_shape is None:
            self._out_shape = tuple(self.outputs[0].shape)
        return self._out_shape


def _leaves(value: object) -> list[object]:
    if isinstance(value, (list, tuple)):
        return [leaf for item in value for leaf in _leaves(item)]
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    return [value]


Rule = Callable[[Call], Outcome | None]
RULES: dict[str, Rule] = {}


def rule(*names: str) -> Callable[[Rule], Rule]:
    """Register ``function`` as the rule of every ATen operator in ``names``."""

    def register(function: Rule) -> Rule:
        for name in names:
            RULES[name] = function
        return function

    return register


def dim_arg(value: object, rank: int) -> int:
    index: int = int(value)  # type: ignore[call-overload]
    return index + rank if index < 0 else index


def dims_arg(value: object, rank: int) -> list[int]:
    """Reduction dimensions: an int, a list, or None / empty for all."""
    if value is None or (isinstance(value, Sequence) and len(value) == 0):
        return list(range(rank))
    if isinstance(value, Sequence):
        return sorted({dim_arg(v, rank) for v in value})
    return [dim_arg(value, rank)]


def same(info: Info, layout: Layout | None = None, field: ReceptiveField | None = None,
         context: bool | None = None) -> Result:
    """``info`` with some parts replaced."""
    return Result(info.field if field is None else field,
                  info.layout if layout is None else layout,
                  info.context if context is None else context)
