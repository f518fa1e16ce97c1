"""Capture a model's operators, graph edges, fields and costs in one forward pass.

Two front ends share one dispatch-level recorder (:class:`Recorder`, a ``TorchDispatchMode``):

* :func:`capture_fx` traces the model with ``torch.fx.symbolic_trace`` and runs the graph node by
  node; each node becomes one group (named after its module, or ``scope.function`` for
  functional calls, so shared modules, ``F.*`` calls, ``+`` and ``torch.cat`` all appear);
* :func:`capture_eager` is the fallback for models FX cannot trace (data-dependent Python
  control flow, ...): it runs the model eagerly with forward hooks; each call of a leaf module is
  a group, and every other operator that touches the input's data is a group of its own.

Under both, every ATen operator is seen by :class:`Recorder`, which follows each tensor's
receptive field (:mod:`stridelab.inspect.geometry`) and origin (the group that produced it) by
tensor identity, attributes FLOPs from ``torch.utils.flop_counter.FlopCounterMode`` to the
running group, and notes which parameters each group reads (so shared ones count once).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode
from torch.utils.weak import WeakIdKeyDictionary

from stridelab.arith import ReceptiveField
from stridelab.inspect.geometry import Effect, effect_of

INPUT = -1


@dataclass
class TensorInfo:
    field: ReceptiveField
    spatial: bool
    origin: int


@dataclass
class Group:
    """One future row of the report: everything observed while one node / module call ran."""

    index: int
    name: str
    op: str
    input_shapes: list[tuple[int, ...]] = field(default_factory=list)
    output_shapes: list[tuple[int, ...]] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)
    effects: list[tuple[str, Effect, bool]] = field(default_factory=list)  # (aten op, effect, fixed)
    flops: int = 0
    param_ids: list[int] = field(default_factory=list)
    out_info: TensorInfo | None = None
    activation_bytes: int = 0
    ran: bool = False
    lost: bool = False
    errors: list[str] = field(default_factory=list)


class Recorder(TorchDispatchMode):
    """Follows fields and origins through every ATen operator and groups them into rows."""

    def __init__(self, ndim: int, params: dict[int, int], buffers: set[int],
                 counter: FlopCounterMode) -> None:
        super().__init__()
        self.ndim = ndim
        self.params = params  # id(tensor) -> numel
        self.buffers = buffers
        self.counter = counter
        self.infos: WeakIdKeyDictionary = WeakIdKeyDictionary()
        self.groups: list[Group] = []
        self.current: Group | None = None
        self.scope: list[str] = []
        self.names: dict[str, int] = {}

    # -- groups ---------------------------------------------------------------------------
    def unique(self, name: str) -> str:
        count = self.names.get(name, 0)
        self.names[name] = count + 1
        return name if count == 0 else f"{name}_{count}"

    def register_input(self, tensor: torch.Tensor) -> None:
        self.infos[tensor] = TensorInfo(ReceptiveField.identity(self.ndim), True, INPUT)

    def begin(self, name: str, op: str, inputs: object) -> Group:
        group = Group(len(self.groups), name, op)
        for leaf in tree_leaves(inputs):
            if isinstance(leaf, torch.Tensor) and leaf in self.infos:
                group.input_shapes.append(tuple(leaf.shape))
                self._parent(group, self.infos[leaf].origin)
        self.groups.append(group)
        self.current = group
        return group

    def _parent(self, group: Group, origin: int) -> None:
        if origin != group.index and origin not in group.parents:
            group.parents.append(origin)

    def end(self, group: Group, output: object, keep_idle: bool) -> None:
        """Close ``group``; it stays a row if it ran an operator on the data (or is a module)."""
        self.current = None
        tensors = [t for t in tree_leaves(output) if isinstance(t, torch.Tensor)]
        if not group.ran:
            carried = [t for t in tensors if t in self.infos]
            if not (keep_idle and carried):
                self.groups.pop()
                return
            for t in carried:  # an idle module (Identity, ...) re-labels its output
                old = self.infos[t]
                self._parent(group, old.origin)
                self.infos[t] = TensorInfo(old.field, old.spatial, group.index)
        for t in tensors:
            if t not in self.infos and group.effects:
                last = group.effects[-1][1]
                self.infos[t] = TensorInfo(last.field, last.spatial, group.index)
                group.lost = True
        carried = [t for t in tensors if t in self.infos]
        if not carried:
            self.groups.pop()
            return
        group.out_info = self.infos[carried[0]]
        group.output_shapes = [tuple(t.shape) for t in carried]
        group.activation_bytes = sum(t.numel() * t.element_size() for t in carried)

    # -- dispatch -------------------------------------------------------------------------
    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        before = self.counter.get_total_flops()
        out = func(*args, **kwargs)
        flops = self.counter.get_total_flops() - before
        try:
            self._observe(func, args, kwargs, out, flops)
        except Exception as err:  # never break the user's forward pass; report it instead
            if self.current is not None:
                self.current.errors.append(f"{func}: {err}")
        return out

    def _observe(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any,
                 flops: int) -> None:
        leaves = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        carried = [t for t in leaves if t in self.infos]
        group = self.current
        name = func.overloadpacket.__name__
        standalone = group is None
        if standalone and not carried:
            return
        if group is None:  # eager fallback, outside any leaf module: one row per operator
            scope = self.scope[-1] if self.scope else ""
            label = f"{scope}.{name}" if scope else name
            group = self.begin(self.unique(label), name, carried)
        group.flops += flops
        for t in leaves:
            key = id(t)
            if key in self.params and key not in group.param_ids:
                group.param_ids.append(key)
        if carried:
            group.ran = True
            self._follow(group, name, args, kwargs, out, carried)
        if standalone:
            self.end(group, out, keep_idle=False)

    def _follow(self, group: Group, name: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                out: Any, carried: list[torch.Tensor]) -> None:
        base = name[:-1] if name.endswith("_") and not name.startswith("_") else name
        outputs = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
        unique: list[torch.Tensor] = []
        for t in carried:
            if all(t is not u for u in unique):
                unique.append(t)
        if base in ("copy", "set", "fill", "zero") or not outputs:
            sources = unique[1:] if base == "copy" else []
            if sources and outputs:
                info = self.infos[sources[0]]
                self.infos[outputs[0]] = TensorInfo(info.field, info.spatial, group.index)
            return
        for t in unique:
            self._parent(group, self.infos[t].origin)
        inputs = [(self.infos[t].field, self.infos[t].spatial, tuple(t.shape)) for t in unique]
        effect = effect_of(base, args, kwargs, inputs, tuple(outputs[0].shape), self.ndim)
        fixed = False
        if base in ("convolution", "_convolution") and len(args) > 1:
            weight = args[1]
            fixed = isinstance(weight, torch.Tensor) and id(weight) not in self.params
        group.effects.append((base, effect, fixed))
        for t in outputs:
            self.infos[t] = TensorInfo(effect.field, effect.spatial, group.index)


def is_leaf_module(module: torch.nn.Module) -> bool:
    """torch.nn's own layers (as FX's default tracer decides), plus modules without children."""
    if isinstance(module, torch.nn.Sequential):
        return False
    own = type(module).__module__.startswith(("torch.nn", "torch.ao.nn"))
    return own or not any(True for _ in module.children())


class _Interpreter(torch.fx.Interpreter):
    def __init__(self, module: torch.fx.GraphModule, recorder: Recorder) -> None:
        super().__init__(module)
        self.recorder = recorder
        self.calls: dict[str, int] = {}

    def run_node(self, n: torch.fx.Node) -> Any:
        rec = self.recorder
        if n.op == "placeholder":
            value = super().run_node(n)
            if isinstance(value, torch.Tensor) and value not in rec.infos:
                rec.register_input(value)
            return value
        if n.op not in ("call_module", "call_function", "call_method"):
            return super().run_node(n)
        args, kwargs = self.fetch_args_kwargs_from_env(n)
        if n.op == "call_module":
            target = str(n.target)
            count = self.calls.get(target, 0) + 1
            self.calls[target] = count
            name = target if count == 1 else f"{target}#{count}"
            op = type(self.fetch_attr(target)).__name__
        else:
            op = n.target if isinstance(n.target, str) else getattr(n.target, "__name__", str(n))
            op = op.strip("_") or op
            stack = n.meta.get("nn_module_stack") or {}
            scope = next(reversed(stack.values()))[0] if stack else ""
            name = rec.unique(f"{scope}.{op}" if scope else op)
        group = rec.begin(name, op, (args, kwargs))
        try:
            result = super().run_node(n)
        finally:
            rec.current = None
        rec.end(group, result, keep_idle=n.op == "call_module")
        return result


class _Runner(torch.nn.Module):
    """Holds the traced graph so ``torch.func.functional_call`` can swap its tensors."""

    def __init__(self, module: torch.fx.GraphModule, recorder: Recorder) -> None:
        super().__init__()
        self.graph_module = module
        self.recorder = recorder

    def forward(self, x: torch.Tensor) -> Any:
        return _Interpreter(self.graph_module, self.recorder).run(x)


def trace_fx(model: torch.nn.Module) -> torch.fx.GraphModule:
    """``torch.fx.symbolic_trace`` (raises whatever FX raises for untraceable models)."""
    return torch.fx.symbolic_trace(model)


def run_fx(graph_module: torch.fx.GraphModule, tensors: dict[str, torch.Tensor],
           x: torch.Tensor, recorder: Recorder) -> Any:
    runner = _Runner(graph_module, recorder)
    swapped = {f"graph_module.{k}": v for k, v in tensors.items()}
    recorder.register_input(x)
    with recorder:
        return torch.func.functional_call(runner, swapped, (x,), strict=False)


def run_eager(model: torch.nn.Module, tensors: dict[str, torch.Tensor], x: torch.Tensor,
              recorder: Recorder) -> Any:
    """Fallback capture with forward hooks on every module (removed afterwards)."""
    names = {}
    for name, module in model.named_modules(remove_duplicate=False):
        names.setdefault(id(module), name)
    calls: dict[str, int] = {}
    open_leaf: list[Group | None] = []
    handles = []

    def pre_hook(module: torch.nn.Module, args: Any) -> None:
        name = names.get(id(module), type(module).__name__)
        recorder.scope.append(name)
        if recorder.current is None and is_leaf_module(module) and name:
            count = calls.get(name, 0) + 1
            calls[name] = count
            label = name if count == 1 else f"{name}#{count}"
            open_leaf.append(recorder.begin(label, type(module).__name__, args))
        else:
            open_leaf.append(None)

    def post_hook(module: torch.nn.Module, args: Any, output: Any) -> None:
        recorder.scope.pop()
        group = open_leaf.pop()
        if group is not None:
            recorder.end(group, output, keep_idle=True)

    for module in model.modules():
        handles.append(module.register_forward_pre_hook(pre_hook))
        handles.append(module.register_forward_hook(post_hook))
    recorder.register_input(x)
    try:
        with recorder:
            return torch.func.functional_call(model, tensors, (x,), strict=False)
    finally:
        for handle in handles:
            handle.remove()
