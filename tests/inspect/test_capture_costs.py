"""Costs exactly once (torch.utils.flop_counter on the same eval forward is the oracle), FX
first with the graph module's own paths, and the kernel-smaller-than-stride diagnostic."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from stridelab.arith import uncovered_pixels
from stridelab.inspect import inspect


def eval_flops(model: nn.Module, size: tuple[int, ...]) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval()(torch.zeros(1, *size))
    return counter.get_total_flops()


class AuxHead(nn.Module):
    """GoogLeNet-style: an auxiliary classifier that runs only in training."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Conv2d(3, 8, 3, padding=1)
        self.aux = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        if self.training:
            return y + self.aux(y)
        return y


class RelativeBias(nn.Module):
    """Swin-v2-style: an MLP on a coordinate buffer (no input data) gives a bias added to the
    map; a layer-scale gain reached only through a view."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.register_buffer("coords", torch.randn(64, 2))
        self.mlp = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 4))
        self.gain = nn.Parameter(torch.ones(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.mlp(self.coords).t().reshape(1, 4, 8, 8)
        return self.conv(x) * self.gain.view(1, -1, 1, 1) + bias


class SharedUnused(nn.Module):
    """One conv registered under two names (called through both) and a module never called."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Conv2d(3, 3, 3, padding=1)
        self.again = self.first
        self.spare = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.again(self.first(x))


def test_training_only_branches_are_not_traced() -> None:
    model = AuxHead().train()
    report = inspect(model, (3, 8, 8))
    assert model.training and model.aux.training  # restored afterwards
    assert report.macs * 2 == eval_flops(model, (3, 8, 8))
    assert [r.name for r in report.layers] == ["body"]
    unused = [d for d in report.diagnostics if d.code == "unused-parameters"]
    assert len(unused) == 1 and str(8 * 8 * 9 + 8) in unused[0].message


def test_parameter_only_operators_cost_and_views_attribute_parameters() -> None:
    model = RelativeBias()
    report = inspect(model, (3, 8, 8))
    assert report.macs * 2 == eval_flops(model, (3, 8, 8))
    assert sum(r.params for r in report.layers) == sum(p.numel() for p in model.parameters())
    assert "unused-parameters" not in {d.code for d in report.diagnostics}
    assert report.layer("mul").params == 4  # the gain, seen through view
    assert report.field.size == (3, 3)  # the bias adds cost, not field


def test_fx_follows_the_graph_modules_paths() -> None:
    model = SharedUnused()
    report = inspect(model, (3, 8, 8))
    assert report.capture == "fx"
    assert [r.name for r in report.layers] == ["first", "first#2"]
    assert report.field.size == (5, 5)
    assert report.params == 84 + 20
    assert [d.code for d in report.diagnostics if d.code == "unused-parameters"] == [
        "unused-parameters"]


def test_kernel_smaller_than_stride_names_the_unread_fraction() -> None:
    report = inspect(nn.Sequential(nn.Conv2d(3, 4, 1, 2)), (3, 56, 56))
    found = [d for d in report.diagnostics if d.code == "dropped-pixels"]
    unread = len(uncovered_pixels(56, 1, 2))
    assert unread == 28 and len(found) == 1
    assert f"{unread} of 56 rows (50%)" in found[0].message
    assert "pad" not in found[0].fix.replace("padding does not help", "")
    assert "space-to-depth" in found[0].fix and "kernel at least as large" in found[0].fix
