"""Receptive fields against a brute-force oracle: the input positions whose gradient is reached
from one output unit (torch autograd, all-ones weights so nothing cancels)."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from stridelab import arith
from stridelab.arith import Layer, MisalignedError, ReceptiveField
from tests._budget import budget


def run_chain(x: torch.Tensor, layers: list[Layer]) -> torch.Tensor:
    for layer in layers:
        k, s, p, d = layer.kernel, layer.stride, layer.padding, layer.dilation
        assert isinstance(k, int) and isinstance(s, int) and isinstance(p, int)
        if layer.kind == "conv":
            x = F.conv1d(x, torch.ones(1, 1, k, dtype=x.dtype), stride=s, padding=p, dilation=d)
        elif layer.kind == "avgpool":
            x = F.avg_pool1d(x, k, s, p)
        elif layer.kind == "maxpool":
            x = F.max_pool1d(x, k, s, p, d)
        else:
            x = F.conv_transpose1d(x, torch.ones(1, 1, k, dtype=x.dtype), stride=s, padding=p,
                                   dilation=d)
    return x


@st.composite
def chains(draw: st.DrawFn, transposed: bool = False) -> list[Layer]:
    layers = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["conv", "conv", "avgpool"] + (["transposed"] if transposed else [])))
        k = draw(st.integers(1, 5))
        s = draw(st.integers(1, 3))
        d = draw(st.integers(1, 2)) if kind == "conv" else 1
        p = draw(st.integers(0, k // 2))
        layers.append(Layer(kind, k, s, p, d))
    return layers


def gradient_support(size: int, layers: list[Layer], unit: int) -> list[int]:
    # Avg pooling with positive inputs reaches every tap, so a gradient hit means "is read".
    x = torch.rand(1, 1, size, dtype=torch.float64) + 0.5
    x.requires_grad_(True)
    out = run_chain(x, layers)
    out[0, 0, unit].backward()
    assert x.grad is not None
    return [i for i, g in enumerate(x.grad[0, 0].tolist()) if g != 0]


@settings(max_examples=budget(300))
@given(layers=chains(), size=st.integers(24, 80), data=st.data())
def test_field_matches_gradient_support(layers: list[Layer], size: int, data: st.DataObject) -> None:
    try:
        steps = arith.trace(size, layers)
    except ValueError:
        assume(False)
        return
    out_size = steps[-1].output_size[0]
    field = arith.receptive_field(layers)
    assert field == steps[-1].field
    unit = data.draw(st.integers(0, out_size - 1))
    start, end = field.start(unit), field.end(unit)
    assume(0 <= start and end <= size - 1)  # fully inside: no padding involved at the edges
    support = gradient_support(size, layers, unit)
    assert support[0] == start and support[-1] == end
    if all(lay.dilation == 1 and lay.stride <= lay.kernel for lay in layers):  # type: ignore[operator]
        assert len(support) == field.size[0]  # no gaps: the region is read completely
    if unit + 1 < out_size and field.end(unit + 1) <= size - 1:
        assert gradient_support(size, layers, unit + 1)[0] - support[0] == field.stride[0]


@settings(max_examples=budget(150))
@given(layers=chains(transposed=True), size=st.integers(8, 30), data=st.data())
def test_field_contains_gradient_support_with_transposed(layers: list[Layer], size: int,
                                                         data: st.DataObject) -> None:
    """With upsampling the region is fractional: every input read lies inside [start, end]."""
    try:
        steps = arith.trace(size, layers)
    except ValueError:
        assume(False)
        return
    field = steps[-1].field
    unit = data.draw(st.integers(0, steps[-1].output_size[0] - 1))
    support = gradient_support(size, layers, unit)
    for position in support:
        assert field.start(unit) <= position <= field.end(unit)


def test_reference_sanity_values() -> None:
    assert arith.receptive_field(["c7s2p3", "m3s2p1"]) == ReceptiveField(11, 4, 5)
    vgg: list[str] = []
    for convs in (2, 2, 3, 3, 3):
        vgg += ["c3s1p1"] * convs + ["m2s2"]
    assert arith.receptive_field(vgg) == ReceptiveField(212, 32, 90)


def test_region_and_centre() -> None:
    field = ReceptiveField(11, 4, 5)
    assert (field.start(0), field.end(0), field.center(0)) == (-5, 5, 0)
    assert field.start(3) == 7 and field.center(3) == 12
    even = ReceptiveField(4, 2, 1)
    assert even.center(0) == Fraction(1, 2)
    two_d = ReceptiveField((3, 5), (1, 2), (1, 2))
    assert two_d.start((1, 1)) == (0, 0) and two_d.end((1, 1)) == (2, 4)


def test_transposed_gives_fractional_stride() -> None:
    # 3x3/2 p1 conv (r=3, S=2, P=1), then a 4x4/2 p1 transposed conv: in its input's units the
    # kernel spans (4 - 1)/2 + 1 = 5/2, stride 1/2, padding (4 - 1 - 1)/2 = 1, so
    # r = 3 + (5/2 - 1) * 2 = 6, S = 2 * 1/2 = 1, P = 1 + 1 * 2 = 3.
    field = ReceptiveField.identity().then(3, 2, 1).then(4, 2, 1, transposed=True)
    assert field == ReceptiveField(6, 1, 3)
    up = ReceptiveField.identity().then(2, 2, 0, transposed=True)
    assert up.stride == (Fraction(1, 2),) and up.size == (Fraction(3, 2),)


def test_merge_aligned_and_misaligned() -> None:
    base = ReceptiveField.identity(2)
    three = base.then(3, 1, 1)
    five = base.then(5, 1, 2)
    assert three.merge(five) == five and five.merge(three) == five
    shifted = base.then(3, 1, 0)  # centre moves by +1
    with pytest.raises(MisalignedError, match="centre"):
        three.merge(shifted)
    with pytest.raises(MisalignedError, match="stride"):
        three.merge(base.then(3, 2, 1))
    assert issubclass(MisalignedError, ValueError)


def test_resnet_stem_branch_alignment() -> None:
    """A ResNet downsampling block: 3x3/2 p1 + 3x3/1 p1 main path vs 1x1/2 shortcut."""
    entry = ReceptiveField.identity(2)
    main = entry.then(3, 2, 1).then(3, 1, 1)
    shortcut = entry.then(1, 2, 0)
    assert main.merge(shortcut) == main
