"""`stridelab.viz.receptive_field_overlay`: the drawn box equals ReceptiveField.start/end, the
dots are the layer's output positions.

Oracles: the Distill recurrences worked by hand for a two-conv toy, and torch autograd (the input
pixels an output unit depends on) for the box; the layer's output shape for the number of dots.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from stridelab import inspect
from stridelab.nn import resnet18
from stridelab.viz import receptive_field_overlay
from stridelab.viz.overlay import BOX_WIDTH, OVERLAY_COLORS, load_image


def toy() -> torch.nn.Sequential:
    """conv 3x3/2 pad 1, ReLU, conv 3x3/2 pad 1: field 7, stride 4, padding 3 (Distill)."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, 2, 1), torch.nn.ReLU(),
                               torch.nn.Conv2d(4, 4, 3, 2, 1))


def grey(size: int = 32) -> np.ndarray:
    return np.full((size, size, 3), 100, dtype=np.uint8)


def mask_of(picture: Image.Image, color: tuple[int, int, int]) -> np.ndarray:
    return np.all(np.asarray(picture) == np.array(color, dtype=np.uint8), axis=-1)


def bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) inclusive of the True pixels."""
    rows, cols = np.nonzero(mask)
    return int(rows.min()), int(cols.min()), int(rows.max()), int(cols.max())


def torch_box(model: torch.nn.Module, size: int, index: tuple[int, int]) -> tuple[int, ...]:
    """Bounding box of the input pixels output ``index`` depends on (all-positive weights)."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.weight.fill_(1.0)
                assert module.bias is not None
                module.bias.fill_(1.0)
    x = torch.ones(1, 3, size, size, requires_grad=True)
    model(x)[0, 0, index[0], index[1]].backward()
    assert x.grad is not None
    return bbox(x.grad[0, 0].numpy() != 0)


@pytest.mark.parametrize(("index", "expected"), [((2, 3), (5, 9, 11, 15)), ((0, 0), (0, 0, 3, 3)),
                                                 ((7, 7), (25, 25, 31, 31))])
def test_toy_box_equals_field_start_end(index: tuple[int, int],
                                        expected: tuple[int, int, int, int]) -> None:
    model = toy()
    picture = receptive_field_overlay(model, "2", grey(), index, caption=False)
    assert picture.size == (32, 32)
    field = inspect(model, input_size=(3, 32, 32)).field_at("2")
    assert (field.size, field.stride, field.padding) == ((7, 7), (4, 4), (3, 3))
    start, end = field.start(index), field.end(index)
    assert isinstance(start, tuple) and isinstance(end, tuple)
    clipped = (max(start[0], 0), max(start[1], 0), min(end[0], 31), min(end[1], 31))
    assert clipped == expected == torch_box(toy(), 32, index)
    box = mask_of(picture, OVERLAY_COLORS["box"])
    # every box pixel lies on the expected border ring, which it spans exactly ...
    assert bbox(box) == expected
    top, left, bottom, right = expected
    ring = np.zeros_like(box)
    ring[top:bottom + 1, left:right + 1] = True
    ring[top + BOX_WIDTH:bottom + 1 - BOX_WIDTH, left + BOX_WIDTH:right + 1 - BOX_WIDTH] = False
    assert not (box & ~ring).any()
    # ... and covers it except where a centre dot is drawn on top
    dots = mask_of(picture, OVERLAY_COLORS["centre"]) | mask_of(picture, OVERLAY_COLORS["selected"])
    assert (box | dots)[ring].all()
    assert box[ring].mean() > 0.5


def test_toy_dots_are_the_output_positions() -> None:
    picture = receptive_field_overlay(toy(), "2", grey(), (2, 3), caption=False)
    centre = mask_of(picture, OVERLAY_COLORS["centre"])
    selected = mask_of(picture, OVERLAY_COLORS["selected"])
    _, n_centre = ndimage.label(centre)
    labels, n_selected = ndimage.label(selected)
    assert n_centre + n_selected == 8 * 8  # output of the toy on 32x32
    assert n_selected == 1
    rows, cols = np.nonzero(labels == 1)
    # centre of unit (2, 3): u * S - P + (r - 1) / 2 = (8, 12)
    assert (round(rows.mean()), round(cols.mean())) == (8, 12)


def test_resnet18_box_on_a_photo_crop(tmp_path: Path) -> None:
    photo = load_image(None)
    assert photo.size == (640, 427)  # scikit-learn's china.jpg, shipped with the package
    crop = np.asarray(photo)[100:164, 300:364]
    model = resnet18()
    path = tmp_path / "rf.png"
    picture = receptive_field_overlay(model, "layer2.1.conv2", crop, (5, 2), path=path,
                                      caption=False)
    field = inspect(model, input_size=(3, 64, 64)).field_at("layer2.1.conv2")
    start, end = field.start((5, 2)), field.end((5, 2))
    assert isinstance(start, tuple) and isinstance(end, tuple)
    expected = (max(start[0], 0), max(start[1], 0), min(end[0], 63), min(end[1], 63))
    assert bbox(mask_of(picture, OVERLAY_COLORS["box"])) == expected
    with Image.open(path) as saved:
        assert saved.format == "PNG" and saved.size == (64, 64)


def test_container_name_means_its_output() -> None:
    report = inspect(resnet18(), input_size=(3, 64, 64))
    last = [layer.name for layer in report.layers if layer.name.startswith("layer3.")][-1]
    picture = receptive_field_overlay(resnet18(), "layer3", grey(64), (1, 1), caption=False)
    field = report.field_at(last)
    start = field.start((1, 1))
    assert isinstance(start, tuple)
    assert bbox(mask_of(picture, OVERLAY_COLORS["box"]))[:2] == (max(start[0], 0),
                                                                max(start[1], 0))


def test_image_forms_and_resize(tmp_path: Path) -> None:
    path = tmp_path / "in.png"
    Image.fromarray(grey(40)).save(path)
    for image in (path, str(path), Image.fromarray(grey(40)), grey(40)[:, :, 0],
                  grey(40).astype(np.float32) / 255.0):
        picture = receptive_field_overlay(toy(), "2", image, (0, 0), input_size=(3, 32, 32),
                                          caption=False)
        assert picture.size == (32, 32)
    with_caption = receptive_field_overlay(toy(), "2", grey(), (1, 1), scale=4)
    assert with_caption.width == 128 and with_caption.height > 128


@pytest.mark.parametrize(("kwargs", "error", "word"), [
    ({"image": "no/such/file.png"}, OSError, "image: cannot read"),
    ({"image": 3.5}, TypeError, "image"),
    ({"index": (8, 0)}, ValueError, "index"),
    ({"index": 3}, TypeError, "index"),
    ({"layer": "nope"}, KeyError, "nope"),
    ({"input_size": (32, 32)}, ValueError, "input_size"),
    ({"scale": 0}, ValueError, "scale"),
])
def test_bad_input(kwargs: dict[str, object], error: type[Exception], word: str) -> None:
    args: dict[str, object] = {"layer": "2", "image": grey(), "index": (0, 0)}
    args.update(kwargs)
    with pytest.raises(error, match=word):
        receptive_field_overlay(toy(), **args)  # type: ignore[arg-type]
