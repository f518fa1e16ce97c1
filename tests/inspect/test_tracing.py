"""The FX front end's tracer: parameters looked up by identity, plain tensor attributes and proxy
unpacking read once per code object give exactly FX's own graph."""

from __future__ import annotations

import torch
from torch import nn

from stridelab.inspect.tracing import _Tracer, is_leaf_module


class StandardisedConv(nn.Module):
    """NFNet-style: the weight is read as an attribute in forward and standardised there."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(4, 3, 3, 3))
        self.gain = nn.Parameter(torch.ones(4, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = (self.weight - self.weight.mean((1, 2, 3), keepdim=True)) * self.gain
        return nn.functional.conv2d(x, w, padding=1)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = StandardisedConv()
        self.b = StandardisedConv()
        self.b.gain = self.a.gain  # shared: one name, the first
        self.scale = nn.Parameter(torch.ones(1))
        self.head = nn.Conv2d(4, 2, 1)
        self.register_buffer("bias", torch.randn(1, 4, 1, 1))  # MaxViT-style buffer in forward
        self.b.register_buffer("same_bias", self.bias)  # one buffer under two names
        self.table = torch.randn(1, 4, 1, 1)  # a plain tensor attribute (FX's tensor_attrs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.add(self.a(x) * self.scale, self.bias)
        z = torch.add(self.b(y[:, :3]), self.b.same_bias) * self.table
        first, second = z.chunk(2, dim=1)  # unpacking a proxy: FX reads the caller's bytecode
        z = torch.cat([second, first], dim=1)
        n, c, h, w = z.shape  # unpacking an attribute proxy
        z = z.reshape(n, c, h * w).reshape(n, c, h, w)
        return self.head(z + torch.mul(y, self.scale))


class _FXTracer(torch.fx.Tracer):
    """FX's own tracer with the same leaf rule: the oracle."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return is_leaf_module(m)


def test_identity_lookup_gives_fx_s_graph() -> None:
    model = Net()
    ours, theirs = _Tracer().trace(model), _FXTracer().trace(model)
    assert str(ours) == str(theirs)
    assert [n.target for n in ours.nodes if n.op == "get_attr"] == \
        [n.target for n in theirs.nodes if n.op == "get_attr"]
    x = torch.randn(1, 3, 8, 8)
    out = torch.fx.GraphModule(model, ours)(x)
    torch.testing.assert_close(out, model(x))
