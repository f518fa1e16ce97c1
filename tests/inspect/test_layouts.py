"""Fields through layout changes, checked against autograd: the nonzero-gradient box of an output
unit equals the reported box wherever the image does not clip it (window attention: contains
it, with the exact edge on the window's first / last token); global context means a gradient
over the whole input. Costs against torch.utils.flop_counter on the same eval forward."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from stridelab.arith import ReceptiveField
from stridelab.inspect import Report, inspect
from tests.inspect import layout_models as lm

SIZE = 32


def gradient_box(model: nn.Module, size: int, unit: tuple[int, int]
                 ) -> list[tuple[int, int]]:
    """Rows and columns of the input whose gradient for output unit ``unit`` is nonzero."""
    torch.manual_seed(0)
    model = model.double().eval()
    for p in model.parameters():  # re-randomised: no zero gains hiding a branch
        nn.init.normal_(p, 0.0, 0.5)
    x = torch.randn(1, 3, size, size, dtype=torch.float64, requires_grad=True)
    out = model(x)
    out[0, :, unit[0], unit[1]].sum().backward()
    assert x.grad is not None
    grad = x.grad[0].abs().sum(0)
    rows = torch.nonzero(grad.sum(1) > 0).flatten()
    cols = torch.nonzero(grad.sum(0) > 0).flatten()
    return [(int(rows.min()), int(rows.max())), (int(cols.min()), int(cols.max()))]


def reported_box(field: ReceptiveField, unit: tuple[int, int], size: int
                 ) -> list[tuple[int, int]]:
    start, end = field.start(unit), field.end(unit)
    assert isinstance(start, tuple) and isinstance(end, tuple)
    return [(max(int(s), 0), min(int(e), size - 1)) for s, e in zip(start, end)]


def report_of(model: nn.Module, size: int = SIZE) -> Report:
    report = inspect(model, (3, size, size))
    on_meta = copy.deepcopy(model).to("meta").eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        on_meta(torch.zeros(1, 3, size, size, device="meta"))
    assert report.macs * 2 == counter.get_total_flops()
    assert sum(r.params for r in report.layers) == sum(p.numel() for p in model.parameters())
    assert not [d for d in report.diagnostics
                if d.code in ("unknown-op", "untracked", "unused-parameters", "misaligned")]
    return report


EXACT = [
    (lm.ChannelsLast, ReceptiveField(28, 4, 12)),  # 4x4/4 then 7x7 on the 4-px grid
    (lm.TokenGrid, ReceptiveField(12, 4, 4)),  # 4x4/4 tokens, class token in front, 3x3
    (lm.PatchMerging, ReceptiveField(12, 4, 4)),  # 2x2/2, 2x2 block by slicing, 3x3
    (lm.SqueezeExcite, ReceptiveField(5, 1, 2)),  # the gate neither freezes nor inflates
    (lm.EfficientChannel, ReceptiveField(5, 1, 2)),
    (lm.StackUnbind, ReceptiveField(5, 1, 2)),
    (lm.UnfoldLinear, ReceptiveField(3, 2, 1)),
]


@pytest.mark.parametrize(("build", "expected"), EXACT, ids=lambda v: getattr(v, "__name__", ""))
def test_field_is_exact_through_layout_changes(build: type[nn.Module],
                                               expected: ReceptiveField) -> None:
    model = build()
    report = report_of(model)
    field = report.field
    assert field == ReceptiveField((expected.size[0],) * 2, (expected.stride[0],) * 2,
                                   (expected.padding[0],) * 2)
    out = (SIZE + int(field.stride[0]) - 1) // int(field.stride[0])
    for unit in ((out // 2, out // 2), (1, out - 2)):
        box = gradient_box(model, SIZE, unit)
        if report.global_context:  # a gate: every unit reads the whole input
            assert box == [(0, SIZE - 1)] * 2
        else:
            assert box == reported_box(field, unit, SIZE)


def test_gates_are_global_context_on_the_local_field() -> None:
    for build in (lm.SqueezeExcite, lm.EfficientChannel):
        report = report_of(build())
        assert report.layer("conv2").global_context and not report.layer("conv1").global_context
        assert report.layer("conv2").receptive_field.size == (5, 5)
        assert [d.code for d in report.diagnostics].count("global-context") == 1
    assert not report_of(lm.StackUnbind()).global_context


def test_pixel_shuffle_field_contains_every_read() -> None:
    model = lm.Shuffle()
    report = report_of(model, 16)
    assert report.layer("conv2").output_shape == (1, 4, 32, 32)
    for unit in ((16, 16), (9, 20)):
        (r0, r1), (c0, c1) = gradient_box(model, 16, unit)
        (p0, p1), (q0, q1) = reported_box(report.field, unit, 16)
        assert p0 <= r0 <= r1 <= p1 and q0 <= c0 <= c1 <= q1


@pytest.mark.parametrize("shift", [0, 2])
def test_window_attention_reaches_the_window_hull(shift: int) -> None:
    model = lm.WindowAttention(window=4, shift=shift)
    report = report_of(model)
    assert not report.global_context  # windows of 4 tokens on a 16-token grid
    field = report.field
    assert field.stride == (2, 2) and field.size == (2 + 6 * 2, 2 + 6 * 2)
    # tokens 6..9 share a window after the shift 2: (p - shift) % 4 == 0 starts it
    first, last = 4 + shift, 7 + shift
    for unit in ((first, last), (last, first)):
        box = gradient_box(model, SIZE, unit)
        shown = reported_box(field, unit, SIZE)
        window = [(2 * (u - (u - shift) % 4), 2 * (u - (u - shift) % 4 + 4) - 1) for u in unit]
        assert box == window
        for (g0, g1), (s0, s1), u in zip(box, shown, unit):
            assert s0 <= g0 <= g1 <= s1
            if (u - shift) % 4 == 3:  # the window's last token: the left edge is exact
                assert g0 == s0
            if (u - shift) % 4 == 0:  # the first token: the right edge is exact
                assert g1 == s1


def test_global_attention_is_global_context_without_small_field() -> None:
    model = lm.TokenGrid(attention=True)
    report = report_of(model)
    assert report.global_context and report.field == ReceptiveField((12, 12), (4, 4), (4, 4))
    assert report.layer("conv").receptive_field.size == (12, 12)
    assert gradient_box(model, SIZE, (3, 3)) == [(0, SIZE - 1)] * 2
    head = report_of(lm.ClassHead())
    assert head.global_context
    assert "small-field" not in {d.code for d in head.diagnostics}
    tokens = [r for r in head.layers if r.spatial]
    assert tokens and all(r.receptive_field.size == (4, 4) for r in tokens)


def test_block_then_grid_attention_is_global() -> None:
    model = lm.BlockGrid()
    report = report_of(model)
    grid_rows = [r for r in report.layers if r.name.startswith("grid.")]
    block_rows = [r for r in report.layers if r.name.startswith("block.")]
    assert grid_rows and all(r.global_context for r in grid_rows[-3:])
    assert block_rows and not any(r.global_context for r in block_rows)
    assert gradient_box(model, SIZE, (5, 9)) == [(0, SIZE - 1)] * 2
