"""Segmentation logits have exactly the input's height and width for any input size."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from stridelab.arith import transposed_output_size
from stridelab.nn import ResNet, SegmentationModel, Stage, StridePlan, presets, resnet18
from stridelab.nn.segmentation import TransposedUpsample
from tests._budget import budget

SMALL = StridePlan((Stage(1, 4, 1), Stage(1, 8, 2), Stage(1, 8, 2), Stage(1, 8, 2)),
                   stem_width=4)


@pytest.fixture(scope="module")
def models() -> dict[tuple[str, int], SegmentationModel]:
    torch.manual_seed(0)
    out = {}
    for upsample in ("bilinear", "transposed"):
        for os_ in (8, 16, 32):
            plan = StridePlan.from_dict({**SMALL.to_dict(), "output_stride": os_})
            model = SegmentationModel(ResNet(plan, num_classes=0), num_classes=3,
                                      upsample=upsample)
            out[(upsample, os_)] = model.eval()
    return out


@settings(max_examples=budget(25))
@given(h=st.integers(1, 70), w=st.integers(1, 70),
       upsample=st.sampled_from(["bilinear", "transposed"]), os_=st.sampled_from([8, 16, 32]))
def test_logits_match_input_size(models: dict[tuple[str, int], SegmentationModel], h: int,
                                 w: int, upsample: str, os_: int) -> None:
    model = models[(upsample, os_)]
    with torch.no_grad():
        logits = model(torch.randn(1, 3, h, w))
    assert logits.shape == (1, 3, h, w)


@pytest.mark.parametrize("size", [(31, 33), (33, 31), (64, 65)])
def test_odd_sizes_explicit(models: dict[tuple[str, int], SegmentationModel],
                            size: tuple[int, int]) -> None:
    with torch.no_grad():
        assert models[("transposed", 8)](torch.randn(2, 3, *size)).shape == (2, 3, *size)


def test_transposed_upsample_is_linear_interpolation() -> None:
    """Tent initialisation: feature u lands on pixel u * S, linear in between."""
    up = TransposedUpsample(1, 4)
    x = torch.tensor([[[[0.0, 4.0, 8.0]]]]).expand(1, 1, 1, 3)
    out_w = transposed_output_size(3, up.kernel_size, up.stride, up.padding)
    assert out_w == 9  # (3 - 1) * 4 + 1
    y = up(x, (1, 10))
    assert y.shape[-1] == 10
    torch.testing.assert_close(y[0, 0, 0, :9], torch.arange(9, dtype=torch.float32))


def test_fcn_preset_and_errors() -> None:
    model = presets["fcn_resnet18"]().eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 37, 41)).shape == (1, 21, 37, 41)
    with pytest.raises(ValueError, match="upsample"):
        SegmentationModel(resnet18(num_classes=0), upsample="nearest-ish")
    with pytest.raises(TypeError, match="backbone"):
        SegmentationModel(torch.nn.Conv2d(1, 1, 1))  # type: ignore[arg-type]


@pytest.mark.parametrize(("upsample", "os_", "decoder_channels"),
                         [("skip", 32, 16), ("bilinear", 8, 32), ("transposed", 16, 32)])
def test_head_can_separate_every_class(upsample: str, os_: int, decoder_channels: int) -> None:
    """Regression: the head's hidden layer was ``channels // 4`` wide (4 for a 16-channel skip
    decoder), fewer than the 11 classes of scenes, so every pixel's logits lay in a 4-dimensional
    affine subspace and short trainings could not leave "all background". Oracle: the rank (SVD)
    of the centred per-pixel logits must reach the number of classes."""
    torch.manual_seed(0)
    widths = (8, 16, 32, 32, 32)
    plan = StridePlan(tuple(Stage(1, w, 2) for w in widths), stem="cifar", stem_width=8,
                      shortcut="B")
    if os_ < 32:
        plan = StridePlan.from_dict({**plan.to_dict(), "output_stride": os_})
    model = SegmentationModel(ResNet(plan, num_classes=0, in_channels=1), num_classes=11,
                              upsample=upsample, decoder_channels=decoder_channels).eval()
    with torch.no_grad():
        logits = model(torch.randn(4, 1, 64, 64)).double()
    per_pixel = logits.permute(0, 2, 3, 1).reshape(-1, 11)
    centred = per_pixel - per_pixel.mean(dim=0)
    # the logits are float32: singular values below 1e-4 of the largest are rounding noise
    assert int(torch.linalg.matrix_rank(centred, rtol=1e-4)) == 11
