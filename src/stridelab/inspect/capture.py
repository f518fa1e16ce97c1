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
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode
from torch.utils.weak import WeakIdKeyDictionary

from stridelab.arith import ReceptiveField
from stridelab.inspect.geometry import SHAPE_OPS, Effect, effect_of, rearranged

INPUT = -1


@dataclass
class TensorInfo:
    """A tensor's field; ``pending`` remembers the last spatial field and size when a reshape
    left the ``(N, C, *spatial)`` layout, so a reshape back (space-to-depth) can resume it."""

    field: ReceptiveField
    spatial: bool
    origin: int
    pending: tuple[ReceptiveField, tuple[int, ...]] | None = None
    lift: int | None = None


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
    input_ids: set[int] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)


class Recorder(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """Follows fields and origins through every ATen operator and groups them into rows."""

    def __init__(self, ndim: int, params: dict[int, int], buffers: set[int],
                 counter: FlopCounterMode) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.ndim = ndim
        self.params = params  # id(tensor) -> numel
        self.buffers = buffers
        self.counter = counter
        self.infos: WeakIdKeyDictionary = WeakIdKeyDictionary()
        self.groups: list[Group] = []
        self.current: Group | None = None
        self.scope: list[str] = []
        self.names: dict[str, int] = {}
        self.muted = 0

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
                group.input_ids.add(id(leaf))
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
        # in-place results (the input tensor itself, e.g. ReLU(inplace=True)) add no memory
        group.activation_bytes = sum(t.numel() * t.element_size() for t in carried
                                     if id(t) not in group.input_ids)

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
        if carried and not self.muted:
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
        out_shape = tuple(outputs[0].shape)
        pending = None
        effect: Effect | None = None
        lift = lifted(base, args, self.infos[unique[0]], out_shape) if len(unique) == 1 else None
        if lift is not None:
            effect, axis = lift
            for t in outputs:
                self.infos[t] = TensorInfo(effect.field, True, group.index, None, axis)
            group.effects.append((base, effect, False))
            return
        if len(unique) == 1 and base in SHAPE_OPS:
            info = self.infos[unique[0]]
            if info.spatial and len(out_shape) != self.ndim + 2:
                pending = (info.field, tuple(unique[0].shape[-self.ndim:]))
            elif info.pending is not None:
                effect = rearranged(info.pending, out_shape, self.ndim)
                pending = info.pending if effect is None else None
        if effect is None:
            effect = effect_of(base, args, kwargs, inputs, out_shape, inputs[0][0].ndim)
        fixed = False
        if base in ("convolution", "_convolution") and len(args) > 1:
            weight = args[1]
            fixed = isinstance(weight, torch.Tensor) and id(weight) not in self.params
        group.effects.append((base, effect, fixed))
        first = self.infos[unique[0]]
        keep_lift = first.lift if len(out_shape) == first.field.ndim + 2 else None
        for t in outputs:
            self.infos[t] = TensorInfo(effect.field, effect.spatial, group.index, pending,
                                       keep_lift)


_CONTAINERS = (torch.nn.Sequential, torch.nn.ModuleList, torch.nn.ModuleDict)


class CircularPads(TorchFunctionMode):
    """``F.pad(mode="circular")`` decomposes into copies into a fresh tensor, which loses the
    field at the dispatch level; this mode handles the whole call as one padding window."""

    def __init__(self, recorder: Recorder) -> None:
        super().__init__()
        self.recorder = recorder

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        mode = kwargs.get("mode", args[2] if len(args) > 2 else "constant")
        rec = self.recorder
        if func is not torch.nn.functional.pad or mode != "circular" or not args:
            return func(*args, **kwargs)
        source = args[0]
        rec.muted += 1
        try:
            out = func(*args, **kwargs)
        finally:
            rec.muted -= 1
        info: TensorInfo | None = None
        if isinstance(source, torch.Tensor) and source in rec.infos:
            info = rec.infos[source]
        group = rec.current
        if info is not None and group is not None and isinstance(out, torch.Tensor):
            pad = kwargs.get("pad", args[1] if len(args) > 1 else ())
            effect = effect_of("constant_pad_nd", (source, list(pad)), {},
                               [(info.field, info.spatial, tuple(source.shape))],
                               tuple(out.shape), info.field.ndim)
            group.ran = True
            rec._parent(group, info.origin)
            group.effects.append(("circular_pad", effect, False))
            rec.infos[out] = TensorInfo(effect.field, effect.spatial, group.index)
        return out


def lifted(name: str, args: tuple[Any, ...], info: TensorInfo, out_shape: tuple[int, ...]
           ) -> tuple[Effect, int | None] | None:
    """``unsqueeze`` / ``squeeze`` of a singleton spatial axis (how torch runs 1-D pooling as
    2-D): the field gains (or loses) an identity axis so the 2-D window applies unchanged."""
    field = info.field
    if not info.spatial or len(args) < 2 or not isinstance(args[1], int):
        return None
    rank_in = field.ndim + 2
    if name == "unsqueeze" and len(out_shape) == rank_in + 1:
        dim = args[1] + len(out_shape) if args[1] < 0 else args[1]
        axis = dim - 2
        if 0 <= axis <= field.ndim and out_shape[dim] == 1:
            grown = ReceptiveField(field.size[:axis] + (1,) + field.size[axis:],
                                   field.stride[:axis] + (1,) + field.stride[axis:],
                                   field.padding[:axis] + (0,) + field.padding[axis:])
            return Effect(grown, True), axis
    if name == "squeeze" and info.lift is not None and len(out_shape) == rank_in - 1:
        axis = info.lift
        keep = [a for a in range(field.ndim) if a != axis]
        shrunk = ReceptiveField(tuple(field.size[a] for a in keep),
                                tuple(field.stride[a] for a in keep),
                                tuple(field.padding[a] for a in keep))
        return Effect(shrunk, True), None
    return None


def is_leaf_module(module: torch.nn.Module) -> bool:
    """One row per call: torch.nn's own layers (as FX's default tracer), their subclasses (a
    padded ``Conv2d`` stays one "Conv2d" row) and modules without children."""
    if isinstance(module, _CONTAINERS):
        return False
    for cls in type(module).__mro__:
        if cls is torch.nn.Module:
            break
        if cls.__module__.startswith(("torch.nn", "torch.ao.nn")):
            return True
    return not any(True for _ in module.children())


class _Tracer(torch.fx.Tracer):
    def is_leaf_module(self, m: torch.nn.Module, module_qualified_name: str) -> bool:
        return is_leaf_module(m)


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
    """FX symbolic tracing with :func:`is_leaf_module` (raises whatever FX raises)."""
    graph = _Tracer().trace(model)
    return torch.fx.GraphModule(model, graph, type(model).__name__)


def run_fx(graph_module: torch.fx.GraphModule, tensors: dict[str, torch.Tensor],
           x: torch.Tensor, recorder: Recorder) -> Any:
    runner = _Runner(graph_module, recorder)
    swapped = {f"graph_module.{k}": v for k, v in tensors.items()}
    recorder.register_input(x)
    with recorder, CircularPads(recorder):
        return torch.func.functional_call(runner, swapped, (x,), strict=False)


def run_eager(model: torch.nn.Module, tensors: dict[str, torch.Tensor], x: torch.Tensor,
              recorder: Recorder) -> Any:
    """Fallback capture with forward hooks on every module (removed afterwards)."""
    names: dict[int, str] = {}
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
        with recorder, CircularPads(recorder):
            return torch.func.functional_call(model, tensors, (x,), strict=False)
    finally:
        for handle in handles:
            handle.remove()
