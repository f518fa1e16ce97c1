"""Capture a model's operators, graph edges, fields and costs in one forward pass.

Two front ends (:mod:`stridelab.inspect.tracing`: FX first, an eager run with module hooks as
the fallback) share one dispatch-level recorder (:class:`Recorder`, a ``TorchDispatchMode``).
Under both, every ATen operator is seen by :class:`Recorder`, which follows each tensor's
receptive field (:mod:`stridelab.inspect.geometry`) and origin (the group that produced it) by
tensor identity, attributes FLOPs (``torch.utils.flop_counter``'s formulas, :mod:`.flops`) to the
running group, and notes which parameters each group reads (so shared ones count once).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from stridelab.arith import ReceptiveField
from stridelab.inspect import layout as lay
from stridelab.inspect.flops import FlopTally
from stridelab.inspect.geometry import Effect
from stridelab.inspect.positions import Info
from stridelab.inspect.recurrent import recurrent_macs, recurrent_outputs
from stridelab.inspect.rules import Call, Outcome, Result, outcome_of
from stridelab.inspect.rules.pointwise import frozen
from stridelab.inspect.tensortable import TensorTable

INPUT = -1
TensorInfo = Info

# operators that only re-view a tensor: a parameter seen through them is still that parameter
VIEWS = frozenset({"view", "_unsafe_view", "reshape", "expand", "permute", "transpose", "t",
                   "unsqueeze", "squeeze", "select", "slice", "alias", "detach", "_to_copy",
                   "as_strided", "unbind", "split", "split_with_sizes", "contiguous", "clone",
                   "flatten", "unflatten", "lift_fresh", "_reshape_alias", "expand_as",
                   "view_as", "unfold", "chunk", "movedim"})
# operators whose results after the first are saved statistics for backward, which the
# functional API (F.batch_norm, F.layer_norm, F.group_norm) never hands on
NORM_STATISTICS = frozenset({"native_batch_norm", "_native_batch_norm_legit",
                             "_native_batch_norm_legit_no_training", "native_layer_norm",
                             "native_group_norm"})
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
        self.infos: TensorTable[Info] = TensorTable()
        self.aliases: TensorTable[int] = TensorTable()  # view of a parameter -> its id
        self.groups: list[Group] = []
        self.current: Group | None = None
        self.scope: list[str] = []
        self.names: dict[str, int] = {}
        self.muted = 0
        # eager fallback: (label, op, arguments) of the torch function call now running outside
        # any leaf module; its operators form one group, opened by the first one that counts
        self.function: tuple[str, str, object] | None = None

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        """Not wrapped in ``torch._disable_dynamo`` (PyTorch's default for a dispatch mode):
        nothing is compiled inside a capture, and the wrapper costs a call per operator."""
        return False

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
        for leaf in _tensors(inputs):
            if leaf in self.infos:
                group.input_ids.add(id(leaf))
                group.input_shapes.append(tuple(leaf.shape))
                self._parent(group, self.infos[leaf].origin)
        self.groups.append(group)
        self.current = group
        return group

    def open_function(self) -> Group | None:
        """The group of the running torch function call (:attr:`function`), opened now."""
        if self.current is None and self.function is not None:
            label, op, arguments = self.function
            return self.begin(self.unique(label), op, arguments)
        return self.current

    def recurrent_on_meta(self, group: Group, module: torch.nn.RNNBase,
                          source: torch.Tensor) -> Any:
        """Stand-in outputs of a recurrent module on meta ``source``, with its cost and its
        parameters claimed by ``group`` as running it would (:mod:`stridelab.inspect.recurrent`)."""
        group.flops += 2 * recurrent_macs(module, source)
        weights = [getattr(module, name) for name in module._flat_weights_names]
        for key in self._claims(type(module).__name__, weights, None):
            if key not in group.param_ids:
                group.param_ids.append(key)
        return recurrent_outputs(module, source)

    def store_recurrent(self, group: Group, module: torch.nn.RNNBase, source: torch.Tensor,
                        output: object) -> None:
        """Outputs of a recurrent module that ran muted, by the ``recurrent`` rule."""
        info: Info | None = self.infos.get(source)
        outputs = [t for t in tree_leaves(output) if isinstance(t, torch.Tensor)]
        if info is None or not outputs:
            return
        call = Call("recurrent", (source, module.batch_first), {}, {id(source): info}, outputs,
                    self.ndim)
        group.ran = True
        self._parent(group, info.origin)
        self._store(group, "recurrent", (source,), outputs, _outcome(group, call, "recurrent"))

    def _parent(self, group: Group, origin: int) -> None:
        if origin != group.index and origin not in group.parents:
            group.parents.append(origin)

    def end(self, group: Group, output: object, keep_idle: bool) -> None:
        """Close ``group``; it stays a row if it ran an operator on the data (or is a module),
        or if it cost MACs or used parameters on their own (position embeddings, ...)."""
        self.current = None
        tensors = _flat_tensors(output)
        if tensors is None:  # any other pytree a module may return (a dataclass, ...)
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
        if isinstance(self.counter, FlopTally):  # one mode, not two stacked
            out = self.counter.count_call(func, args, kwargs)
        else:
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
            key = id(t) if id(t) in self.params else self.aliases.get(t)
            if key is not None and key not in keys:
                keys.append(key)
        if keys and name in VIEWS and len(keys) == 1 and not any(t in self.infos
                                                                  for t in leaves):
            for t in _tensors(out):
                self.aliases[t] = keys[0]
            return []
        return keys

    def _observe(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any,
                 flops: int) -> None:
        leaves = _tensors(args) + _tensors(kwargs) if kwargs else _tensors(args)
        lookup = self.infos.get
        pairs = [(t, info) for t in leaves if (info := lookup(t)) is not None]
        carried = [t for t, _ in pairs]
        name = func.overloadpacket.__name__
        claims = self._claims(name, leaves, out)
        group = self.current
        standalone = group is None
        if standalone and not carried and not flops and not claims:
            return
        if group is None and self.function is not None:  # eager, inside a torch function
            group = self.open_function()
            standalone = False  # closed when the function returns
        if group is None:  # outside any leaf module and torch function: one row per operator
            scope = self.scope[-1] if self.scope else ""
            label = f"{scope}.{name}" if scope else name
            group = self.begin(self.unique(label), name, carried)
        group.flops += flops
        for key in claims:
            if key not in group.param_ids:
                group.param_ids.append(key)
        if carried and not self.muted:
            group.ran = True
            self._follow(group, name, args, kwargs, out, pairs)
        if standalone:
            self.end(group, out, keep_idle=False)

    def _follow(self, group: Group, name: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                out: Any, carried: list[tuple[torch.Tensor, Info]]) -> None:
        """``carried``: the captured tensors among the arguments with their infos, in order."""
        base = name[:-1] if name.endswith("_") and not name.startswith("_") else name
        outputs = _tensors(out)
        infos: dict[int, Info] = {}
        tracked: list[tuple[torch.Tensor, Info]] = []  # what Call.tracked() would find
        for t, info in carried:
            if id(t) not in infos:
                infos[id(t)] = info
                tracked.append((t, info))
                self._parent(group, info.origin)
        if base in CONSTANT_LIKE:
            return
        if base in ("copy", "set", "fill", "zero") or not outputs:
            first = carried[0][0]
            sources = [(t, i) for t, i in carried[1:] if t is not first] if base == "copy" else []
            if sources and outputs:
                info = sources[0][1]
                self.infos[outputs[0]] = Info(info.field, info.layout, info.context,
                                              group.index)
            return
        call = Call(base, args, kwargs, infos, outputs, self.ndim)
        call._tracked = tracked  # the same tensors in the same order: no second walk
        self._store(group, base, args, outputs, _outcome(group, call, name))

    def _store(self, group: Group, name: str, args: tuple[Any, ...],
               outputs: list[torch.Tensor], outcome: Outcome) -> None:
        results = outcome.results
        given_up: dict[int, ReceptiveField] = {}  # frozen field per result whose shape differs
        for index, t in enumerate(outputs):
            if index and (not t.numel() or name in NORM_STATISTICS):
                continue  # a norm's saved statistics (empty on CPU in eval): no data onward
            which = min(index, len(results) - 1)
            result = results[which]
            if result.layout.shape != tuple(t.shape):
                if which not in given_up:
                    given_up[which] = frozen(Info(result.field, result.layout, result.context, 0))
                result = Result(given_up[which], lay.plain(tuple(t.shape), self.ndim),
                                result.context)
            self.infos[t] = Info(result.field, result.layout, result.context, group.index)
        fixed = False
        if name in ("convolution", "_convolution") and len(args) > 1:
            weight = args[1]
            fixed = isinstance(weight, torch.Tensor) and id(weight) not in self.params
        first = results[0]
        group.effects.append((name, Effect(first.field, first.layout.spatial, outcome.window,
                                           outcome.misaligned, outcome.broadcast,
                                           outcome.unknown, first.context), fixed))


_TENSOR_TYPES = (torch.Tensor, torch.nn.Parameter)
# argument types that never hold a tensor (shapes, dims, dtypes: most of an ATen call's leaves)
_ATOMS = frozenset({int, float, bool, str, type(None), torch.dtype, torch.device,
                    torch.memory_format, torch.layout})


def _tensors(value: object) -> list[torch.Tensor]:
    """The tensors in an ATen operator's arguments or results (nested tuples, lists, dicts);
    ``tree_leaves`` does the same for any container, several times slower."""
    if isinstance(value, torch.Tensor):
        return [value]
    found: list[torch.Tensor] = []
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind in _ATOMS:
            continue
        if kind is list or kind is tuple:
            stack.extend(reversed(item))  # type: ignore[call-overload]
        elif isinstance(item, torch.Tensor):
            found.append(item)
        elif isinstance(item, (list, tuple)):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
    return found


def _flat_tensors(output: object) -> list[torch.Tensor] | None:
    """``output`` as a list if it is a tensor or a plain tuple / list of tensors (what ATen
    operators and most modules return), else None (left to pytree)."""
    if isinstance(output, torch.Tensor) and type(output) in _TENSOR_TYPES:
        return [output]
    if type(output) in (tuple, list):
        items: tuple[object, ...] | list[object] = output  # type: ignore[assignment]
        if all(type(t) in _TENSOR_TYPES for t in items):
            return [t for t in items if isinstance(t, torch.Tensor)]
    return None


def _outcome(group: Group, call: Call, label: str) -> Outcome:
    """The rule's outcome; a rule that fails gives up positions and the row notes the error."""
    try:
        return outcome_of(call)
    except (ValueError, TypeError, IndexError, KeyError, AttributeError) as err:
        group.errors.append(f"{label}: {err}")
        return _given_up(call)


def _given_up(call: Call) -> Outcome:
    from stridelab.inspect.rules.pointwise import unknown
    return unknown(call, call.tracked())
