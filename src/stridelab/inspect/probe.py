"""Run a model for real, with autograd, and hand back the outputs of named report rows.

:func:`layer_outputs` re-runs the inspector's own capture front end (FX or the eager dispatch
fallback, whichever built the report) with a recorder that also keeps the output tensor of each
wanted row, so the names are exactly the report's names (``layer1.0.relu#2``, ``layer1.0.add``,
...). :func:`randomised` copies a model with fresh weights in which no gain is zero and batch
norms calibrated on noise, so autograd sees every branch the theory counts.

Both are used by :mod:`stridelab.inspect.verify` (gradient support vs the theoretical field)
and :mod:`stridelab.inspect.erf` (the effective receptive field, Luo et al. 2016).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch.utils._pytree import tree_leaves

from stridelab.inspect.capture import Group, Recorder
from stridelab.inspect.flops import FlopTally
from stridelab.inspect.layout import Layout
from stridelab.inspect.records import LayerRecord, Report
from stridelab.inspect.tracing import run_eager, run_fx, trace_fx

WEIGHTS = ("model", "random")


class _NoFlops:
    """Stands in for ``FlopCounterMode``: costs are not wanted here."""

    def get_total_flops(self) -> int:
        return 0


class _Enough(Exception):
    """Stops the forward pass once every wanted output is kept."""


class _KeepingRecorder(Recorder):  # type: ignore[no-untyped-call]
    """A :class:`Recorder` that keeps a clone of the first output of every wanted row."""

    def __init__(self, ndim: int, wanted: set[str]) -> None:
        super().__init__(ndim, {}, set(), _NoFlops())  # type: ignore[arg-type]
        self.wanted = wanted
        self.outputs: dict[str, torch.Tensor] = {}
        self.dispatching = False

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        self.dispatching = True
        try:
            return super().__torch_dispatch__(func, types, args, kwargs)
        finally:
            self.dispatching = False

    def end(self, group: Group, output: object, keep_idle: bool) -> None:
        super().end(group, output, keep_idle)
        if group.name not in self.wanted or not self.groups or self.groups[-1] is not group:
            return
        found = [t for t in tree_leaves(output) if isinstance(t, torch.Tensor) and t in self.infos]
        if found and self.dispatching:
            # A standalone operator of the eager capture ends inside the dispatch, below
            # autograd: its output gets its autograd history when the call returns, so keep the
            # tensor itself.
            self.outputs[group.name] = found[0]
        elif found:
            # A clone (outside the recorder) so a later in-place op cannot change what we keep.
            from torch.utils._python_dispatch import _disable_current_modes
            with _disable_current_modes():
                self.outputs[group.name] = found[0].clone()
        if len(self.outputs) == len(self.wanted):
            raise _Enough  # every wanted output is kept: the rest of the forward is not needed


class _LayoutRecorder(Recorder):  # type: ignore[no-untyped-call]
    """A :class:`Recorder` that notes the layout of every row's output (no tensor kept)."""

    def __init__(self, ndim: int) -> None:
        super().__init__(ndim, {}, set(), FlopTally())  # its meta-result memo: fast
        self.layouts: dict[str, Layout] = {}

    def end(self, group: Group, output: object, keep_idle: bool) -> None:
        super().end(group, output, keep_idle)
        if self.groups and self.groups[-1] is group and group.out_info is not None:
            self.layouts[group.name] = group.out_info.layout


def row_layouts(report: Report, model: torch.nn.Module) -> dict[str, Layout]:
    """The :class:`~stridelab.inspect.layout.Layout` of every row's output: which tensor
    dimension holds which spatial axis (``(N, C, H, W)``, channels-last ``(N, H, W, C)``, a
    token sequence, windows, ...).

    One more capture with the report's front end on ``meta`` stand-ins (no values, no memory;
    a report made on a real device re-runs there on zeros, as its control flow may read
    values). The model's tensors and train/eval flags are left as they were.
    """
    ndim = len(report.input_size) - 1
    device = torch.device("meta" if report.device == "meta" else report.device)
    made: dict[int, torch.Tensor] = {}
    tensors: dict[str, torch.Tensor] = {}
    for name, tensor in [*model.named_parameters(remove_duplicate=False),
                         *model.named_buffers(remove_duplicate=False)]:
        if id(tensor) not in made:
            made[id(tensor)] = torch.zeros_like(tensor.detach(), device=device)
        tensors[name] = made[id(tensor)]
    recorder = _LayoutRecorder(ndim)
    x = torch.zeros((1, *report.input_size), device=device)
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            if report.capture == "fx":
                run_fx(trace_fx(model), _fx_stand_ins(model, tensors), x, recorder)
            else:
                run_eager(model, tensors, x, recorder)
    finally:
        for module, training in modes.items():
            module.training = training
    return recorder.layouts


def map_dims(layout: Layout, ndim: int) -> tuple[int, ...] | None:
    """The tensor dimension that holds each spatial axis when ``layout`` is a plain map: every
    axis one whole dimension of its own, positions ``0, 1, 2, ...`` (step 1, origin 0), and the
    batch in dimension 0. ``(N, C, H, W)`` gives ``(2, 3)``, channels-last ``(N, H, W, C)``
    ``(1, 2)``; token sequences, windows and space-to-depth give None (no map to index)."""
    if len(layout.base) != ndim or any(layout.base) or not layout.dims:
        return None
    dims = []
    for axis in range(ndim):
        found = layout.factors(axis)
        if len(found) != 1:
            return None
        d, factor = found[0]
        dim = layout.dims[d]
        if d == 0 or factor.step != 1 or dim.before or dim.after or len(dim.factors) != 1:
            return None
        dims.append(d)
    if len(set(dims)) != ndim or layout.dims[0].spatial:
        return None
    return tuple(dims)


def as_map(output: torch.Tensor, dims: Sequence[int]) -> torch.Tensor:
    """``output`` as ``(N, C, *spatial)``: the spatial dimensions ``dims`` (see :func:`map_dims`)
    moved last, every other non-batch dimension folded into one channel axis."""
    ndim = len(dims)
    moved = output.movedim(tuple(dims), tuple(range(output.ndim - ndim, output.ndim)))
    return moved.reshape(moved.shape[0], -1, *moved.shape[output.ndim - ndim:])


def map_records(report: Report, layouts: dict[str, Layout]
                ) -> dict[str, tuple[LayerRecord, tuple[int, ...]]]:
    """Rows whose output is a plain map (see :func:`map_dims`), in execution order, with the
    dimension of each spatial axis."""
    ndim = len(report.input_size) - 1
    rows: dict[str, tuple[LayerRecord, tuple[int, ...]]] = {}
    for record in report.layers:
        layout = layouts.get(record.name)
        dims = None if layout is None or not record.spatial else map_dims(layout, ndim)
        if dims is not None and len(record.output_shape) == len(layout.dims):  # type: ignore[union-attr]
            rows[record.name] = (record, dims)
    return rows


def map_shape(record: LayerRecord, dims: Sequence[int]) -> tuple[int, ...]:
    """Spatial sizes of a row's output, in axis order."""
    return tuple(record.output_shape[d] for d in dims)


def check_unit(unit: object, shape: Sequence[int], layer: str, expected: str
               ) -> tuple[int, ...]:
    """``unit`` as a tuple of in-range ints, one per spatial axis of ``layer``'s ``shape``;
    ``expected`` starts the TypeError (e.g. "unit must be a tuple of 2 ints")."""
    index = (unit,) if isinstance(unit, int) and not isinstance(unit, bool) else unit
    if (not isinstance(index, (tuple, list)) or len(index) != len(shape)
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in index)):
        raise TypeError(f"{expected} (one per spatial axis), got {unit!r}")
    if not all(0 <= i < n for i, n in zip(index, shape)):
        raise ValueError(f"unit {tuple(index)} is outside layer {layer}'s "
                         f"{'x'.join(map(str, shape))} map")
    return tuple(index)


def spatial_records(report: Report) -> list[LayerRecord]:
    """Rows whose output still has the input's ``(N, C, *spatial)`` layout."""
    ndim = len(report.input_size) - 1
    return [r for r in report.layers if r.spatial and len(r.output_shape) == ndim + 2]


def last_spatial(report: Report) -> LayerRecord | None:
    """The last row with a real spatial map: a global pool kept as ``1x1`` (``AdaptiveAvgPool2d(1)``)
    is skipped unless nothing else has a map larger than one pixel."""
    records = spatial_records(report)
    sized = [r for r in records if any(n > 1 for n in r.output_shape[2:])]
    if sized:
        return sized[-1]
    return records[-1] if records else None


def check_weights(weights: object) -> str:
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {', '.join(map(repr, WEIGHTS))}, "
                         f"got {weights!r}")
    return str(weights)


def check_device(device: object) -> torch.device:
    try:
        dev: torch.device = torch.device(device)  # type: ignore[call-overload]
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:0', ...; got {device!r} "
                         f"({str(err).splitlines()[0]})") from None
    if dev.type == "meta":
        raise ValueError("device must hold real values ('cpu', 'cuda', ...): gradients cannot be "
                         "measured on 'meta'")
    return dev


def randomised(model: torch.nn.Module, seed: int, input_size: Sequence[int],
               device: torch.device) -> torch.nn.Module:
    """A copy of ``model`` with fresh random weights in which no gain is zero.

    Every module with ``reset_parameters`` is reset (PyTorch's default initialisation: norms
    get weight 1, which undoes zero-initialised residual norms); any parameter element still
    exactly zero (biases, layer-scales, custom zero-initialised gates) is drawn from N(0, 0.1^2).
    Batch-norm running statistics are then recomputed on one batch of N(0, 1) noise
    (cumulative average, ``momentum=None``), so eval-mode activations keep a sane scale in deep
    residual stacks. The original model is not touched.
    """
    clone = copy.deepcopy(model).to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in clone.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
        with torch.no_grad():
            for param in clone.parameters():
                if param.is_floating_point():
                    zero = param == 0
                    if bool(zero.any()):
                        param.copy_(torch.where(zero, 0.1 * torch.randn_like(param), param))
        _calibrate_batch_norms(clone, input_size, device)
    return clone


def _calibrate_batch_norms(model: torch.nn.Module, input_size: Sequence[int],
                           device: torch.device) -> None:
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
             and m.track_running_stats]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    modes = {m: m.training for m in model.modules()}
    try:
        model.train()
        with torch.no_grad():
            model(torch.randn(4, *input_size, device=device))
    except Exception:  # a model whose training forward differs: keep the reset statistics
        for norm in norms:
            norm.reset_running_stats()
    finally:
        for module, training in modes.items():
            module.training = training
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum


def layer_outputs(report: Report, model: torch.nn.Module, x: torch.Tensor,
                  names: Sequence[str]) -> dict[str, torch.Tensor]:
    """Outputs of the rows ``names`` when ``model`` runs on ``x`` (autograd enabled).

    The model runs in eval mode (batch elements stay independent) with its own parameters and
    buffers (buffers cloned, so running statistics never change); train/eval flags are
    restored. Raises ValueError when a name is not produced (a model other than the report's).
    """
    ndim = x.ndim - 2
    wanted = set(names)
    recorder = _KeepingRecorder(ndim, wanted)
    tensors: dict[str, torch.Tensor] = {name: param.detach() for name, param in
                                        model.named_parameters(remove_duplicate=False)}
    for name, buffer in model.named_buffers(remove_duplicate=False):
        tensors[name] = buffer.clone()
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        if report.capture == "fx":
            run_fx(trace_fx(model), _fx_stand_ins(model, tensors), x, recorder)
        else:
            run_eager(model, tensors, x, recorder)
    except _Enough:
        pass
    finally:
        for module, training in modes.items():
            module.training = training
    missing = [n for n in names if n not in recorder.outputs]
    if missing:
        raise ValueError(f"the model did not produce layer(s) {', '.join(missing)} of the "
                         f"report: pass the model the report was made from")
    for name in names:
        expected = tuple(report.layer(name).output_shape[2:])
        got = tuple(recorder.outputs[name].shape[2:])
        if expected != got:
            raise ValueError(f"layer {name} has spatial shape {got} on this model but "
                             f"{expected} in the report: pass the model the report was made from")
    return recorder.outputs


def _fx_stand_ins(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> Any:
    """What :func:`run_fx` takes: stand-ins by name, or (newer capture) by ``id`` of the
    model's own tensor."""
    import inspect as pyinspect
    first = list(pyinspect.signature(run_fx).parameters)[1]
    if first != "stand_ins":
        return tensors
    own: dict[str, torch.Tensor] = dict(model.named_parameters(remove_duplicate=False))
    own.update(model.named_buffers(remove_duplicate=False))
    return {id(own[name]): tensor for name, tensor in tensors.items()}


def unit_gradients(output: torch.Tensor, units: Sequence[tuple[int, ...]], x: torch.Tensor,
                   retain_graph: bool, channel_weights: torch.Tensor | None = None
                   ) -> torch.Tensor:
    """d(sum over channels of ``output[b, :, units[b]]``) / d``x`` for every batch element b.

    ``output`` is ``(N, C, *spatial)``. ``channel_weights`` (``C`` values) weight the channel
    sum: after a normalisation over channels with equal gains (LayerNorm2d) the plain sum is a
    constant whose gradient is zero (rounding noise), a weighted one is not.
    Batch elements are independent in eval mode, so one backward pass gives every unit's input
    gradient at once. Returns a tensor shaped like ``x``.
    """
    index: Any
    selected = []
    for b, unit in enumerate(units):
        index = (b, slice(None)) + tuple(unit)
        picked = output[index]
        if channel_weights is not None:
            picked = picked * channel_weights.to(picked.device, picked.dtype)
        selected.append(picked.sum())
    total: Any = torch.stack(selected).sum()
    (grad,) = torch.autograd.grad(total, x, retain_graph=retain_graph)
    return grad
