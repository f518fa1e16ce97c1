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
                   retain_graph: bool) -> torch.Tensor:
    """d(sum over channels of ``output[b, :, units[b]]``) / d``x`` for every batch element b.

    Batch elements are independent in eval mode, so one backward pass gives every unit's input
    gradient at once. Returns a tensor shaped like ``x``.
    """
    index: Any
    selected = []
    for b, unit in enumerate(units):
        index = (b, slice(None)) + tuple(unit)
        selected.append(output[index].sum())
    total: Any = torch.stack(selected).sum()
    (grad,) = torch.autograd.grad(total, x, retain_graph=retain_graph)
    return grad
