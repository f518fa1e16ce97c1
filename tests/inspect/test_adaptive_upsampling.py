"""Adaptive pooling onto a larger grid (e.g. a 7x7 classifier pool after a 3x3 map): the reported
field must contain every input position that reaches a unit (autograd oracle)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import stridelab


@pytest.mark.parametrize("size_in,size_out", [(3, 7), (3, 6), (5, 7)])
def test_field_contains_gradient_support(size_in: int, size_out: int) -> None:
    model = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1, bias=False), nn.AdaptiveAvgPool2d(size_out))
    nn.init.constant_(model[0].weight, 1.0)
    field = stridelab.inspect(model, input_size=(1, size_in, size_in)).field
    for u in range(size_out):
        x = torch.rand(1, 1, size_in, size_in, dtype=torch.float32, requires_grad=True)
        model(x)[0, 0, u, u].backward()
        assert x.grad is not None
        rows = torch.nonzero(x.grad[0, 0].abs().sum(dim=1)).flatten().tolist()
        start, end = field.start((u, u)), field.end((u, u))
        assert all(start[0] <= r <= end[0] for r in rows), (u, rows, start, end)
