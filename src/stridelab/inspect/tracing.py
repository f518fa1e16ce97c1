"""The two front ends that drive :class:`~stridelab.inspect.capture.Recorder` through a forward.

* :func:`trace_fx` + :func:`run_fx`: ``torch.fx`` symbolic tracing (leaf modules as
  :func:`is_leaf_module` says), then the graph is run node by node; each node becomes one group
  (named after its module, or ``scope.function`` for functional calls, so shared modules,
  ``F.*`` calls, ``+`` and ``torch.cat`` all appear);
* :func:`run_eager`: the fallback for models FX cannot trace (data-dependent Python control flow,
  ...): the model runs eagerly with forward hooks; each call of a leaf module is a group, and so
  is each torch function or tensor method called outside them (:class:`FunctionCalls`), as
  under FX.

Recurrent modules (``nn.RNN`` / ``LSTM`` / ``GRU``) are one operator under both: their
hundreds of per-step operators are counted (FLOPs, parameters) but not followed one by one, and
the recorder stores the module's outputs by the ``recurrent`` rule. Under FX on meta tensors they
do not run at all: :mod:`stridelab.inspect.recurrent` gives their outputs' shapes and cost.
"""

from __future__ import annotations

import dis
import functools
import sys
import types
from collections.abc import Iterator
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from stridelab.inspect.capture import Group, Recorder
from stridelab.inspect.rules import Call, outcome_of

try:  # compiles the graph's Python code only when asked (the capture never calls forward)
    from torch.fx._lazy_graph_module import _LazyGraphModule as _GraphModule
except ImportError:  # pragma: no cover - older or newer torch without it
    _GraphModule = torch.fx.GraphModule  # type: ignore[misc, assignment]

_CONTAINERS = (torch.nn.Sequential, torch.nn.ModuleList, torch.nn.ModuleDict)


# tensor attributes and methods that only describe a tensor: never a row, no field to follow
_QUERIES = frozenset({
    *(getattr(torch.Tensor, name).__get__
      for name in ("shape", "dtype", "device", "ndim", "is_cuda", "is_meta", "layout",
                   "requires_grad", "is_sparse", "is_quantized")),
    torch.Tensor.size, torch.Tensor.dim, torch.Tensor.numel, torch.Tensor.element_size,
    torch.Tensor.stride, torch.Tensor.storage_offset, torch.Tensor.is_contiguous,
    torch.Tensor.is_floating_point, torch.Tensor.is_complex, torch.Tensor.get_device,
    torch.Tensor.nelement, torch.Tensor.ndimension,
})


class FunctionCalls(TorchFunctionMode):
    """What the recorder needs to see at the level of torch functions.

    * ``F.pad(mode="circular")`` decomposes into copies into a fresh tensor, which loses the
      field at the dispatch level; the whole call is handled as one padding window.
    * With ``rows=True`` (the eager fallback): a torch function or tensor method called outside
      any leaf module (``torch.einsum``, ``x.reshape``, ``x + y``) is one group, as FX makes it
      one node, instead of one group per ATen operator it runs (an einsum runs ~14). A call
      that runs nothing on the data nor costs anything (``x.shape``) leaves no group.
    Nested calls inside a handled one do not reach the mode (PyTorch disables a function mode
    while its handler runs), so a group is always the outermost call.
    """

    def __init__(self, recorder: Recorder, *, rows: bool) -> None:
        super().__init__()
        self.recorder = recorder
        self.rows = rows

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        if func in _QUERIES:
            return func(*args, **kwargs) if kwargs else func(*args)
        kwargs = kwargs or {}
        rec = self.recorder
        if not self.rows or rec.current is not None or rec.function is not None:
            return self._call(func, args, kwargs)
        op = getattr(func, "__name__", None) or str(func)
        op = op.strip("_") or op
        scope = rec.scope[-1] if rec.scope else ""
        rec.function = (f"{scope}.{op}" if scope else op, op, (args, kwargs))
        try:
            out = self._call(func, args, kwargs)
        finally:
            rec.function = None
            group, rec.current = rec.current, None
        if group is not None:
            rec.end(group, out, keep_idle=False)
        return out

    def _call(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if func is not torch.nn.functional.pad or not args:
            return func(*args, **kwargs)
        if kwargs.get("mode", args[2] if len(args) > 2 else "constant") != "circular":
            return func(*args, **kwargs)
        rec = self.recorder
        source = args[0]
        rec.muted += 1
        try:
            out = func(*args, **kwargs)
        finally:
            rec.muted -= 1
        group = rec.open_function()
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


# argument types FX stores in a graph as they are (its ``base_types`` without tensors)
_PLAIN_ARGUMENTS = frozenset({int, float, bool, complex, str, type(None), type(...), torch.dtype,
                              torch.device, torch.memory_format, torch.layout})


class _Tracer(torch.fx.Tracer):
    """FX's tracer with our leaf modules, and parameters and buffers looked up by identity: FX
    searches every parameter (buffer) of the model on each use of one, which is quadratic
    (seconds on NFNets, whose weight-standardised convolutions read ``self.weight`` in their
    forward, and on MaxViT's relative-position buffers)."""

    _names: dict[int, tuple[str, bool]] | None = None

    def is_leaf_module(self, m: torch.nn.Module, module_qualified_name: str) -> bool:
        return is_leaf_module(m)

    def _tensor_name(self, value: torch.Tensor) -> str | None:
        """FX's name for a parameter or buffer of the root (its first name), else None."""
        if self._names is None:
            self._names = {}
            for name, param in self.root.named_parameters():
                self._names.setdefault(id(param), (name, True))
            for name, buffer in self.root.named_buffers():
                self._names.setdefault(id(buffer), (name, False))
        found = self._names.get(id(value))
        if found is None:
            return None
        name, is_param = found
        # still the tensor registered under that name (the forward may re-assign it); read the
        # registries directly: attribute access is patched by FX while tracing
        *path, leaf = name.split(".")
        module: torch.nn.Module | None = self.root
        for part in path:
            module = module._modules.get(part) if module is not None else None
        if module is None:
            return None
        current = (module._parameters if is_param else module._buffers).get(leaf)
        return name if current is value else None

    def create_arg(self, a: Any) -> Any:
        """A parameter or buffer passed to a function becomes a ``get_attr`` node; a tensor
        that is neither but a plain module attribute (FX's ``tensor_attrs``) is looked up
        without FX's scan of every buffer. Plain values, our proxies, tuples and lists take the
        path FX's base tracer takes for them without the checks that come first (185 -> 160 ms
        of tracing a Swin-T)."""
        kind = type(a)
        if kind in _PLAIN_ARGUMENTS:
            return a
        if kind is _Proxy or kind is _Attribute:
            return a.node
        if kind is tuple:
            return tuple(self.create_arg(item) for item in a)
        if kind is list:
            return [self.create_arg(item) for item in a]
        if isinstance(a, torch.Tensor):
            name = self._tensor_name(a)
            if name is not None:
                return self.create_node("get_attr", name, (), {})
            assert self._names is not None
            attribute = self.tensor_attrs.get(a) if id(a) not in self._names else None
            if attribute:
                return self.create_node("get_attr", attribute, (), {})
        return super().create_arg(a)

    def proxy(self, node: torch.fx.Node) -> torch.fx.Proxy:
        return _Proxy(node, self)

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict[str, Any]) -> Any:
        """A parameter read as a module attribute becomes one cached ``get_attr`` proxy."""
        if isinstance(attr_val, torch.nn.Parameter) and not self.param_shapes_constant \
                and not self.proxy_buffer_attributes:
            name = self._tensor_name(attr_val)
            if name is None:
                return super().getattr(attr, attr_val, parameter_proxy_cache)
            if name not in parameter_proxy_cache:
                parameter_proxy_cache[name] = self.create_proxy("get_attr", name, (), {})
            return parameter_proxy_cache[name]
        return super().getattr(attr, attr_val, parameter_proxy_cache)


class _Unpacking:
    """``a, b = proxy`` (and ``n, c, h, w = x.shape``) reading the caller's bytecode once per code
    object: FX disassembles the whole calling function on every unpacking (a Swin-v2 unpacks
    shapes 250 times, 40,000 instructions decoded)."""

    tracer: torch.fx.proxy.TracerBase

    def __iter__(self) -> Iterator[torch.fx.Proxy]:
        caller = sys._getframe(1)
        count = _unpackings(caller.f_code).get(caller.f_lasti)
        if count is not None:
            return (self[i] for i in range(count))  # type: ignore[index]
        return self.tracer.iter(self)  # type: ignore[arg-type]

    def __getattr__(self, k: str) -> torch.fx.proxy.Attribute:
        return _Attribute(self, k)  # type: ignore[arg-type]


class _Proxy(_Unpacking, torch.fx.Proxy):
    """FX's proxy with :class:`_Unpacking`."""


class _Attribute(_Unpacking, torch.fx.proxy.Attribute):
    """FX's attribute proxy (``x.shape``) with :class:`_Unpacking`."""


@functools.lru_cache(maxsize=4096)
def _unpackings(code: types.CodeType) -> dict[int, int]:
    """Bytecode offset -> item count of every ``UNPACK_SEQUENCE`` in ``code`` (the test FX's
    ``Proxy.__iter__`` makes at the caller's last instruction)."""
    return {inst.offset: int(inst.argval) for inst in dis.get_instructions(code)
            if inst.opname == "UNPACK_SEQUENCE"}


class _Interpreter(torch.fx.Interpreter):
    def __init__(self, module: torch.fx.GraphModule, recorder: Recorder) -> None:
        super().__init__(module)
        self.recorder = recorder
        self.calls: dict[str, int] = {}
        for node in module.graph.nodes:  # a function row never takes a module row's name
            if node.op == "call_module":
                recorder.names.setdefault(str(node.target), 1)

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
        source = None
        if n.op == "call_module":
            target = str(n.target)
            count = self.calls.get(target, 0) + 1
            self.calls[target] = count
            name = target if count == 1 else f"{target}#{count}"
            module = self.fetch_attr(target)
            op = type(module).__name__
            source = recurrent_input(module, args, rec)
        else:
            op = n.target if isinstance(n.target, str) else getattr(n.target, "__name__", str(n))
            op = op.strip("_") or op
            stack = n.meta.get("nn_module_stack") or {}
            scope = next(reversed(stack.values()))[0] if stack else ""
            name = rec.unique(f"{scope}.{op}" if scope else op)
        group = rec.begin(name, op, (args, kwargs))
        if source is not None and source.device.type == "meta":
            result = rec.recurrent_on_meta(group, module, source)  # shapes and cost, no steps
            rec.current = None
        else:
            rec.muted += source is not None
            try:
                result = super().run_node(n)
            finally:
                rec.current = None
                rec.muted -= source is not None
        if source is not None:
            rec.store_recurrent(group, module, source, result)
        rec.end(group, result, keep_idle=n.op == "call_module")
        return result


def recurrent_input(module: torch.nn.Module, args: tuple[Any, ...],
                    recorder: Recorder) -> torch.Tensor | None:
    """The captured input of a recurrent module, which then runs as one operator (a packed
    sequence or an untracked input is followed operator by operator as usual)."""
    if isinstance(module, torch.nn.RNNBase) and args and isinstance(args[0], torch.Tensor) \
            and args[0] in recorder.infos:
        return args[0]
    return None


class _Runner(torch.nn.Module):
    """Holds the traced graph so ``torch.func.functional_call`` can swap its tensors."""

    def __init__(self, module: torch.fx.GraphModule, recorder: Recorder) -> None:
        super().__init__()
        self.graph_module = module
        self.recorder = recorder

    def forward(self, x: torch.Tensor) -> Any:
        return _Interpreter(self.graph_module, self.recorder).run(x)


def trace_fx(model: torch.nn.Module) -> torch.fx.GraphModule:
    """FX symbolic tracing with :func:`is_leaf_module` (raises whatever FX raises). The graph
    module's Python code is generated lazily, on first use: the capture runs the graph node by
    node and never needs it (6 ms of a ResNet-50 inspection)."""
    graph = _Tracer().trace(model)
    return _GraphModule(model, graph, type(model).__name__)


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
    with recorder, FunctionCalls(recorder, rows=False):
        return torch.func.functional_call(runner, swapped, (x,), strict=False)


def run_eager(model: torch.nn.Module, tensors: dict[str, torch.Tensor], x: torch.Tensor,
              recorder: Recorder) -> Any:
    """Fallback capture with forward hooks on every module (removed afterwards)."""
    names: dict[int, str] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        names.setdefault(id(module), name)
    calls: dict[str, int] = {}
    open_leaf: list[tuple[Group, torch.Tensor | None] | None] = []
    handles = []

    # the hooks' own reads of shapes and sizes must not reach FunctionCalls: it would see
    # each as a torch function call of the model (and each costs a trip through Python)
    no_function_mode = torch._C.DisableTorchFunction

    def pre_hook(module: torch.nn.Module, args: Any) -> None:
        with no_function_mode():
            opened_leaf(module, args)

    def post_hook(module: torch.nn.Module, args: Any, output: Any) -> None:
        with no_function_mode():
            closed_leaf(module, output)

    def opened_leaf(module: torch.nn.Module, args: Any) -> None:
        name = names.get(id(module), type(module).__name__)
        recorder.scope.append(name)
        if recorder.current is None and is_leaf_module(module) and name:
            count = calls.get(name, 0) + 1
            calls[name] = count
            label = name if count == 1 else f"{name}#{count}"
            group = recorder.begin(label, type(module).__name__, args)
            source = recurrent_input(module, args, recorder)
            recorder.muted += source is not None
            open_leaf.append((group, source))
        else:
            open_leaf.append(None)

    def closed_leaf(module: torch.nn.Module, output: Any) -> None:
        recorder.scope.pop()
        opened = open_leaf.pop()
        if opened is not None:
            group, source = opened
            if source is not None:
                recorder.muted -= 1
                assert isinstance(module, torch.nn.RNNBase)
                recorder.store_recurrent(group, module, source, output)
            recorder.end(group, output, keep_idle=True)

    for module in model.modules():
        handles.append(module.register_forward_pre_hook(pre_hook))
        handles.append(module.register_forward_hook(post_hook))
    recorder.register_input(x)
    try:
        with recorder, FunctionCalls(recorder, rows=True):
            return torch.func.functional_call(model, tensors, (x,), strict=False)
    finally:
        for handle in handles:
            handle.remove()
