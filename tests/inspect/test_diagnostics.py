"""Each diagnostic fires on a model built to trigger it, and not on a clean one."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from stridelab.inspect import inspect
from tests.inspect import models


def codes(model: nn.Module, size: tuple[int, ...] = (3, 32, 32), **kwargs: float
          ) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for d in inspect(model, size, **kwargs).diagnostics:
        assert d.severity in ("warning", "info") and d.message and d.fix
        found.setdefault(d.code, []).append(d.layer)
    return found


def test_dropped_pixels() -> None:
    found = codes(nn.Sequential(nn.Conv2d(3, 4, 3, 2)), (3, 32, 32))  # (32-3) % 2 = 1
    assert found["dropped-pixels"] == ["0"]
    assert "dropped-pixels" not in codes(nn.Sequential(nn.Conv2d(3, 4, 3, 2)), (3, 33, 33))


def test_asymmetric_and_tf_same_padding() -> None:
    found = codes(nn.Sequential(nn.Conv2d(3, 4, 4, padding="same")), (3, 8, 8))
    assert found["asymmetric-padding"] == ["0"]
    assert codes(nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1)), (3, 8, 8))["tf-same-mismatch"] == ["0"]
    assert "tf-same-mismatch" not in codes(nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1)), (3, 9, 9))


def test_field_larger_than_input_and_small_head() -> None:
    big = codes(models.resnet18(), (3, 64, 64))
    assert "field-exceeds-input" in big and "small-field" not in big
    small = codes(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1)), (3, 32, 32))
    assert small["small-field"] == ["0"]
    assert "small-field" not in codes(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1)), (3, 32, 32),
                                      min_field_fraction=0.05)


class BlurDown(nn.Module):
    """Depthwise fixed binomial blur, stride 2 (BlurPool): a low-pass filter."""

    def __init__(self) -> None:
        super().__init__()
        kernel = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer("filt", (kernel[:, None] * kernel[None, :] / 16).expand(4, 1, 3, 3)
                             .contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), self.filt, stride=2, groups=4)


def test_aliasing_flags_unfiltered_stride_only() -> None:
    plain = codes(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(2)))
    assert plain["aliasing"] == ["1"]
    pure = inspect(nn.Sequential(nn.Conv2d(3, 4, 1, 2)), (3, 33, 33)).diagnostics
    assert [d.severity for d in pure if d.code == "aliasing"] == ["warning"]
    blurred = codes(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(2, 1), BlurDown()))
    assert "aliasing" not in blurred
    assert "aliasing" not in codes(nn.Sequential(nn.AvgPool2d(2)))


def test_checkerboard() -> None:
    bad = codes(nn.Sequential(nn.ConvTranspose2d(3, 4, 3, 2)), (3, 8, 8))
    assert bad["checkerboard"] == ["0"]
    assert "checkerboard" not in codes(nn.Sequential(nn.ConvTranspose2d(3, 4, 4, 2, 1)), (3, 8, 8))


def test_misaligned_branches_and_global_context() -> None:
    assert codes(models.TwoBranch(aligned=False))["misaligned"] == ["add"]
    assert "misaligned" not in codes(models.TwoBranch(aligned=True))

    class SqueezeExcite(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x)
            return y * torch.sigmoid(y.mean((2, 3), keepdim=True))

    found = codes(SqueezeExcite())
    assert found["global-context"] == ["mul"] and "misaligned" not in found


def test_collapsed_map_before_head() -> None:
    found = codes(models.resnet18(), (3, 16, 16))
    assert found["collapsed-map"] == ["layer3.0.downsample.0"]
    assert "collapsed-map" not in codes(models.resnet18(), (3, 224, 224))


def test_unused_parameters() -> None:
    class Unused(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used = nn.Conv2d(3, 4, 3)
            self.spare = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.used(x)

    assert codes(Unused())["unused-parameters"] == ["model"]
