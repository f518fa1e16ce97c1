"""The shortcut results of :mod:`stridelab.inspect.metashapes` against PyTorch's own meta kernels:
same structure, shapes, strides, dtypes (and ``self`` for in-place operators), on every layout
and dtype the rules accept, and a refusal (None) on the others."""

from __future__ import annotations

from typing import Any

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from stridelab.inspect.metashapes import RULES, meta_result
from tests._budget import budget

aten = torch.ops.aten
DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
LAYOUTS = ("contiguous", "channels_last", "permuted", "sliced")
UNARY = ("gelu", "relu", "sigmoid", "silu", "hardswish", "hardsigmoid", "tanh", "mish", "elu",
         "leaky_relu", "hardtanh", "erf", "exp", "neg", "abs", "sqrt", "rsqrt")
# operators whose output is contiguous whatever the input's layout: their rules take any layout
ALWAYS_CONTIGUOUS = frozenset({aten.addmm.default, aten.native_layer_norm.default,
                               aten._softmax.default, aten._log_softmax.default,
                               aten._safe_softmax.default, aten.roll.default})
INPLACE = ("relu", "sigmoid", "silu", "hardswish", "hardsigmoid", "tanh", "mish")


def _meta(shape: tuple[int, ...], dtype: torch.dtype, layout: str) -> torch.Tensor:
    if layout == "channels_last" and len(shape) == 4:
        return torch.empty(shape, dtype=dtype, device="meta").contiguous(
            memory_format=torch.channels_last)
    if layout == "permuted" and len(shape) >= 2:
        flipped = torch.empty(tuple(reversed(shape)), dtype=dtype, device="meta")
        return flipped.permute(*reversed(range(len(shape))))
    if layout == "sliced":
        wide = torch.empty((*shape[:-1], 2 * shape[-1]), dtype=dtype, device="meta")
        return wide[..., ::2]
    return torch.empty(shape, dtype=dtype, device="meta")


Call = tuple[Any, tuple[Any, ...], dict[str, Any]]


def _calls(x: torch.Tensor, shape: tuple[int, ...], number: float) -> list[Call]:
    """One valid call of every covered operator on ``x`` (whose shape is ``shape``)."""
    dtype = x.dtype
    channels = shape[1] if len(shape) > 1 else shape[0]
    stats = torch.empty(channels, device="meta")
    twin = torch.empty_strided(tuple(x.shape), x.stride(), dtype=dtype, device="meta")
    calls: list[Call] = [
        (aten.native_layer_norm.default, (x, list(shape[-1:]), None, None, 1e-5), {}),
        (aten.native_layer_norm.default, (x, list(shape[-2:]), None, None, 1e-5), {}),
        (aten._softmax.default, (x, -1, False), {}),
        (aten._log_softmax.default, (x, 0, False), {}),
        (aten._safe_softmax.default, (x, -1), {}),
        (aten.roll.default, (x, [1], [0]), {}),
        (aten.sub.Tensor, (x, twin), {"alpha": 2}),
        (aten.gelu.default, (x,), {"approximate": "tanh"}),
        (aten.leaky_relu.default, (x, 0.1), {}),
    ]
    for name in ("add", "sub", "mul", "div"):
        calls += [(getattr(aten, name).Tensor, (x, twin), {}),
                  (getattr(aten, name).Tensor, (x, number), {}),
                  (getattr(aten, name).Scalar, (x, number), {}),
                  (getattr(aten, name + "_").Tensor, (x, twin), {}),
                  (getattr(aten, name + "_").Scalar, (x, number), {})]
    for name in UNARY:
        calls.append((getattr(aten, name).default, (x,), {}))
    for name in INPLACE:
        calls.append((getattr(aten, name + "_").default, (x,), {}))
    if dtype in (torch.float16, torch.bfloat16):
        calls.append((aten._softmax.default, (x, -1, True), {}))
    if len(shape) >= 2:
        calls += [
            (aten.native_batch_norm.default, (x, None, None, stats, stats, False, 0.1, 1e-5), {}),
            (aten._native_batch_norm_legit_no_training.default,
             (x, stats, stats, stats, stats, 0.1, 1e-5), {}),
        ]
        groups = next(g for g in (3, 2, 1) if channels % g == 0)
        spatial = 1
        for side in shape[2:]:
            spatial *= side
        calls.append((aten.native_group_norm.default,
                      (x, None, None, shape[0], channels, spatial, groups, 1e-5), {}))
    if len(shape) == 2:
        right = torch.empty((shape[1], 5), dtype=dtype, device="meta")
        for bias in (torch.empty(5, dtype=dtype, device="meta"),
                     torch.empty((shape[0], 5), dtype=dtype, device="meta")):
            calls.append((aten.addmm.default, (bias, x, right), {"beta": 1, "alpha": 1}))
    return calls


def _same(shortcut: Any, real: Any, args: tuple[Any, ...]) -> None:
    if isinstance(real, torch.Tensor):
        assert isinstance(shortcut, torch.Tensor)
        assert (tuple(shortcut.shape), shortcut.stride(), shortcut.dtype, shortcut.device,
                shortcut.storage_offset()) == (tuple(real.shape), real.stride(), real.dtype,
                                               real.device, real.storage_offset())
        assert (shortcut is args[0]) == (real is args[0])
        return
    assert isinstance(shortcut, tuple) and isinstance(real, tuple)
    assert len(shortcut) == len(real)
    for mine, theirs in zip(shortcut, real):
        _same(mine, theirs, args)


@settings(max_examples=budget(60), deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple),
       dtype=st.sampled_from(DTYPES), layout=st.sampled_from(LAYOUTS),
       number=st.sampled_from([2, 0.5, -3]))
def test_shortcuts_equal_the_meta_kernels(shape: tuple[int, ...], dtype: torch.dtype,
                                          layout: str, number: float) -> None:
    x = _meta(shape, dtype, layout)
    for func, args, kwargs in _calls(x, shape, number):
        shortcut = meta_result(func, args, kwargs)
        real = func(*args, **kwargs)
        if shortcut is not None:
            _same(shortcut, real, args)
        dense = x.is_contiguous() or (x.dim() == 4 and x.is_contiguous(
            memory_format=torch.channels_last))
        if not dense and func not in ALWAYS_CONTIGUOUS:
            assert shortcut is None, func  # the layout-following rules cover dense inputs only


def test_every_rule_gives_a_result_on_plain_calls() -> None:
    """Each rule answers (not refuses) some contiguous call of the list above, so the oracle test
    really compares every rule."""
    covered = set()
    for shape, dtype in (((2, 6, 4, 3), torch.float32), ((4, 6), torch.float32),
                         ((4, 6), torch.float16)):
        x = _meta(shape, dtype, "contiguous")
        for func, args, kwargs in _calls(x, shape, 2.0):
            if meta_result(func, args, kwargs) is not None:
                covered.add(func)
    assert set(RULES) <= covered, sorted(map(str, set(RULES) - covered))


def test_rules_refuse_what_they_do_not_cover() -> None:
    x = torch.empty((2, 3, 4, 4), device="meta")
    stats = torch.empty(3, device="meta")
    training = (x, None, None, stats, stats, True, 0.1, 1e-5)
    assert meta_result(aten.native_batch_norm.default, training, {}) is None
    integers = torch.empty((2, 3), dtype=torch.int64, device="meta")
    assert meta_result(aten.relu.default, (integers,), {}) is None
    broadcast = (x, torch.empty((3, 1, 1), device="meta"))
    assert meta_result(aten.add.Tensor, broadcast, {}) is None
    cpu = torch.empty((2, 3))
    assert meta_result(aten.gelu.default, (cpu,), {}) is None
