"""``report.verify``: the theoretical field against the input positions autograd reaches.

The oracle is torch autograd itself (the nonzero-gradient box of one output unit). Tests also
show the check can fail: a field made smaller is caught as ``outside``, larger as ``loose``, and
zero-initialised residual norms hide branches unless the weights are re-drawn.
"""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
import torch
from torch import nn

import stridelab
from stridelab.cli import main
from stridelab.inspect.probe import last_spatial
from stridelab.inspect.verify import default_layers, default_units
from stridelab.nn import presets
from stridelab.nn import resnet18 as snn_resnet18


@pytest.mark.parametrize("name,size", [("resnet18", 64), ("resnet50", 64)])
def test_resnets_contained_and_tight(name: str, size: int) -> None:
    model = presets[name]()
    report = stridelab.inspect(model, (3, size, size))
    result = report.verify(model)
    assert result.ok, str(result)
    layers = {c.layer for c in result.checks}
    assert report.layers[0].name in layers  # conv1
    last = [r for r in report.layers if len(r.output_shape) == 4 and r.output_shape[2] > 1]
    assert last[-1].name in layers  # the last layer with a map (not the 1x1 global pool)
    # interior units exist (field inside the image on both axes): tightness really is tested
    interior = [c for c in result.checks if not any(c.clipped)]
    assert interior and all(c.tight for c in interior)
    for check in interior:
        (lo, hi), _ = check.measured  # type: ignore[misc]
        field = report.field_at(check.layer)
        assert hi - lo + 1 == field.size[0]


SMALL_PRESETS = [n for n in presets if n not in ("resnet18", "resnet50")]


@pytest.mark.parametrize("name", SMALL_PRESETS)
def test_every_preset_contained_and_tight(name: str) -> None:
    """32x32 and the last map only (its centre and corners: the whole network's field) keep the
    suite fast; ``make fuzz`` checks the default sample of layers. Deep layers are clipped by the
    image: their edges must then sit on the border. ResNet-101/152 use their own fresh weights
    (no zero gain in a fresh preset) to skip re-drawing 45-60 M parameters."""
    model = presets[name]()
    report = stridelab.inspect(model, (3, 32, 32))
    weights = "model" if name in ("resnet101", "resnet152") else "random"
    last = last_spatial(report)
    assert last is not None
    layers = None if os.environ.get("STRIDELAB_FUZZ") else [last.name]
    result = report.verify(model, samples=1, weights=weights, layers=layers)
    assert result.ok, str(result)
    assert len(result.checks) >= 4


def test_zero_initialised_residuals_need_random_weights() -> None:
    model = snn_resnet18(zero_init_residual=True)
    report = stridelab.inspect(model, (3, 48, 48))
    deep = ["layer1.1.relu#2"]
    own = report.verify(model, weights="model", layers=deep, units=[(6, 6)])
    assert own.checks[0].status == "loose"  # the zeroed bn2 hides the 3x3 branch from autograd
    assert own.checks[0].contained
    fresh = report.verify(model, weights="random", layers=deep, units=[(6, 6)])
    assert fresh.ok
    assert float(model.layer1[1].bn2.weight.detach().abs().sum()) == 0.0  # the model is untouched


def _with_field(report: stridelab.inspect.Report, name: str, grow: int
                ) -> stridelab.inspect.Report:
    layers = []
    for record in report.layers:
        if record.name == name:
            field = record.receptive_field
            record = dataclasses.replace(record, receptive_field=stridelab.arith.ReceptiveField(
                tuple(s + 2 * grow for s in field.size), field.stride,
                tuple(p + grow for p in field.padding)))
        layers.append(record)
    return stridelab.inspect.Report(report.model_name, report.input_size, report.batch_size,
                                    report.device, layers, report.field, report.params,
                                    report.diagnostics, report.capture)


def test_wrong_fields_are_caught() -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, 2, 1))
    report = stridelab.inspect(model, (1, 20, 20))
    assert report.verify(model, layers="2").ok
    small = _with_field(report, "2", -1).verify(model, layers="2", units=[(5, 5)])
    assert small.checks[0].status == "outside" and not small.ok
    large = _with_field(report, "2", 1).verify(model, layers="2", units=[(5, 5)])
    assert large.checks[0].status == "loose" and large.checks[0].contained
    assert large.checks[0].measured == ((8, 12), (8, 12))  # 5x5/2 p2: 2u - 2 .. 2u + 2
    assert large.checks[0].expected == ((7, 13), (7, 13))


class SqueezeExcite(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(8, 8, 1), nn.Sigmoid())
        self.out = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.out(y * self.gate(y))


def test_global_context_is_reported_not_failed() -> None:
    model = SqueezeExcite()
    report = stridelab.inspect(model, (3, 24, 24))
    for record in report.layers:  # set by the inspector when it knows; set here otherwise
        if record.name in ("mul", "out") and not getattr(record, "global_context", False):
            object.__setattr__(record, "global_context", True)
    result = report.verify(model, layers=["conv", "out"], units=[(12, 12)])
    by_layer = {c.layer: c for c in result.checks}
    assert by_layer["conv"].status == "ok"
    gated = by_layer["out"]
    assert gated.status == "global" and result.ok
    assert gated.measured == ((0, 23), (0, 23))  # the gate reads every pixel
    assert not gated.contained  # ... which the local field (5x5) does not cover


def test_fractional_fields_of_a_unet() -> None:
    from tests.inspect import models
    model = models.UNet()
    report = stridelab.inspect(model, (3, 32, 32))
    result = report.verify(model, layers="all", samples=1)
    assert all(c.contained for c in result.checks), str(result)


def test_one_and_three_axes_and_dropped_pixels() -> None:
    # a 1x1/2 conv on 6 reads 0, 2, 4 and drops pixel 5; then a 3-wide conv, padding 1: unit 2
    # has the Distill region 2..6, of which 5 was dropped and 6 is padding
    one = nn.Sequential(nn.Conv1d(1, 4, 1, 2), nn.ReLU(), nn.Conv1d(4, 4, 3, 1, 1))
    report = stridelab.inspect(one, (1, 6))
    result = report.verify(one, layers="all", units=[0, 2])
    assert result.ok, str(result)
    last = [c for c in result.checks if c.layer == "2" and c.unit == (2,)][0]
    assert last.region == ((2.0, 6.0),) and last.clipped == (True,)
    assert last.measured == last.expected == ((2, 4),)
    three = nn.Sequential(nn.Conv3d(1, 2, 3, (1, 2, 2), 1), nn.ReLU(), nn.Conv3d(2, 2, 3))
    assert stridelab.inspect(three, (1, 8, 12, 12)).verify(three).ok


def test_defaults_and_json() -> None:
    assert default_units((7, 5)) == [(3, 2), (0, 0), (0, 4), (6, 0), (6, 4)]
    assert default_units((1, 1)) == [(0, 0)]
    model = snn_resnet18()
    report = stridelab.inspect(model, (3, 64, 64))
    names = default_layers(report)
    assert names[0] == "conv1" and names[-1] == "layer4.1.relu#2"
    assert names == ["conv1", "relu", "layer1.1.relu#2", "layer2.1.relu#2", "layer3.1.relu#2",
                     "layer4.1.relu#2"]  # the first conv, the end of every stride level
    result = report.verify(model, layers=["conv1"], units=[(0, 0), (16, 16)])
    data = json.loads(result.to_json())
    assert data["schema"] == "stridelab.verify" and data["ok"] is True
    first = data["checks"][0]
    assert first["expected"] == [[0, 3], [0, 3]] and first["clipped"] == [True, True]
    assert first["region"] == [[-3.0, 3.0], [-3.0, 3.0]]
    text = str(result)
    assert "conv1" in text and "Gradient box" in text and "contained and tight" in text


def test_bad_arguments() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten())
    report = stridelab.inspect(model, (1, 8, 8))
    with pytest.raises(ValueError, match="weights must be one of"):
        report.verify(model, weights="trained")
    with pytest.raises(ValueError, match="device"):
        report.verify(model, device="meta")
    with pytest.raises(ValueError, match="outside layer 0"):
        report.verify(model, layers="0", units=[(6, 0)])
    with pytest.raises(TypeError, match="tuples of 2 ints"):
        report.verify(model, layers="0", units=[(1,)])
    with pytest.raises(ValueError, match="no spatial map"):
        report.verify(model, layers="1")
    with pytest.raises(KeyError, match="no layer named"):
        report.verify(model, layers="conv")
    with pytest.raises(ValueError, match="samples"):
        report.verify(model, samples=0)
    other = nn.Sequential(nn.Conv2d(1, 2, 5), nn.Flatten())
    with pytest.raises(ValueError, match="spatial shape"):
        report.verify(other, layers="0")


def test_cli_verify(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "cifar_resnet20", "--input", "3x32x32", "--verify", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True and len(data["checks"]) >= 10
    assert main(["inspect", "cifar_resnet20", "--verify", "--csv"]) == 2
    assert "--verify" in capsys.readouterr().err
