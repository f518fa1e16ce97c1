"""``stridelab.inspect(model, ...)``: capture a model once and build its :class:`Report`."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch.utils._pytree import tree_leaves

from stridelab.arith import ReceptiveField
from stridelab.inspect.capture import INPUT, Group, Recorder
from stridelab.inspect.diagnostics import diagnose
from stridelab.inspect.flops import FlopTally
from stridelab.inspect.positions import Info, unit_field
from stridelab.inspect.principal import principal_window
from stridelab.inspect.records import LayerRecord, Report
from stridelab.inspect.registry import resolve_model
from stridelab.inspect.tracing import run_eager, run_fx, trace_fx


def _check_input_size(input_size: object) -> tuple[int, ...]:
    if isinstance(input_size, int) or not isinstance(input_size, (tuple, list)):
        raise TypeError(f"input_size must be a tuple (channels, *spatial) such as (3, 224, 224), "
                        f"got {input_size!r}")
    if not 2 <= len(input_size) <= 4:
        raise ValueError(f"input_size must have 2 to 4 values (channels and 1-3 spatial sizes), "
                         f"got {tuple(input_size)!r}")
    for value in input_size:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"input_size values must be ints >= 1, got {tuple(input_size)!r}")
    return tuple(input_size)


def _check_device(device: object) -> torch.device:
    try:
        dev: torch.device = torch.device(device)  # type: ignore[call-overload]
        return dev
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be 'meta', 'cpu', 'cuda', 'cuda:0', ...; got {device!r}"
                         f" ({str(err).splitlines()[0]})") from None


def _swapped_tensors(model: torch.nn.Module, device: torch.device
                     ) -> tuple[dict[str, torch.Tensor], dict[int, torch.Tensor], dict[int, int],
                                set[int]]:
    """Stand-ins for every parameter and buffer on ``device`` (tied tensors stay tied): by
    name, by ``id`` of the original, the parameters' sizes and the buffers' ids.

    On ``meta`` they cost nothing; on a real device parameters are moved (no copy when already
    there) and buffers are cloned so batch-norm statistics of the user's model never change.
    """
    made: dict[int, torch.Tensor] = {}
    tensors: dict[str, torch.Tensor] = {}
    params: dict[int, int] = {}
    buffers: set[int] = set()
    for name, tensor in model.named_parameters(remove_duplicate=False):
        if id(tensor) not in made:
            made[id(tensor)] = (torch.empty_like(tensor, device="meta") if device.type == "meta"
                                else tensor.detach().to(device))
            params[id(made[id(tensor)])] = tensor.numel()
        tensors[name] = made[id(tensor)]
    for name, buffer in model.named_buffers(remove_duplicate=False):
        if id(buffer) not in made:
            made[id(buffer)] = (torch.empty_like(buffer, device="meta") if device.type == "meta"
                                else buffer.detach().to(device).clone())
            buffers.add(id(made[id(buffer)]))
        tensors[name] = made[id(buffer)]
    return tensors, made, params, buffers


def _records(groups: list[Group], params: dict[int, int]) -> list[LayerRecord]:
    seen: set[int] = set()
    records = []
    names = {INPUT: "input"}
    for group in groups:
        names[group.index] = group.name
    for group in groups:
        assert group.out_info is not None
        window = principal_window(group)
        own = [key for key in group.param_ids if key not in seen]
        seen.update(own)
        stride: tuple[Any, ...] | None = None
        if window is not None:
            stride = window.stride
            if window.kind in ("transposed", "resize"):
                from fractions import Fraction
                stride = tuple(Fraction(1, s) if s > 1 else 1 for s in window.stride)
        info = group.out_info
        field = unit_field(info.field, info.layout)
        records.append(LayerRecord(
            name=group.name, op=group.op,
            inputs=tuple(names.get(p, "?") for p in group.parents),
            input_shapes=tuple(group.input_shapes),
            output_shape=group.output_shapes[0] if group.output_shapes else (),
            kernel=window.kernel if window is not None and window.kind != "pad" else None,
            stride=stride if window is not None and window.kind != "pad" else None,
            padding=window.padding if window is not None else None,
            dilation=window.dilation if window is not None and window.kind != "pad" else None,
            effective_stride=field.stride, receptive_field=field,
            macs=group.flops // 2, params=sum(params[k] for k in own),
            activation_bytes=group.activation_bytes, spatial=info.spatial,
            global_context=info.context,
            window=window.kind if window is not None else None,
        ))
    return records


def _model_name(model: torch.nn.Module) -> str:
    return type(model).__name__


def inspect(model: torch.nn.Module | str, input_size: Sequence[int] | None = None,
            batch_size: int = 1, device: str | torch.device = "meta", *,
            min_field_fraction: float = 0.5, dtype: torch.dtype = torch.float32) -> Report:
    """Per-layer stride, receptive field, cost and diagnostics of ``model``.

    ``input_size`` is ``(channels, *spatial)`` without the batch axis. The default device
    ``"meta"`` computes shapes only (any input size costs no memory and no time); pass
    ``"cpu"`` / ``"cuda"`` for a real run (needed for models whose control flow reads values).
    Capture uses ``torch.fx.symbolic_trace`` and falls back to an eager dispatch-level trace.
    ``min_field_fraction``: warn when the head's receptive field covers less than this
    fraction of the input on some axis. The forward runs in eval mode on stand-in tensors;
    the model's parameters, buffers and train/eval flags are left as they were.
    ``model`` may be a spec string (``"timm:convnext_tiny"``, ``"torchvision:resnet50"``, a
    built-in name; see :func:`stridelab.inspect.registry.load_model`); ``input_size=None`` then
    means the model's default size, and (3, 224, 224) for a module object.
    """
    model, input_size = resolve_model(model, input_size)
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    size = _check_input_size(input_size)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if not 0 <= min_field_fraction <= 1:
        raise ValueError(f"min_field_fraction must be in [0, 1], got {min_field_fraction!r}")
    dev = _check_device(device)
    with _older_objects_frozen():
        return _inspect(model, size, batch_size, dev, min_field_fraction, dtype)


# allocations between two collections of the youngest generation during a capture
CAPTURE_GC_THRESHOLD = 20_000


class _CollectorTuning:
    """Captures running at once in this process (threads): the first to start tunes the
    collector and saves what it found, the last to finish restores it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.saved: tuple[tuple[int, ...], bool] | None = None  # thresholds, froze ourselves

    def enter(self) -> None:
        with self.lock:
            if self.running == 0:
                self.saved = None
                if gc.isenabled():
                    thresholds = gc.get_threshold()
                    freeze = not gc.get_freeze_count()
                    if freeze:
                        gc.freeze()
                    gc.set_threshold(max(thresholds[0], CAPTURE_GC_THRESHOLD), *thresholds[1:])
                    self.saved = (thresholds, freeze)
            self.running += 1

    def leave(self) -> None:
        with self.lock:
            self.running -= 1
            if self.running == 0 and self.saved is not None:
                thresholds, freeze = self.saved
                gc.set_threshold(*thresholds)
                if freeze:
                    gc.unfreeze()


_COLLECTOR = _CollectorTuning()


@contextmanager
def _older_objects_frozen() -> Iterator[None]:
    """Hide the objects that exist before the capture from the cyclic garbage collector
    (``gc.freeze``) and give them back after (``gc.unfreeze``), errors included; meanwhile the
    youngest generation is collected every :data:`CAPTURE_GC_THRESHOLD` allocations instead of
    Python's default 700. Both are restored afterwards.

    A capture allocates tens of thousands of objects, enough to trigger a full collection,
    which walks every object of the process: with torch, timm and the model loaded, 0.3-0.7 s
    (measured with ``gc.callbacks``: Swin-v2 giant 0.52 s of a 3.5 s inspection, 0.09 s with
    the older objects frozen). Most of what it allocates dies young and is freed by reference
    counting, yet at the default threshold the collector still walks the young objects about
    250 times while inspecting MViT-v2-H (0.16-0.21 s); at 20,000 it runs 7 times (0.09 s). The
    capture's own cyclic garbage is still collected, at most that many allocations later. Left
    alone when the collector is off; a caller who has frozen objects keeps them frozen
    (unfreezing would undo that). Captures that overlap in several threads tune the collector
    once: the first to start saves its settings, the last to finish restores them.
    """
    _COLLECTOR.enter()
    try:
        yield
    finally:
        _COLLECTOR.leave()


def _inspect(model: torch.nn.Module, size: tuple[int, ...], batch_size: int, dev: torch.device,
             min_field_fraction: float, dtype: torch.dtype) -> Report:
    ndim = len(size) - 1
    tensors, stand_ins, params, buffers = _swapped_tensors(model, dev)
    x = torch.zeros((batch_size, *size), device=dev, dtype=dtype)
    recorder, output = None, None
    modes = {module: module.training for module in model.modules()}
    # eval before tracing: training-only branches (Inception's auxiliary heads) must not be
    # traced, and batch-norm on batch 1 with 1x1 maps needs eval; restored below
    model.eval()
    try:
        try:
            graph_module: torch.fx.GraphModule | None = trace_fx(model)
        except Exception:
            graph_module = None
        recorder, output, capture = _run(model, graph_module, tensors, stand_ins, x, params,
                                         buffers, ndim)
    finally:
        for module, training in modes.items():
            module.training = training
    assert recorder is not None
    out_field, out_context = _output_field(recorder, output, ndim)
    records = _records(recorder.groups, params)
    total_params = sum(p.numel() for p in model.parameters())
    report = Report(_model_name(model), size, batch_size, str(dev), records, out_field,
                    total_params, [], capture, out_context)
    report.diagnostics = diagnose(report, recorder.groups, min_field_fraction,
                                  unused_params=total_params - sum(r.params for r in records))
    return report


def _run(model: torch.nn.Module, graph_module: torch.fx.GraphModule | None,
         tensors: dict[str, torch.Tensor], stand_ins: dict[int, torch.Tensor], x: torch.Tensor,
         params: dict[int, int],
         buffers: set[int], ndim: int) -> tuple[Recorder, Any, str]:
    """Run FX capture if tracing worked, else (or if it fails to run) the eager fallback."""
    recorder, output, capture = None, None, "dispatch"
    for attempt in ("fx", "dispatch"):
        if attempt == "fx" and graph_module is None:
            continue
        with torch.no_grad():
            recorder = Recorder(ndim, params, buffers, FlopTally())
            try:
                if attempt == "fx":
                    assert graph_module is not None
                    output = run_fx(graph_module, stand_ins, x, recorder)
                else:
                    output = run_eager(model, tensors, x, recorder)
                capture = attempt
                break
            except Exception as err:
                if attempt == "fx":
                    continue  # FX traced but could not run: try the eager fallback
                raise _failure(model, x, recorder, err) from None
    assert recorder is not None
    return recorder, output, capture


def _output_field(recorder: Recorder, output: object, ndim: int) -> tuple[ReceptiveField, bool]:
    for leaf in tree_leaves(output):
        if isinstance(leaf, torch.Tensor) and leaf in recorder.infos:
            info: Info = recorder.infos[leaf]
            return unit_field(info.field, info.layout), info.context
    last = recorder.groups[-1].out_info if recorder.groups else None
    if last is not None:
        return unit_field(last.field, last.layout), last.context
    return ReceptiveField.identity(ndim), False


def _failure(model: torch.nn.Module, x: torch.Tensor, recorder: Recorder | None,
             err: Exception) -> ValueError:
    where = ""
    if recorder is not None and recorder.groups:
        last = recorder.current or recorder.groups[-1]
        where = f" at {last.name} ({last.op})"
    text = str(err).strip().splitlines()
    message = next((line for line in text if line.strip()), type(err).__name__)
    hint = ""
    if x.device.type == "meta" and ("meta" in message.lower() or "item" in message.lower()):
        hint = " (the model reads tensor values: pass device='cpu')"
    shape = "x".join(map(str, x.shape))
    return ValueError(f"cannot trace {type(model).__name__} on input {shape}{where}: "
                      f"{message}{hint}")
