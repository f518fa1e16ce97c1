"""``stridelab.effective_field``: defaults, inputs, errors, JSON, the ``erf`` CLI and the pictures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import stridelab
from stridelab.cli import main


def small_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 8, 3, 1, 1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))


def test_defaults_are_the_last_map_and_its_centre() -> None:
    erf = stridelab.effective_field(small_net(), (3, 24, 24), samples=4)
    assert erf.layer == "3" and erf.unit == (6, 6)  # the 1x1 global pool is skipped
    assert erf.field.size == (7, 7) and erf.field.stride == (2, 2)
    assert erf.map.shape == (24, 24) and erf.map.sum() == pytest.approx(1.0)
    # the map lives inside the unit's theoretical region 9..15
    rows = np.nonzero(erf.map.sum(1))[0]
    assert rows.min() >= 9 and rows.max() <= 15
    assert erf.region == ((9.0, 15.0), (9.0, 15.0)) and erf.clipped == (False, False)
    assert 0 < erf.ratio[0] <= 1
    text = erf.summary()
    assert "95% / theory" in text and "theoretical     7x7 px" in text


def test_inputs_dataset_and_tensor_and_modules_by_name() -> None:
    model = small_net()
    digits = stridelab.effective_field(model, (3, 16, 16), inputs="dataset", samples=3,
                                       layer="0")
    assert digits.inputs == "dataset" and digits.samples == 3
    given = torch.randn(5, 3, 16, 16)
    erf = stridelab.effective_field(model, (3, 16, 16), inputs=given, layer="0", unit=(2, 3))
    assert erf.samples == 5 and erf.inputs == "given" and erf.unit == (2, 3)
    # layer 0 (3x3/2 p1): unit (2, 3) sees rows 3..5, columns 5..7 exactly
    assert np.nonzero(erf.map.sum(1))[0].tolist() == [3, 4, 5]
    assert np.nonzero(erf.map.sum(0))[0].tolist() == [5, 6, 7]
    from stridelab.nn import resnet18
    by_module = stridelab.effective_field(resnet18(), (3, 32, 32), layer="layer1", samples=1)
    assert by_module.layer == "layer1.1.relu#2"


def test_json_and_errors() -> None:
    model = small_net()
    erf = stridelab.effective_field(model, (3, 16, 16), samples=2)
    data = json.loads(erf.to_json())
    assert data["schema"] == "stridelab.erf" and data["field"]["size"] == [7, 7]
    assert "map" not in data and len(json.loads(erf.to_json(include_map=True))["map"]) == 16
    with pytest.raises(ValueError, match="inputs must be"):
        stridelab.effective_field(model, (3, 16, 16), inputs="photos")
    with pytest.raises(ValueError, match="inputs tensor"):
        stridelab.effective_field(model, (3, 16, 16), inputs=torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match="outside layer"):
        stridelab.effective_field(model, (3, 16, 16), unit=(8, 0))
    with pytest.raises(TypeError, match="tuple of 2 ints"):
        stridelab.effective_field(model, (3, 16, 16), unit=(1,))
    with pytest.raises(ValueError, match="no spatial map"):
        stridelab.effective_field(model, (3, 16, 16), layer="5")
    with pytest.raises(ValueError, match="samples"):
        stridelab.effective_field(model, (3, 16, 16), samples=0)
    with pytest.raises(ValueError, match="device"):
        stridelab.effective_field(model, (3, 16, 16), device="meta")
    with pytest.raises(ValueError, match="2-D input"):
        stridelab.effective_field(nn.Conv1d(1, 1, 3), (1, 9), inputs="dataset")


def test_cli_erf_json_plot_and_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    png = tmp_path / "erf.png"
    assert main(["erf", "cifar_resnet20", "--input", "3x32x32", "--samples", "2",
                 "--plot", str(png)]) == 0
    out = capsys.readouterr()
    assert "effective receptive field" in out.out and "95% extent" in out.out
    with Image.open(png) as picture:
        assert picture.size[0] > 800 and picture.size[1] > 400
    assert main(["erf", "cifar_resnet20", "--input", "3x32x32", "--samples", "1",
                 "--unit", "0,0", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["unit"] == [0, 0] and data["clipped"] == [True, True]
    for bad in (["--unit", "a,b"], ["--unit", "99,0"], ["--samples", "0"],
                ["--plot", "x.jpg"], ["--layer", "nope"]):
        assert main(["erf", "cifar_resnet20", "--input", "3x32x32", *bad]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err


def test_pictures_1d_2d_and_photo_overlay(tmp_path: Path) -> None:
    from stridelab.viz.erf import effective_field_overlay, effective_field_plot, mass_levels
    heat = np.array([[0.0, 0.1], [0.2, 0.7]])
    assert mass_levels(heat, (0.68, 0.95)) == [0.7, 0.1]  # 0.7 alone; 0.7 + 0.2 + 0.1
    one = stridelab.effective_field(nn.Conv1d(1, 1, 5, padding=2), (1, 20), samples=1)
    effective_field_plot(one, tmp_path / "one.png")
    two = stridelab.effective_field(small_net(), (3, 16, 16), samples=2)
    effective_field_plot(two, tmp_path / "two.png")
    effective_field_overlay(small_net(), input_size=(3, 48, 64), samples=2,
                            path=tmp_path / "photo.png")
    for name in ("one.png", "two.png", "photo.png"):
        with Image.open(tmp_path / name) as picture:
            assert picture.format == "PNG"
            colours = np.asarray(picture.convert("RGB")).reshape(-1, 3)
            assert len(np.unique(colours, axis=0)) > 50  # not blank
        assert oct((tmp_path / name).stat().st_mode & 0o777) == "0o644"
