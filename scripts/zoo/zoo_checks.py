"""What the zoo asserts for one model (runs inside a worker process).

1. ``stridelab.inspect`` runs on meta tensors at the model's default input size;
2. its MACs equal ``FlopCounterMode`` FLOPs / 2 of the same eval forward on meta tensors;
3. its per-layer parameters sum to the parameters the forward really touches (the oracle: a
   dispatch mode that sees which parameter tensors reach any operator) and, when the forward
   touches every parameter, to the unique parameter count;
4. no diagnostic contradicts an oracle: an ``unused-parameters`` note while the forward uses
   every parameter, a ``small-field`` warning on a model whose forward runs attention
   (softmax / scaled-dot-product over tokens);
5. for the fixed sample (:data:`zoo_catalog.FIELD_SAMPLE`), on CPU with re-randomised weights, the
   nonzero-gradient box of centre and corner units of sampled layers lies inside the reported
   field and meets its edges where the image does not clip (``report.verify``); a unit the
   inspector marks as global context must have a gradient over the whole input (or over its
   reported field, when the model never reads the last rows).

Each check adds ``(kind, detail)`` failures; nothing raises out of :func:`check`.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode
from zoo_catalog import build

_ATTENTION_OPS = ("_softmax", "_scaled_dot_product", "scaled_dot_product")


class _ParameterUse(TorchDispatchMode):
    """Records which parameter tensors reach an operator and whether attention ops ran."""

    def __init__(self, parameters: dict[int, int]) -> None:
        super().__init__()
        self.parameters = parameters
        self.used: set[int] = set()
        self.attention = False

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        for leaf in tree_leaves((args, kwargs or {})):
            if id(leaf) in self.parameters:
                self.used.add(id(leaf))
        if any(key in func.__name__ for key in _ATTENTION_OPS):
            self.attention = True
        return func(*args, **(kwargs or {}))


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    line = next((t.strip() for t in text if t.strip()), "")
    return f"{type(err).__name__}: {line}"[:400]


def _build_any(spec: str) -> tuple[torch.nn.Module, tuple[int, ...], str]:
    """Build on meta (no memory, no init time); a constructor that reads values gets the CPU."""
    try:
        model, size = build(spec, "meta")
        return model, size, "meta"
    except Exception:
        model, size = build(spec, "cpu")
        return model, size, "cpu"


def _oracle(model: torch.nn.Module, size: tuple[int, ...]) -> tuple[int, int, bool]:
    """FLOPs of the eval forward on meta, parameters (elements) it touches, attention ran."""
    model.to("meta")
    model.eval()
    for param in model.parameters():  # a module returning a parameter itself trips the tracker
        param.requires_grad_(False)
    parameters = {id(p): p.numel() for p in model.parameters()}
    x = torch.zeros((1, *size), device="meta")
    with torch.no_grad(), FlopCounterMode(display=False) as counter, \
            _ParameterUse(parameters) as use:
        model(x)
    used = sum(parameters[key] for key in use.used)
    return int(counter.get_total_flops()), used, use.attention


def check(spec: str, field_check: bool) -> dict[str, Any]:
    """Run every check on ``spec``; returns the result line (JSON-ready). ``times`` are wall
    seconds per step, plus ``cpu``: CPU seconds of the whole check (one torch thread), which do
    not depend on how busy the machine is."""
    cpu = time.process_time()
    result = _check(spec, field_check)
    result["times"]["cpu"] = time.process_time() - cpu
    return result


def _check(spec: str, field_check: bool) -> dict[str, Any]:
    import stridelab.inspect

    result: dict[str, Any] = {"spec": spec, "failures": [], "times": {}}
    failures: list[list[str]] = result["failures"]
    times: dict[str, float] = result["times"]
    start = time.perf_counter()
    try:
        model, size, built_on = _build_any(spec)
    except Exception as err:
        failures.append(["build", _first_line(err)])
        return result
    times["build"] = time.perf_counter() - start
    result.update(input_size=list(size), built_on=built_on)
    start, cpu = time.perf_counter(), time.process_time()
    try:
        report = stridelab.inspect.inspect(model, size, device="meta")
    except Exception as err:
        times["inspect"] = time.perf_counter() - start
        failures.append(["exception", _first_line(err)])
        return result
    times["inspect"] = time.perf_counter() - start
    times["inspect_cpu"] = time.process_time() - cpu
    unique = sum(p.numel() for p in model.parameters())
    attributed = sum(layer.params for layer in report.layers)
    result.update(
        macs=report.macs, params=unique, attributed=attributed, capture=report.capture,
        layers=len(report.layers),
        global_context=any(bool(getattr(r, "global_context", False)) for r in report.layers),
        diagnostics=[[d.severity, d.code, d.layer, d.message[:300]] for d in report.diagnostics],
        field=str(report.field))
    start = time.perf_counter()
    try:
        flops, used, attention = _oracle(model, size)
    except Exception as err:
        failures.append(["oracle", _first_line(err)])
        return result
    times["oracle"] = time.perf_counter() - start
    result.update(oracle_macs=flops // 2, used_params=used, attention=attention)
    _compare(result, report, flops, used, unique, attention)
    if field_check:
        start = time.perf_counter()
        _check_fields(spec, result)
        times["field"] = time.perf_counter() - start
    return result


def _compare(result: dict[str, Any], report: Any, flops: int, used: int, unique: int,
             attention: bool) -> None:
    failures = result["failures"]
    if report.macs != flops // 2:
        failures.append(["macs", f"inspector {report.macs:,} vs FlopCounterMode/2 "
                                 f"{flops // 2:,} (diff {report.macs - flops // 2:+,})"])
    attributed = result["attributed"]
    if attributed != used:
        unused = "" if used == unique else f"; {unique - used:,} unused by the forward"
        failures.append(["params", f"per-layer sum {attributed:,} vs {used:,} used by the "
                                   f"forward (unique {unique:,}; gap {attributed - used:+,}"
                                   f"{unused})"])
    codes = {d.code for d in report.diagnostics}
    if "unused-parameters" in codes and used == unique:
        failures.append(["diagnostic", "unused-parameters note but the forward uses every "
                                       "parameter"])
    if "small-field" in codes and attention:
        failures.append(["diagnostic", "small-field warning on a model whose forward runs "
                                       "attention"])


def _check_fields(spec: str, result: dict[str, Any]) -> None:
    """Autograd: ``report.verify`` on a CPU build with re-randomised weights."""
    import stridelab.inspect
    from stridelab.inspect.verify import verify  # what report.verify calls

    failures = result["failures"]
    try:
        torch.manual_seed(0)
        model, size = build(spec, "cpu")
        report = stridelab.inspect.inspect(model, size, device="meta")
        verification = verify(report, model, weights="random", device="cpu")
    except Exception as err:
        failures.append(["field", f"verify raised {_first_line(err)}"])
        return
    checks = verification.checks
    result["field_units"] = len(checks)
    result["field_layers"] = len({c.layer for c in checks})
    whole = tuple((0, n - 1) for n in size[1:])
    for item in checks:
        if item.status == "ok" or (item.status == "global"
                                   and item.measured in (whole, item.expected)):
            continue  # a global unit (a global pool) reads all the input that any unit reads
        detail = (f"{item.layer} unit {list(item.unit)}: field {list(map(list, item.expected))} "
                  f"vs gradient box "
                  f"{None if item.measured is None else list(map(list, item.measured))} "
                  f"({item.status})")
        failures.append(["field", detail])
    if not checks:
        failures.append(["field", "no spatial layer to check"])
