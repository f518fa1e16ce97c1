"""Resizes and adaptive pools with any size ratio: the reported receptive field must contain every
input position that reaches an output unit.

Oracle: autograd. With all-ones convolution weights and positive inputs no contribution cancels,
so the input positions with a nonzero gradient of one output unit are exactly the positions it
reads (for max pooling, the subset that won; containment must hold all the same).
"""

from __future__ import annotations

from fractions import Fraction

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import stridelab
from stridelab.arith import ReceptiveField
from tests._budget import budget

MODES = ("nearest", "nearest-exact", "bilinear", "bilinear-align", "bicubic", "adaptive-avg",
         "adaptive-max")


class Resample(nn.Module):
    """A 3x3 all-ones convolution (padding 1), then one resize or adaptive pool to ``size``."""

    def __init__(self, mode: str, size: tuple[int, int] | None,
                 scale: tuple[float, float] | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
        nn.init.ones_(self.conv.weight)
        self.mode, self.size, self.scale = mode, size, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if self.mode == "adaptive-avg":
            return F.adaptive_avg_pool2d(y, self.size)
        if self.mode == "adaptive-max":
            assert self.size is not None
            return F.adaptive_max_pool2d(y, self.size)
        align = {"align_corners": self.mode == "bilinear-align"} if "bi" in self.mode else {}
        mode = self.mode.replace("-align", "")
        return F.interpolate(y, size=self.size, scale_factor=self.scale, mode=mode, **align)


def _reads(model: nn.Module, size_in: tuple[int, int]) -> torch.Tensor:
    """Boolean ``(out_h, out_w, in_h, in_w)``: does input position ``(r, c)`` reach unit ``(u, v)``
    (nonzero gradient of that unit; one vectorized Jacobian instead of a backward per unit)."""
    x = torch.rand(1, 1, *size_in, dtype=torch.float64) + 0.5
    jacobian: torch.Tensor = torch.autograd.functional.jacobian(  # type: ignore[no-untyped-call]
        model, x, vectorize=True)
    return jacobian[0, 0, :, :, 0, 0] != 0


def _assert_contains(model: nn.Module, size_in: tuple[int, int]) -> ReceptiveField:
    model = model.double()
    field: ReceptiveField = stridelab.inspect(model, input_size=(1, *size_in)).field
    reads = _reads(model, size_in)
    for u in range(reads.shape[0]):
        for v in range(reads.shape[1]):
            support = torch.nonzero(reads[u, v])
            assert support.numel() > 0
            start, end = field.start((u, v)), field.end((u, v))
            assert isinstance(start, tuple) and isinstance(end, tuple)
            for axis in range(2):
                low, high = int(support[:, axis].min()), int(support[:, axis].max())
                assert start[axis] <= low and high <= end[axis], (
                    (u, v), axis, (low, high), (start[axis], end[axis]), field)
    return field


@settings(max_examples=budget(60))
@given(size_in=st.tuples(st.integers(2, 12), st.integers(2, 12)),
       size_out=st.tuples(st.integers(2, 12), st.integers(2, 12)),
       mode=st.sampled_from(MODES))
def test_field_contains_every_read(size_in: tuple[int, int], size_out: tuple[int, int],
                                   mode: str) -> None:
    field = _assert_contains(Resample(mode, size_out), size_in)
    # the field moves by the true sampling ratio (source pixels per output pixel), not by a
    # rounded whole number: PyTorch's documented i / o, or (i - 1) / (o - 1) with align_corners
    for axis, (i, o) in enumerate(zip(size_in, size_out)):
        ratio = Fraction(i - 1, o - 1) if mode == "bilinear-align" else Fraction(i, o)
        assert field.stride[axis] == ratio


@settings(max_examples=budget(20))
@given(size_in=st.tuples(st.integers(2, 9), st.integers(2, 9)),
       scale=st.tuples(st.sampled_from([0.4, 0.7, 1.3, 1.5, 1.75, 2.2, 2.5]),
                       st.sampled_from([0.5, 1.5, 2.0, 3.0])),
       mode=st.sampled_from(["nearest", "nearest-exact", "bilinear", "bicubic"]))
def test_field_contains_every_read_with_scale_factor(size_in: tuple[int, int],
                                                     scale: tuple[float, float],
                                                     mode: str) -> None:
    """With ``scale_factor`` PyTorch samples at ``1 / scale``, not at ``size_in / size_out``."""
    if any(int(i * s) < 1 for i, s in zip(size_in, scale)):
        return
    _assert_contains(Resample(mode, None, scale), size_in)


def test_adaptive_pool_five_to_seven_is_the_fractional_composition() -> None:
    """AdaptiveAvgPool 5 -> 7 equals nearest upsampling by 7 then pooling 5/5 (the brief's
    identity), after the 3x3 convolution's field of size 3, padding 1."""
    field = _assert_contains(Resample("adaptive-avg", (7, 7)), (5, 5))
    expected = ReceptiveField((3, 3), (1, 1), (1, 1)).then(7, 7, 0, transposed=True).then(5, 5, 0)
    assert field == expected
    assert field.stride == (Fraction(5, 7), Fraction(5, 7))
