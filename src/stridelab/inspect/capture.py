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
tensor identity, attributes FLOPs (``torch.utils.flop_counter``'s formulas, :mod:`.flops`) to the
running group, and notes which parameters each group reads (so shared ones count once).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.weak import WeakIdKeyDictionary

from stridelab.arith import ReceptiveField
from stridelab.inspect import layout as lay
from stridelab.inspect.flops import FlopTally
from stridelab.inspect.geometry import Effect
from stridelab.inspect.positions import Info
from stridelab.inspect.rules import Call, Outcome, Result, outcome_of
from stridelab.inspect.rules.pointwise import frozen

INPUT = -1
TensorInfo = Info

# operators that only re-view a tensor: a parameter seen through them is still that parameter
VIEWS = frozenset({"view", "_unsafe_view", "reshape", "expand", "permute", "transpose", "t",
                   "unsqueeze", "squeeze", "select", "slice", "alias", "detach", "_to_copy",
                   "as_strided", "unbind", "split", "split_with_sizes", "contiguous", "clone",
                   "flatten", "unflatten", "lift_fresh", "_reshape_alias", "expand_as",
                   "view_as", "unfold", "chunk", "movedim"})
CONSTANT_LIKE = frozenset({"zeros_like", "ones_like", "empty_like", "full_like", "rand_like",
                           "randn_like", "new_zeros", "new_ones", "new_empty", "new_full",
                           "empty_strided", "scalar_tensor", "randint_like", "bernoulli"})


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
    out_info: Info | None = None
    activation_bytes: int = 0
    ran: bool = False
    lost: bool = False
    input_ids: set[int] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)


class Recorder(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """Follows fields and origins through every ATen operator and groups them into rows."""

    def __init__(self, ndim: int, params: dict[int, int], buffers: set[int],
                 counter: FlopTally) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.ndim = ndim
        self.params = params  # id(tensor) -> numel
        self.buffers = buffers
        self.counter = counter
        self.infos: WeakIdKeyDictionary = WeakIdKeyDictionary()
        self.aliases: WeakIdKeyDictionary = WeakIdKeyDictionary()  # view of a param -> its id
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
        self.infos[tensor] = Info(ReceptiveField.identity(self.ndim),
                                  lay.image(tuple(tensor.shape), self.ndim), False, INPUT)

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
        """Close ``group``; it stays a row if it ran an operator on the data (or is a module),
        or if it cost MACs or used parameters on their own (position embeddings, ...)."""
        self.current = None
        tensors = [t for t in tree_leaves(output) if isinstance(t, torch.Tensor)]
        if not group.ran:
            carried = [t for t in tensors if t in self.infos]
            if not (keep_idle and carried) and not self._costly(group):
                self.groups.pop()
                return
            for t in carried:  # an idle module (Identity, ...) re-labels its output
                old = self.infos[t]
                self._parent(group, old.origin)
                self.infos[t] = Info(old.field, old.layout, old.context, group.index)
        for t in tensors:
            if t not in self.infos and group.effects and group.ran:
                last = group.effects[-1][1]
                self.infos[t] = Info(last.field, lay.plain(tuple(t.shape), self.ndim),
                                     last.context, group.index)
                group.lost = True
        carried = [t for t in tensors if t in self.infos]
        if not carried:
            if not self._costly(group):
                self.groups.pop()
                return
            group.out_info = Info(ReceptiveField.identity(self.ndim),
                                  lay.plain((), self.ndim), False, group.index)
            group.output_shapes = [tuple(t.shape) for t in tensors[:1]]
            return
        group.out_info = self.infos[carried[0]]
        group.output_shapes = [tuple(t.shape) for t in carried]
        # in-place results (the input tensor itself, e.g. ReLU(inplace=True)) add no memory
        group.activation_bytes = sum(t.numel() * t.element_size() for t in carried
                                     if id(t) not in group.input_ids)

    @staticmethod
    def _costly(group: Group) -> bool:
        return group.flops > 0 or bool(group.param_ids)

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

    def _claims(self, name: str, leaves: list[torch.Tensor], out: Any) -> list[int]:
        """Parameters this operator uses; a view of a parameter stays that parameter."""
        keys = []
        for t in leaves:
            key = id(t) if id(t) in self.params else self.aliases.get(t)  # type: ignore[no-untyped-call]
            if key is not None and key not in keys:
                keys.append(key)
        if keys and name in VIEWS and len(keys) == 1 and not any(t in self.infos
                                                                  for t in leaves):
            for t in tree_leaves(out):
                if isinstance(t, torch.Tensor):
                    self.aliases[t] = keys[0]
            return []
        return keys

    def _observe(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any,
                 flops: int) -> None:
        leaves = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        carried = [t for t in leaves if t in self.infos]
        name = func.overloadpacket.__name__
        claims = self._claims(name, leaves, out)
        group = self.current
        standalone = group is None
        if standalone and not carried and not flops and not claims:
            return
        if group is None:  # eager fallback, outside any leaf module: one row per operator
            scope = self.scope[-1] if self.scope else ""
            label = f"{scope}.{name}" if scope else name
            group = self.begin(self.unique(label), name, carried)
        group.flops += flops
        for key in claims:
            if key not in group.param_ids:
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
        for t in carried:
            self._parent(group, self.infos[t].origin)
        if base in CONSTANT_LIKE:
            return
        if base in ("copy", "set", "fill", "zero") or not outputs:
            sources = [t for t in carried[1:] if t is not carried[0]] if base == "copy" else []
            if sources and outputs:
                info = self.infos[sources[0]]
                self.infos[outputs[0]] = Info(info.field, info.layout, info.context,
                                              group.index)
            return
        infos = {id(t): self.infos[t] for t in carried}
        call = Call(base, args, kwargs, infos, outputs, self.ndim)
        try:
            outcome = outcome_of(call)
        except (ValueError, TypeError, IndexError, KeyError, AttributeError) as err:
            group.errors.append(f"{name}: {err}")
            outcome = _given_up(call)
        self._store(group, base, args, outputs, outcome)

    def _store(self, group: Group, name: str, args: tuple[Any, ...],
               outputs: list[torch.Tensor], outcome: Outcome) -> None:
        results = outcome.results
        for index, t in enumerate(outputs):
            result = results[min(index, len(results) - 1)]
            if result.layout.shape != tuple(t.shape):
                result = Result(frozen(Info(result.field, result.layout, result.context, 0)),
                                lay.plain(tuple(t.shape), self.ndim), result.context)
            self.infos[t] = Info(result.field, result.layout, result.context, group.index)
        fixed = False
        if name in ("convolution", "_convolution") and len(args) > 1:
            weight = args[1]
            fixed = isinstance(weight, torch.Tensor) and id(weight) not in self.params
        first = results[0]
        group.effects.append((name, Effect(first.field, first.layout.spatial, outcome.window,
                                           outcome.misaligned, outcome.broadcast,
                                           outcome.unknown, first.context), fixed))


def _given_up(call: Call) -> Outcome:
    from stridelab.inspect.rules.pointwise import unknown
    return unknown(call, call.tracked())


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
        group = rec.current
        if (isinstance(source, torch.Tensor) and source in rec.infos and group is not None
                and isinstance(out, torch.Tensor)):
            info = rec.infos[source]
            pad = list(kwargs.get("pad", args[1] if len(args) > 1 else ()))
            call = Call("constant_pad_nd", (source, pad), {}, {id(source): info}, [out],
                        rec.ndim)
            group.ran = True
            rec._parent(group, info.origin)
            rec._store(group, "circular_pad", (source, pad), [out], outcome_of(call))
        return out


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
    _param_names: dict[int, str] | None = None

    def is_leaf_module(self, m: torch.nn.Module, module_qualified_name: str) -> bool:
        return is_leaf_module(m)

    def create_arg(self, a: Any) -> Any:
        """A parameter passed to a function: FX searches every parameter for it on each use
        (quadratic on large models); look it up by identity instead."""
        if isinstance(a, torch.nn.Parameter):
            if self._param_names is None:
                self._param_names = {id(p): n for n, p in self.root.named_parameters()}
            name = self._param_names.get(id(a))
            if name is not None:
                return self.create_node("get_attr", name, (), {})
        return super().create_arg(a)


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


def run_fx(graph_module: torch.fx.GraphModule, stand_ins: dict[int, torch.Tensor],
           x: torch.Tensor, recorder: Recorder) -> Any:
    """Run the traced graph with stand-ins swapped in at the graph module's own paths (it
    keeps only the submodules the graph uses, each shared one under one name)."""
    runner = _Runner(graph_module, recorder)
    swapped: dict[str, torch.Tensor] = {}
    for name, tensor in [*graph_module.named_parameters(remove_duplicate=False),
                         *graph_module.named_buffers(remove_duplicate=False)]:
        if id(tensor) in stand_ins:
            swapped[f"graph_module.{name}"] = stand_ins[id(tensor)]
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
