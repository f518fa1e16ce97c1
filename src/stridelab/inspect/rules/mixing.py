"""Rules for operators that read many positions at once: matrix products, reductions,
attention, and normalisations.

* ``mm`` / ``bmm`` (``matmul``, ``linear``, ``einsum`` decompose into them): the contracted
  dimension is read whole (:func:`~stridelab.inspect.positions.contract`). When both operands
  keep positions on the same axis (attention scores ``q @ k^T``), the second operand's positions
  are read whole too: every score row already depends on every key.
* reductions (``mean``, ``sum``, ``amax``, ...): the reduced dimensions are read whole.
* ``scaled_dot_product_attention``: queries keep their positions, keys and values are read whole.
* normalisations (softmax, layer / group / instance norm with batch statistics) keep each
  element's position and add statistics over the normalised dimensions, like a gate: the axes
  they cover entirely make the output global context; a partial block (channels folded from a
  window) adds nothing until a later channel mix reads the block.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from stridelab.arith import ReceptiveField
from stridelab.inspect import layout as lay
from stridelab.inspect.geometry import Window
from stridelab.inspect.layout import Dim, Layout
from stridelab.inspect.positions import Info, combine, contract
from stridelab.inspect.rules.table import Call, Outcome, Result, dim_arg, dims_arg, rule, same


def _global_window(info: Info, axes: set[int]) -> Window | None:
    """The window a report shows for a reduction over whole axes."""
    if not axes:
        return None
    sizes = tuple(info.layout.extent(a) for a in sorted(axes))
    ones = (1,) * len(sizes)
    return Window("global", sizes, sizes, ((0, 0),) * len(sizes), ones, sizes, ones)


def _product(call: Call, a: object, b: object, batched: bool) -> Outcome:
    """``a @ b`` for 2-D (``mm``) or 3-D (``bmm``) operands."""
    ia, ib = call.info(a), call.info(b)
    assert isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
    la = ia.layout if ia is not None else lay.plain(tuple(a.shape), call.ndim)
    lb = ib.layout if ib is not None else lay.plain(tuple(b.shape), call.ndim)
    row, col = (1, 2) if batched else (0, 1)
    out_b = lb.dims[col]
    contract_b = [row]
    keep_a = la.dims[row].axes() | (la.dims[0].axes() if batched else set())
    if out_b.axes() & keep_a:
        contract_b.append(col)  # attention scores: each row reads every key
        out_b = lay.plain_dim(out_b.size)
    dims: list[Dim] = []
    if batched:
        batch = la.dims[0] if la.dims[0].spatial or not lb.dims[0].spatial else lb.dims[0]
        dims.append(batch)
    dims += [la.dims[row], out_b]
    base = la.base if la.spatial or not lb.spatial else lb.base
    out = Layout(tuple(dims), base)
    parts: list[tuple[ReceptiveField, set[int]]] = []
    context = False
    rebased: set[int] = set()
    kept_b = [d for d in ([0, col] if batched else [col]) if d not in contract_b]
    for info, contracted, kept_dims in ((ia, [col], [0, row] if batched else [row]),
                                        (ib, contract_b, kept_b)):
        if info is None:
            continue
        done = contract(info, contracted, out)
        context |= done.context
        rebased |= done.rebased
        held = {f.axis for d in kept_dims for f in info.layout.dims[d].factors
                if f.axis is not None}
        read = {f.axis for d in contracted for f in info.layout.dims[d].factors
                if f.axis is not None and f.count > 1} - done.whole
        parts.append((done.field, held | read))
    held_any = set().union(*(keep for _, keep in parts))
    parts = [(f, keep | (set(range(call.ndim)) - held_any)) for f, keep in parts]
    out = replace(out, base=tuple(0 if a in rebased else v for a, v in enumerate(out.base)))
    field, misaligned = combine(parts, call.ndim, out)
    return Outcome([Result(field, out, context)], misaligned=misaligned)


@rule("mm")
def mm(call: Call) -> Outcome | None:
    return _product(call, call.args[0], call.args[1], batched=False)


@rule("addmm")
def addmm(call: Call) -> Outcome | None:
    return _product(call, call.args[1], call.args[2], batched=False)


@rule("bmm")
def bmm(call: Call) -> Outcome | None:
    return _product(call, call.args[0], call.args[1], batched=True)


@rule("baddbmm")
def baddbmm(call: Call) -> Outcome | None:
    return _product(call, call.args[1], call.args[2], batched=True)


REDUCTIONS = ("mean", "sum", "amax", "amin", "max", "min", "var", "std", "var_mean",
              "std_mean", "logsumexp", "norm", "linalg_vector_norm", "prod", "argmax", "argmin",
              "any", "all", "nansum", "nanmean", "median", "mode", "count_nonzero", "aminmax")


@rule(*REDUCTIONS)
def reduction(call: Call) -> Outcome | None:
    tensor, info = call.first
    rank = tensor.ndim
    dim_value = call.arg(2 if call.name in ("norm", "linalg_vector_norm") else 1, "dim")
    if isinstance(dim_value, torch.Tensor):
        return None  # max / min of two tensors: element-wise
    if isinstance(dim_value, bool) or not isinstance(dim_value, (int, list, tuple)):
        dim_value = None
    dims = dims_arg(dim_value, rank) if rank else []
    keep = len(call.out_shape) == rank and rank > 0
    new_dims: list[Dim] = []
    for k, dim in enumerate(info.layout.dims):
        if k not in dims:
            new_dims.append(dim)
        elif keep:
            singles = tuple(lay.Factor(f.axis, 1, f.step) for f in dim.factors
                            if f.axis is not None and f.count > 1)
            new_dims.append(Dim(singles[:1]))
    out = Layout(tuple(new_dims), info.layout.base)
    if out.shape != call.out_shape:
        out = lay.plain(call.out_shape, call.ndim)
    done = contract(info, dims, out)
    whole_reduced = {a for a in done.whole if not out.factors(a) or all(
        f.count == 1 for _, f in out.factors(a))}
    result = Result(done.field, done.layout(out), done.context)
    return Outcome([result], window=_global_window(info, whole_reduced))


def _normalised(call: Call, info: Info, dims: list[int]) -> Outcome:
    """Each element keeps its position; statistics over ``dims`` add global context on the
    axes they cover entirely."""
    done = contract(info, dims, info.layout)
    return Outcome([same(info, context=done.context or info.context)])


@rule("_softmax", "_log_softmax", "softmax", "log_softmax", "_safe_softmax")
def softmax(call: Call) -> Outcome | None:
    tensor, info = call.first
    return _normalised(call, info, [dim_arg(call.arg(1, "dim"), tensor.ndim)])


@rule("native_layer_norm", "layer_norm")
def layer_norm(call: Call) -> Outcome | None:
    tensor, info = call.first
    count = len(call.arg(1, "normalized_shape"))
    return _normalised(call, info, list(range(tensor.ndim - count, tensor.ndim)))


@rule("native_group_norm", "group_norm")
def group_norm(call: Call) -> Outcome | None:
    tensor, info = call.first
    return _normalised(call, info, list(range(1, tensor.ndim)))


@rule("native_batch_norm", "_native_batch_norm_legit", "batch_norm", "_batch_norm_impl_index",
      "instance_norm", "cudnn_batch_norm", "_native_batch_norm_legit_functional")
def batch_norm(call: Call) -> Outcome | None:
    tensor, info = call.first
    training = call.arg(5, "training", False)
    if call.name == "instance_norm":
        training = True
    if not training:
        return Outcome([same(info)])
    return _normalised(call, info, [k for k in range(tensor.ndim) if k != 1])


@rule("_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_flash_attention",
      "_scaled_dot_product_efficient_attention", "_scaled_dot_product_attention_math",
      "scaled_dot_product_attention", "_scaled_dot_product_cudnn_attention",
      "_scaled_dot_product_fused_attention_overrideable", "_scaled_dot_product_attention_math_for_mps",
      "_native_multi_head_attention")
def attention(call: Call) -> Outcome | None:
    """Queries keep their positions; keys and values (``dim -2``) are read whole."""
    q, k, v = call.args[0], call.args[1], call.args[2]
    iq = call.info(q)
    base_layout = iq.layout if iq is not None else lay.plain(tuple(q.shape), call.ndim)
    out = replace(base_layout, dims=base_layout.dims[:-1] + (lay.plain_dim(call.out_shape[-1]),))
    parts: list[tuple[ReceptiveField, set[int]]] = []
    context = False
    rebased: set[int] = set()
    if iq is not None:
        parts.append((iq.field, {f.axis for d in iq.layout.dims for f in d.factors
                                 if f.axis is not None}))
        context |= iq.context
    for value in (k, v):
        info = call.info(value)
        if info is None:
            continue
        rank = len(info.layout.dims)
        done = contract(info, [rank - 2], out)
        context |= done.context
        rebased |= done.rebased
        read = {f.axis for f in info.layout.dims[rank - 2].factors
                if f.axis is not None and f.count > 1} - done.whole
        parts.append((done.field, read))
    if not parts:
        return None
    held_any = set().union(*(keep for _, keep in parts))
    parts = [(f, keep | (set(range(call.ndim)) - held_any)) for f, keep in parts]
    out = replace(out, base=tuple(0 if a in rebased else b for a, b in enumerate(out.base)))
    field, misaligned = combine(parts, call.ndim, out)
    result = Result(field, out, context)
    return Outcome([result], misaligned=misaligned)


@rule("recurrent")
def recurrent(call: Call) -> Outcome | None:
    """An ``nn.RNN`` / ``LSTM`` / ``GRU`` module as one operator: ``args = (input, batch_first)``.

    Every output step reads every step of its sequence (a bidirectional RNN; for a one-way RNN
    this is a superset: step ``t`` reads steps ``0..t``) and all input features. Sequence
    positions are kept (like queries in attention), so a sequence that spans a whole axis (a
    Sequencer row or column) makes the output global context on that axis; the final states
    ``h_n`` / ``c_n`` (``(layers * directions, batch, hidden)``) have no sequence positions left.
    """
    tensor, info = call.first
    rank = tensor.ndim
    if rank not in (2, 3) or len(info.layout.dims) != rank:
        return None
    batch_first = bool(call.arg(1, "batch_first", False))
    sequence = 1 if rank == 3 and batch_first else 0
    features = rank - 1
    out = Layout(info.layout.dims[:-1] + (lay.plain_dim(call.out_shape[-1]),), info.layout.base)
    if out.shape != call.out_shape:
        return None
    done = contract(info, [sequence, features], out)
    results = [Result(done.field, done.layout(out), done.context)]
    if len(call.outputs) > 1:
        state_shape = tuple(call.outputs[1].shape)
        kept = [lay.plain_dim(state_shape[0])]
        if rank == 3:
            kept.append(info.layout.dims[0 if batch_first else 1])
        state = Layout(tuple(kept) + (lay.plain_dim(state_shape[-1]),), info.layout.base)
        if state.shape == state_shape:
            final = contract(info, [sequence, features], state)
            results.append(Result(final.field, final.layout(state), final.context))
    return Outcome(results)
