"""Measurements of one trained model (everything here is per model; aggregation is in results.py).

Units: MACs are multiply-accumulates of one image (FLOPs = 2 x MACs), bytes are bytes, latency is
milliseconds, throughput is images per second. Static numbers (parameters, MACs, activation memory,
receptive field, effective stride) come from :mod:`stridelab.inspect`; nothing is re-derived here.
"""

from __future__ import annotations

import copy
import statistics
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from stridelab.study.config import TrainSettings
from stridelab.study.data import Splits
from stridelab.study.train import Objective, as_objective, make_optimizer, predict


def static_costs(model: nn.Module, input_size: tuple[int, int, int]) -> dict[str, Any]:
    """Parameters, MACs and activation bytes per image, and the receptive field and effective
    stride (per spatial axis) of the *last feature map* (the output of the last stage, before the
    global pool), all from ``stridelab.inspect`` at batch size 1; plus its diagnostic codes."""
    from stridelab.inspect import inspect

    report = inspect(model, input_size=input_size, batch_size=1, device="meta")
    field = report.field
    stage_names = getattr(model, "stage_names", None)
    if stage_names:
        prefix = f"{stage_names[-1]}."
        in_last_stage = [r for r in report.layers if r.name.startswith(prefix)]
        if in_last_stage:
            field = report.field_at(in_last_stage[-1].name)
    return {
        "params": int(report.params),
        "macs": int(report.macs),
        "activation_bytes": int(report.activation_bytes),
        "receptive_field": [_number(v) for v in field.size],
        "effective_stride": [_number(v) for v in field.stride],
        "diagnostics": sorted({d.code for d in report.diagnostics}),
    }


def field_warning(static: dict[str, Any], input_size: tuple[int, int, int],
                  final_size: tuple[int, int, int]) -> str | None:
    """Cross-check inspect's effective stride with the feature maps themselves: an input of
    ``H x W`` that ends as ``h x w`` was downsampled by ``H / h`` and ``W / w`` (when exact)."""
    ratios = [size / out for size, out in zip(input_size[1:], final_size[1:], strict=True)]
    reported = [float(v) for v in static["effective_stride"]]
    exact = all(r.is_integer() for r in ratios)
    if exact and reported != ratios:
        return (f"stridelab.inspect reports effective stride {static['effective_stride']} but the "
                f"feature maps shrink by {[int(r) for r in ratios]}; its receptive field and "
                "stride for this variant are suspect")
    return None


def _number(value: Any) -> float | int:
    as_float = float(value)
    return int(as_float) if as_float.is_integer() else as_float


def _timed_runs(model: nn.Module, batch: torch.Tensor, repeats: int, warmup: int) -> list[float]:
    device = batch.device
    times: list[float] = []
    with torch.inference_mode():
        for index in range(warmup + repeats):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            started = time.perf_counter()
            model(batch)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if index >= warmup:
                times.append(time.perf_counter() - started)
    return times


def latency_ms(model: nn.Module, input_size: tuple[int, int, int], device: torch.device, *,
               repeats: int = 20, warmup: int = 3) -> float:
    """Median wall time (ms) of one forward pass at batch size 1, after ``warmup`` passes."""
    model.eval()
    batch = torch.randn(1, *input_size, device=device)
    return 1000.0 * statistics.median(_timed_runs(model, batch, repeats, warmup))


def throughput(model: nn.Module, input_size: tuple[int, int, int], device: torch.device, *,
               batch_size: int = 64, repeats: int = 5, warmup: int = 1) -> float:
    """Images per second at ``batch_size`` (median over ``repeats`` warm forward passes)."""
    model.eval()
    batch = torch.randn(batch_size, *input_size, device=device)
    return batch_size / statistics.median(_timed_runs(model, batch, repeats, warmup))


def shift(images: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Translate image i by ``offsets[i] = (dy, dx)`` pixels (positive: down / right), filling
    the uncovered border with zeros (black), keeping the size."""
    n, _, height, width = images.shape
    pad = int(offsets.abs().max()) if offsets.numel() else 0
    padded = F.pad(images, (pad, pad, pad, pad))
    out = torch.empty_like(images)
    for i in range(n):
        dy, dx = int(offsets[i, 0]), int(offsets[i, 1])
        out[i] = padded[i, :, pad - dy:pad - dy + height, pad - dx:pad - dx + width]
    return out


def shift_consistency(model: nn.Module, splits: Splits, device: torch.device, *, max_shift: int,
                      seed: int) -> float:
    """Zhang (ICML 2019) consistency: the fraction of test images whose predicted class is the
    same under two independent random shifts, offsets uniform in [-max_shift, max_shift] per axis.
    The offsets depend only on ``seed`` (identical for every variant)."""
    images = splits.test_x
    generator = torch.Generator().manual_seed(7_919 + seed)
    first = torch.randint(-max_shift, max_shift + 1, (len(images), 2), generator=generator)
    second = torch.randint(-max_shift, max_shift + 1, (len(images), 2), generator=generator)
    a = predict(model, shift(images, first), splits, device)
    b = predict(model, shift(images, second), splits, device)
    return float((a == b).double().mean())


def training_memory(model: nn.Module, data: Splits | Objective, settings: TrainSettings,
                    device: torch.device) -> dict[str, Any]:
    """Peak memory of one training step at the study's batch size, on a copy of ``model``, with
    the task's own loss (``data``: :class:`Splits` for classification, or an ``Objective``).

    CUDA: ``torch.cuda.max_memory_allocated`` around forward + backward + optimizer step.
    CPU (no allocator statistics): parameters + gradients + optimizer state + every tensor autograd
    saves for the backward pass (counted once per storage with saved-tensor hooks) + the input
    batch; this is what the step must hold at its peak, excluding allocator overhead.
    """
    objective = as_objective(data)
    clone = copy.deepcopy(model).to(device).train()
    optimizer = make_optimizer(clone, settings)
    count = min(settings.batch_size, int(objective.train_x.shape[0]))
    images = objective.normalize(objective.train_x[:count]).to(device)
    targets = objective.train_targets(torch.arange(count))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        loss = objective.loss(clone(images), targets)[0]
        torch.autograd.backward(loss)
        optimizer.step()
        torch.cuda.synchronize(device)
        return {"peak_train_bytes": int(torch.cuda.max_memory_allocated(device)),
                "memory_method": "torch.cuda.max_memory_allocated"}
    storages: dict[int, int] = {}
    counted_elsewhere = {p.untyped_storage().data_ptr() for p in clone.parameters()}
    counted_elsewhere.add(images.untyped_storage().data_ptr())

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in counted_elsewhere:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = objective.loss(clone(images), targets)[0]
    torch.autograd.backward(loss)
    optimizer.step()
    param_bytes = sum(p.numel() * p.element_size() for p in clone.parameters())
    state_bytes = sum(v.numel() * v.element_size() for state in optimizer.state.values()
                      for v in state.values() if isinstance(v, torch.Tensor) and v.dim() > 0)
    total = 2 * param_bytes + state_bytes + sum(storages.values())
    total += images.numel() * images.element_size()
    return {"peak_train_bytes": int(total),
            "memory_method": "CPU estimate: params + grads + optimizer state + saved activations"}
