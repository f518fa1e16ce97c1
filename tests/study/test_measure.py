"""Measurements against independent oracles (analytic probabilities, the real tensors)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from stridelab.study.config import TrainSettings
from stridelab.study.data import Splits
from stridelab.study.measure import (
    latency_ms,
    shift,
    shift_consistency,
    throughput,
    training_memory,
)
from stridelab.study.variants import resolve_variants

CPU = torch.device("cpu")


def _splits(test_x: torch.Tensor) -> Splits:
    y = torch.zeros(len(test_x), dtype=torch.int64)
    return Splits(name="t", classes=("a", "b"), train_x=test_x, train_y=y, val_x=test_x,
                  val_y=y, test_x=test_x, test_y=y, mean=(0.0,), std=(1.0,))


class CentrePixel(nn.Module):
    """Class 1 iff the centre pixel is lit: maximally sensitive to shifts."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centre = x[:, 0, x.shape[2] // 2, x.shape[3] // 2]
        return torch.stack([0.5 - centre, centre - 0.5], dim=1)


class Brightness(nn.Module):
    """Class from the total brightness: invariant to shifts that keep the content inside."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = x.sum(dim=(1, 2, 3))
        return torch.stack([2.5 - total, total - 2.5], dim=1)


def test_shift_moves_content_and_fills_black() -> None:
    image = torch.arange(16.0).view(1, 1, 4, 4) + 1
    moved = shift(image, torch.tensor([[1, -1]]))
    expected = torch.zeros(4, 4)
    expected[1:, :3] = image[0, 0, :3, 1:]
    assert torch.equal(moved[0, 0], expected)


def test_consistency_matches_the_analytic_probability() -> None:
    # One lit pixel in the centre: the class survives only the (0, 0) shift, which has
    # probability p = 1/9 for max_shift=1, so P(same class) = p^2 + (1 - p)^2 = 65/81.
    images = torch.zeros(4000, 1, 9, 9)
    images[:, 0, 4, 4] = 1.0
    value = shift_consistency(CentrePixel(), _splits(images), CPU, max_shift=1, seed=0)
    assert value == pytest.approx(65 / 81, abs=0.025)
    assert value == shift_consistency(CentrePixel(), _splits(images), CPU, max_shift=1, seed=0)


def test_consistency_of_a_shift_invariant_model_is_one() -> None:
    images = torch.zeros(300, 1, 12, 12)
    images[:150, 0, 4:8, 4:8] = 1.0  # 16 bright pixels; the others stay below the threshold
    images[150:, 0, 5:7, 5:7] = 0.5
    assert shift_consistency(Brightness(), _splits(images), CPU, max_shift=3, seed=1) == 1.0
    assert shift_consistency(CentrePixel(), _splits(images), CPU, max_shift=3, seed=1) < 1.0


def test_more_downsampling_needs_less_training_memory() -> None:
    variants = resolve_variants("aggressive,strided,no-downsampling", depth=8, width=4,
                                input_size=(16, 16))
    images = torch.rand(32, 1, 16, 16)
    settings = TrainSettings(batch_size=32)
    memory = []
    for variant in variants:
        model = variant.build(num_classes=10, in_channels=1)
        memory.append(training_memory(model, _splits(images), settings, CPU)["peak_train_bytes"])
        params = sum(p.numel() * 4 for p in model.parameters())
        assert memory[-1] > 3 * params  # weights + grads + momentum, plus activations
    assert memory[0] < memory[1] < memory[2]
    # The largest activation alone (16 channels at 16x16, fp32, batch 32) is a lower bound.
    assert memory[2] > 32 * 16 * 16 * 16 * 4


def test_timings_are_positive() -> None:
    model = resolve_variants("strided", depth=8, width=4)[0].build(num_classes=3, in_channels=1)
    assert latency_ms(model, (1, 16, 16), CPU, repeats=2, warmup=1) > 0
    assert throughput(model, (1, 16, 16), CPU, batch_size=4, repeats=2) > 0
