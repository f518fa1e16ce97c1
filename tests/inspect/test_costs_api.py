"""Costs against FlopCounterMode, parameter counts, API contract and input validation."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import stridelab
from stridelab.arith import ReceptiveField
from stridelab.inspect import Report, inspect
from tests.inspect import models


def flop_counter_macs(model: nn.Module, size: tuple[int, ...]) -> int:
    """Independent count: FlopCounterMode over the whole real forward, divided by 2."""
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *size))
    return counter.get_total_flops() // 2


@pytest.mark.parametrize("build,size", [(models.resnet18, (3, 64, 64)),
                                        (models.resnet50, (3, 64, 64)),
                                        (models.Functional, (3, 64, 64))])
def test_macs_equal_flop_counter_over_two(build: type[nn.Module], size: tuple[int, ...]) -> None:
    model = build()
    report = inspect(model, size)
    assert report.macs == flop_counter_macs(model, size) > 0
    assert report.flops == 2 * report.macs
    assert report.params == sum(p.numel() for p in model.parameters())
    assert sum(r.params for r in report.layers) == report.params


def test_resnet50_at_224_on_meta_matches_known_macs() -> None:
    model = models.resnet50()
    report = stridelab.inspect(model)
    assert report.macs == 4_089_184_256  # torchvision lists 4.09 GMACs ("GFLOPS") for it
    assert report.params == 25_557_032


def test_shared_parameters_count_once() -> None:
    model = models.Shared()
    report = inspect(model, (3, 8, 8))
    assert report.params == sum(p.numel() for p in model.parameters()) == 224 + 584


def test_module_is_callable_and_exports() -> None:
    report = stridelab.inspect(nn.Conv2d(3, 4, 3), (3, 10, 10))
    assert isinstance(report, Report)
    assert report.layers[0].receptive_field.size == (3, 3)
    assert report.activation_bytes == 4 * 8 * 8 * 4


def test_model_is_left_untouched_and_real_device_matches_meta() -> None:
    model = models.UNet()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    meta = inspect(model, (3, 16, 16))
    cpu = inspect(model, (3, 16, 16), device="cpu", batch_size=2)
    assert model.training and all(m.training for m in model.modules())
    for key, value in model.state_dict().items():
        assert value.device.type == "cpu" and torch.equal(value, before[key])
    assert [r.receptive_field for r in meta.layers] == [r.receptive_field for r in cpu.layers]
    assert cpu.macs == 2 * meta.macs


def test_large_input_on_meta_is_cheap() -> None:
    report = inspect(models.resnet18(), (3, 4096, 4096))
    assert report.layers[-1].output_shape == (1, 1000)
    assert report.layer("layer4.1.relu#2").output_shape == (1, 512, 128, 128)


@pytest.mark.parametrize("kwargs,error", [
    ({"input_size": 224}, TypeError), ({"input_size": (3,)}, ValueError),
    ({"input_size": (3, 0, 4)}, ValueError), ({"batch_size": 0}, ValueError),
    ({"device": "nonsense"}, ValueError), ({"min_field_fraction": 2.0}, ValueError),
])
def test_bad_arguments_name_the_parameter(kwargs: dict[str, object], error: type) -> None:
    with pytest.raises(error, match=next(iter(kwargs))):
        inspect(nn.Conv2d(3, 4, 3), **kwargs)  # type: ignore[arg-type]


def test_not_a_module_and_too_small_input() -> None:
    with pytest.raises(TypeError, match="model"):
        inspect(42)  # type: ignore[arg-type]  (a string is now a model spec: test_registry.py)
    with pytest.raises(ValueError, match=r"cannot trace .* at 0 \(Conv2d\)"):
        inspect(nn.Sequential(nn.Conv2d(3, 4, 5)), (3, 3, 3))


def test_field_at_unknown_name() -> None:
    report = inspect(models.Shared(), (3, 8, 8))
    with pytest.raises(KeyError, match="no layer named 'conv3'"):
        report.field_at("conv3")


class SharedUntraceable(nn.Module):
    """Shared conv plus shape-dependent Python control flow (eager fallback)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.stem = nn.Conv2d(3, 4, 3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for _ in range(x.shape[-1] // 8):  # FX cannot iterate over a traced size
            x = self.conv(x)
        return torch.flatten(x, 1)


def test_eager_fallback_names_shared_calls_and_counts_costs() -> None:
    model = SharedUntraceable()
    report = inspect(model, (3, 32, 32))
    assert report.capture == "dispatch"
    assert [r.name for r in report.layers] == ["stem", "conv", "conv#2", "flatten"]
    assert report.layer("conv#2").params == 0 and report.params == 112 + 148
    assert report.layer("conv#2").receptive_field == ReceptiveField((11, 11), (2, 2), (5, 5))
    assert not report.layers[-1].spatial
    assert report.macs == flop_counter_macs(model, (3, 32, 32))
