"""`stridelab.viz.size_pyramid`: a real PNG from a plan or a report, and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stridelab import arith, inspect
from stridelab.nn import cifar_plan, imagenet_plan, resnet18
from stridelab.viz import pyramid_stages, size_pyramid


def check_png(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 5 * 1024
    with Image.open(path) as image:
        assert image.format == "PNG"
        pixels = np.asarray(image.convert("L"), dtype=np.float64)
    assert pixels.std() > 10


def test_plan_pyramid(tmp_path: Path) -> None:
    path = size_pyramid(imagenet_plan(50), tmp_path / "p.png")
    assert path == tmp_path / "p.png"
    check_png(path)
    stages = pyramid_stages(imagenet_plan(50))
    # torchvision ResNet-50 at 224: stem 7x7/2 + max pool -> 56, then /1, /2, /2, /2
    assert [(s.channels, s.height) for s in stages] == [
        (64, 56), (256, 56), (512, 28), (1024, 14), (2048, 7)]


def test_plan_input_size_uses_arith(tmp_path: Path) -> None:
    stages = pyramid_stages(imagenet_plan(18), input_size=(3, 225, 161))
    stem = arith.pool_output_size(arith.conv_output_size((225, 161), 7, 2, 3), 3, 2, 1)
    assert (stages[0].height, stages[0].width) == stem
    check_png(size_pyramid(cifar_plan(20), tmp_path / "c.png", input_size=32))


def test_report_pyramid(tmp_path: Path) -> None:
    report = inspect(resnet18(), input_size=(3, 64, 64))
    stages = pyramid_stages(report)
    assert [(s.label, s.channels, s.height) for s in stages] == [
        ("conv1..relu", 64, 32), ("maxpool..layer1", 64, 16), ("layer2", 128, 8),
        ("layer3", 256, 4), ("layer4", 512, 2), ("avgpool", 512, 1)]
    check_png(size_pyramid(report, tmp_path / "r.png"))
    with pytest.raises(ValueError, match="input_size"):
        size_pyramid(report, tmp_path / "x.png", input_size=224)


@pytest.mark.parametrize("bad", [None, "resnet50", 3, {"stages": []}])
def test_bad_input_names_the_parameter(bad: object, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="plan_or_report"):
        size_pyramid(bad, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_bad_path(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="path"):
        size_pyramid(imagenet_plan(18), 42)  # type: ignore[arg-type]
