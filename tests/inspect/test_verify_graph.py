"""``report.verify`` on the zoo's failures, reduced to small modules (oracle: autograd).

* RegNet: a 1x1/2 shortcut that never reads the last row must not bound the 3x3/2 path beside
  it (reach follows each row's own inputs);
* ConvNeXt: channels-last rows are indexed by their layout, and a LayerNorm over channels
  (whose plain channel sum is constant) still gives a gradient;
* TNT: pixels inside unfolded patches, then attention over all patch tokens, is global context
  (and no small-field warning); without the outer attention it is not.
"""

from __future__ import annotations

import torch

import stridelab
from stridelab.inspect.probe import map_dims, row_layouts
from tests.inspect import verify_models as vm
from tests.inspect.test_layouts import gradient_box, reported_box


def test_projection_shortcut_does_not_bound_the_main_path() -> None:
    model = vm.ProjectionShortcut()
    report = stridelab.inspect(model, (3, 32, 32))
    result = report.verify(model, layers=["shortcut", "relu"], samples=1)
    assert result.ok, str(result)
    last = [c for c in result.checks if c.layer == "relu" and c.unit == (7, 7)]
    assert last and last[0].measured == ((21, 31), (21, 31)) == last[0].expected
    # the shortcut alone stops one row short of the image's end: its own reach is kept
    short = [c for c in result.checks if c.layer == "shortcut" and c.unit == (7, 7)]
    assert short and short[0].measured == ((27, 29), (27, 29)) == short[0].expected


def test_channels_last_rows_and_layer_norm_2d() -> None:
    model = vm.convnext_stage()
    report = stridelab.inspect(model, (3, 32, 32))
    layouts = row_layouts(report, model)
    assert map_dims(layouts["2.block.2"], 2) == (1, 2)  # LayerNorm in (N, H, W, C)
    assert map_dims(layouts["3"], 2) == (2, 3)
    result = report.verify(model, layers="all", samples=1)
    assert result.ok, str(result)
    checked = {c.layer for c in result.checks}
    assert {"1", "2.block.2", "2.block.3", "3", "4"} <= checked
    assert not [c for c in result.checks if c.measured is None]


def test_patch_tokens_with_outer_attention_are_global() -> None:
    torch.manual_seed(0)
    model = vm.PixelsInPatches(outer=True)
    report = stridelab.inspect(model, (3, 32, 32))
    assert report.global_context
    assert "small-field" not in {d.code for d in report.diagnostics}
    assert "unknown-op" not in {d.code for d in report.diagnostics}
    assert gradient_box(model, 32, (1, 2)) == [(0, 31), (0, 31)]


def test_pixels_inside_patches_stay_local() -> None:
    torch.manual_seed(0)
    model = vm.PixelsInPatches(outer=False)
    report = stridelab.inspect(model, (3, 32, 32))
    assert not report.global_context
    assert not any(r.global_context for r in report.layers)
    assert "unknown-op" not in {d.code for d in report.diagnostics}
    for unit in ((0, 0), (1, 2), (3, 3)):
        box = gradient_box(model, 32, unit)
        assert box == [(8 * unit[0], 8 * unit[0] + 7), (8 * unit[1], 8 * unit[1] + 7)]
        shown = reported_box(report.field, unit, 32)
        assert all(s0 <= g0 <= g1 <= s1 for (g0, g1), (s0, s1) in zip(box, shown))
    assert report.field.stride == (8, 8)


def test_effective_field_of_a_channels_last_row() -> None:
    """The ERF indexes a channels-last row by its layout: the gradient mass of the centre unit
    lies inside its reported field (indexed as ``(N, C, H, W)`` it would sit elsewhere)."""
    from stridelab.inspect.erf import effective_field
    model = vm.convnext_stage()
    erf = effective_field(model, (3, 32, 32), layer="2.block.3", samples=2)
    assert erf.unit == (4, 4)
    rows, cols = (erf.map.sum(axis=axis) for axis in (1, 0))
    (r0, r1), (c0, c1) = [(int(v.nonzero()[0].min()), int(v.nonzero()[0].max()))
                          for v in (rows, cols)]
    field = erf.field
    start, end = field.start((4, 4)), field.end((4, 4))
    assert isinstance(start, tuple) and isinstance(end, tuple)
    assert (r0, r1, c0, c1) == (max(start[0], 0), min(end[0], 31), max(start[1], 0),
                                min(end[1], 31))


def test_a_function_row_never_takes_a_module_rows_name() -> None:
    """FX names a functional ``relu`` in the scope of a module called ``relu`` "relu" too; the
    recorder gives it a suffix so names stay unique, and verify follows both rows."""
    model = vm.RepeatedName()
    report = stridelab.inspect(model, (3, 32, 32))
    names = [r.name for r in report.layers]
    assert len(names) == len(set(names)) and "relu_1" in names
    result = report.verify(model, layers=["main", "add"], units=[(7, 7)], samples=1)
    assert result.ok, str(result)
    assert all(c.measured is not None and c.measured[0][1] == 31 for c in result.checks)


def test_nearest_upsampling_and_merged_branches_are_exact_per_unit() -> None:
    """After a 4x nearest upsampling the linear field brackets the unit's one source unit by up to
    3/4 of the branch's stride; added to a branch with a smaller field, the merge reads the same
    unit of both. The reach makes the expected box exact, which autograd confirms."""
    model = vm.UpsampledFuse()
    report = stridelab.inspect(model, (3, 128, 128))
    result = report.verify(model, layers="all", samples=1)
    assert result.ok, str(result)
    checks = [c for c in result.checks if c.layer == "fuse.2"]
    assert checks and all(c.measured == c.expected for c in checks)
    # the phase effect is exercised: a region inside the image, wider than what the unit reads
    inside = [c for c in result.checks for (lo, hi), (start, end) in zip(c.measured or (), c.region)
              if 0 <= start and end <= 127 and (lo, hi) != (start, end)]
    assert inside, "the model no longer exercises the phase of the upsampling"


def test_edges_below_float32_are_measured_in_float64() -> None:
    model = vm.fading_edges()
    report = stridelab.inspect(model, (1, 32, 32))
    x = torch.randn(1, 1, 32, 32, requires_grad=True)
    model(x)[0, 0, 16, 16].backward()
    assert x.grad is not None
    rows = torch.nonzero(x.grad[0, 0].abs().sum(dim=1)).flatten()
    assert (int(rows.min()), int(rows.max())) == (10, 22)  # float32 loses the outer ring
    result = report.verify(model, weights="model", units=[(16, 16)], layers=["6"], samples=1)
    assert result.ok, str(result)
    assert result.checks[0].measured == ((9, 23), (9, 23)) == result.checks[0].expected
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the model is untouched
