"""The eager fallback makes the rows FX makes: one per torch function call outside leaf modules.

Oracle: the FX capture of the same model (the eager fallback is forced by making tracing fail),
and ``torch.utils.flop_counter`` for the cost.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import stridelab.inspect.api as api
from stridelab.inspect import Report, inspect
from tests.inspect.test_costs_api import flop_counter_macs


class Functional(nn.Module):
    """Functional calls outside modules, several of them many ATen operators each."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.mix = nn.Parameter(torch.randn(8, 8))
        self.head = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        n, c, h, w = y.shape
        tokens = y.reshape(n, c, h * w)
        tokens = torch.einsum("nct,cd->ndt", tokens, self.mix)  # permutes, reshapes, bmm
        tokens = tokens * 2 + 1
        y = tokens.view(n, c, h, w)
        y = F.pad(y, (1, 1, 1, 1), mode="circular")
        y = F.max_pool2d(y, 3, stride=2)
        return self.head(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))


def _eager(model: nn.Module, size: tuple[int, ...], monkeypatch: pytest.MonkeyPatch,
           device: str = "meta") -> Report:
    def untraceable(model: nn.Module) -> torch.fx.GraphModule:
        raise RuntimeError("forced eager fallback")

    with monkeypatch.context() as patch:
        patch.setattr(api, "trace_fx", untraceable)
        report = inspect(model, size, device=device)
    assert report.capture == "dispatch"
    return report


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_eager_rows_are_fx_rows(device: str, monkeypatch: pytest.MonkeyPatch) -> None:
    model = Functional().eval()
    size = (3, 20, 20)
    fx = inspect(model, size, device=device)
    assert fx.capture == "fx"
    eager = _eager(model, size, monkeypatch, device=device)

    # FX also names its nodes of shape arithmetic (``h * w``), which leave no row: its first
    # visible ``mul`` row is ``mul_1``; apart from that the rows must be the same
    def rows(report: Report, renamed: dict[str, str]) -> list[tuple[object, ...]]:
        return [(renamed.get(r.name, r.name), r.op, tuple(renamed.get(i, i) for i in r.inputs),
                 r.output_shape, r.macs, r.params, r.receptive_field, r.effective_stride,
                 r.spatial, r.global_context, r.window) for r in report.layers]

    assert rows(eager, {}) == rows(fx, {"mul_1": "mul"})
    assert [r.name for r in eager.layers] == [
        "conv", "reshape", "einsum", "mul", "add", "view", "pad", "max_pool2d",
        "adaptive_avg_pool2d", "flatten", "head"]
    assert eager.macs == fx.macs == flop_counter_macs(model, size)
    assert eager.params == sum(p.numel() for p in model.parameters())
    # the circular pad is one padding window: the field grows by the pool's 3 and the pad
    assert eager.layer("max_pool2d").receptive_field == fx.layer("max_pool2d").receptive_field


def test_shape_queries_leave_no_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    class Queries(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x)
            if y.shape[-1] > 1 and y.dim() == 4 and y.size(1) == 4:  # FX cannot branch on it
                y = y.relu()
            return y

    report = _eager(Queries(), (3, 9, 9), monkeypatch)
    assert [r.name for r in report.layers] == ["conv", "relu"]
