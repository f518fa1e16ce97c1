"""The region one unit of a layer sees, and the grid of effective-stride centres, over an image.

    >>> from stridelab.nn import resnet18
    >>> from stridelab.viz import receptive_field_overlay
    >>> receptive_field_overlay(resnet18(), "layer3", None, (7, 7),
    ...                         input_size=(3, 224, 224), path="rf.png")  # doctest: +SKIP

The field comes from :func:`stridelab.inspect` (``Report.field_at``), i.e. from the Distill
recurrences of :class:`stridelab.arith.ReceptiveField`: unit ``u`` of the layer sees input rows
``field.start(u)[0] .. field.end(u)[0]`` and columns ``field.start(u)[1] .. field.end(u)[1]``
(inclusive, in input pixels), centred at ``field.center(u)``. Pixels, not "cells": one input
pixel of the model is one pixel of the picture (times ``scale``).

torch is imported only when a model is inspected; Pillow draws.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from stridelab.arith import ReceptiveField

if TYPE_CHECKING:
    from stridelab.inspect import Report

RGB = tuple[int, int, int]

OVERLAY_COLORS: dict[str, RGB] = {
    "box": (255, 40, 40),        # outline of the unit's receptive field (clipped to the image)
    "centre": (0, 235, 255),     # centres of every unit of the layer (effective-stride grid)
    "selected": (255, 235, 0),   # centre of the chosen unit
    "caption": (20, 20, 20),
    "band": (255, 255, 255),
}
BOX_WIDTH = 2
LINE_HEIGHT = 16

ImageLike = str | os.PathLike[str] | Image.Image | np.ndarray


@dataclass(frozen=True)
class OverlayGeometry:
    """What the overlay draws, in input pixels ``(row, column)``.

    ``start`` / ``end``: the unit's receptive field, inclusive, unclipped (may lie outside the
    image: that part is padding). ``box``: the field clipped to the image, ``(top, left, bottom,
    right)`` inclusive. ``centres``: ``field.center(u)`` for every output position ``u`` of the
    layer, row-major. ``output_size``: the layer's spatial output ``(height, width)``.
    """

    layer: str
    index: tuple[int, int]
    field: ReceptiveField
    image_size: tuple[int, int]
    output_size: tuple[int, int]
    start: tuple[Fraction, Fraction]
    end: tuple[Fraction, Fraction]
    box: tuple[int, int, int, int]
    centres: tuple[tuple[Fraction, Fraction], ...]

    @property
    def clipped(self) -> bool:
        """True when part of the field lies in padding, outside the image."""
        h, w = self.image_size
        return (self.start[0] < 0 or self.start[1] < 0 or self.end[0] > h - 1
                or self.end[1] > w - 1)


def load_image(image: ImageLike | None) -> Image.Image:
    """An RGB image from a path, a PIL image or an ``HxW`` / ``HxWxC`` array (C = 1, 3 or 4).

    ``None`` loads scikit-learn's sample photograph ``china.jpg`` (shipped with the package, no
    download). Float arrays with values in ``[0, 1]`` are scaled to ``0..255``.
    """
    if image is None:
        from sklearn.datasets import load_sample_image
        return Image.fromarray(load_sample_image("china.jpg")).convert("RGB")
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, (str, os.PathLike)):
        try:
            with Image.open(image) as opened:
                converted: Image.Image = opened.convert("RGB")
        except OSError as err:  # missing file, or not an image Pillow can read
            raise OSError(f"image: cannot read {str(image)!r} as a picture: {err}") from None
        return converted
    if isinstance(image, np.ndarray):
        array = image
        if array.ndim == 3 and array.shape[2] in (1, 3, 4):
            array = array[:, :, 0] if array.shape[2] == 1 else array[:, :, :3]
        elif array.ndim != 2:
            raise ValueError(f"image array must be HxW or HxWxC with C in (1, 3, 4), got shape "
                             f"{array.shape}")
        if array.dtype.kind == "f":
            top = 1.0 if array.size and float(np.nanmax(array)) <= 1.0 else 255.0
            array = np.clip(np.nan_to_num(array) * (255.0 / top), 0, 255)
        elif array.dtype.kind not in "iub":
            raise TypeError(f"image array must hold numbers, got dtype {array.dtype}")
        return Image.fromarray(np.asarray(array, dtype=np.uint8)).convert("RGB")
    raise TypeError(f"image must be a file path, a PIL image, an HxW(xC) array or None (sample "
                    f"image), got {type(image).__name__}")


def _layer_name(report: Report, layer: str) -> str:
    """``layer`` itself if the report has it, else the last operator inside a module of that
    name (``"layer3"`` -> ``"layer3.1.relu#2"``, the output of the stage)."""
    if not isinstance(layer, str):
        raise TypeError(f"layer must be a layer name (str) from the inspect report, got "
                        f"{type(layer).__name__}")
    names = [record.name for record in report.layers]
    if layer in names:
        return layer
    inside = [name for name in names if name.startswith(layer + ".")]
    if inside:
        return inside[-1]
    report.field_at(layer)  # raises KeyError listing similar names
    return layer


def _index(index: Sequence[int] | None, output_size: tuple[int, int]) -> tuple[int, int]:
    if index is None:
        return output_size[0] // 2, output_size[1] // 2
    if (not isinstance(index, (tuple, list)) or len(index) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) for v in index)):
        raise TypeError(f"index must be a (row, column) pair of ints, got {index!r}")
    if not (0 <= index[0] < output_size[0] and 0 <= index[1] < output_size[1]):
        raise ValueError(f"index must lie in the layer's output of {output_size[0]}x"
                         f"{output_size[1]} positions, got {tuple(index)}")
    return index[0], index[1]


def _pair(value: object) -> tuple[Fraction, Fraction]:
    assert isinstance(value, tuple) and len(value) == 2
    return Fraction(value[0]), Fraction(value[1])


def overlay_geometry(report: Report, layer: str, index: Sequence[int] | None,
                     image_size: tuple[int, int]) -> OverlayGeometry:
    """Field, clipped box and centre grid of unit ``index`` of ``layer`` (see the class)."""
    name = _layer_name(report, layer)
    field = report.field_at(name)
    shape = report.layer(name).output_shape
    if field.ndim != 2 or len(shape) < 2:
        raise ValueError(f"layer {name!r} must have a 2-D spatial output to draw over an image, "
                         f"got output shape {shape}")
    output_size = (int(shape[-2]), int(shape[-1]))
    idx = _index(index, output_size)
    start, end = _pair(field.start(idx)), _pair(field.end(idx))
    h, w = image_size
    top, left = max(math.floor(start[0]), 0), max(math.floor(start[1]), 0)
    bottom, right = min(math.ceil(end[0]), h - 1), min(math.ceil(end[1]), w - 1)
    if top > bottom or left > right:
        raise ValueError(f"the field of unit {idx} of {name!r} lies entirely outside the image")
    centres = tuple(_pair(field.center((u, v)))
                    for u in range(output_size[0]) for v in range(output_size[1]))
    return OverlayGeometry(name, idx, field, image_size, output_size, start, end,
                           (top, left, bottom, right), centres)


def _spacing(field: ReceptiveField, scale: int) -> float:
    """Picture pixels between neighbouring centres."""
    return float(min(field.stride)) * scale


def _dot_radius(field: ReceptiveField, scale: int) -> int:
    spacing = _spacing(field, scale)
    return 0 if spacing < 4 else max(1, min(3, int(spacing - 2) // 4))


def draw_overlay(photo: Image.Image, geometry: OverlayGeometry, *, scale: int = 1,
                 caption: bool = True) -> Image.Image:
    """Draw ``geometry`` over ``photo`` (already at the model's input size)."""
    width, height = photo.size
    base = photo.resize((width * scale, height * scale), Image.Resampling.BILINEAR) \
        if scale != 1 else photo.copy()
    lines = caption_lines(geometry) if caption else []
    band = 6 + LINE_HEIGHT * len(lines) if lines else 0
    canvas = Image.new("RGB", (base.width, base.height + band), OVERLAY_COLORS["band"])
    canvas.paste(base, (0, 0))
    top, left, bottom, right = geometry.box
    x0, y0 = left * scale, top * scale
    x1, y1 = (right + 1) * scale - 1, (bottom + 1) * scale - 1
    # lighten the region a unit sees, then outline it (the outline lies on its border pixels)
    region = canvas.crop((x0, y0, x1 + 1, y1 + 1))
    canvas.paste(Image.blend(region, Image.new("RGB", region.size, (255, 255, 255)), 0.25),
                 (x0, y0))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((x0, y0, x1, y1), outline=OVERLAY_COLORS["box"], width=BOX_WIDTH)
    radius = _dot_radius(geometry.field, scale)
    chosen: tuple[int, int] | None = None
    for n, (row, col) in enumerate(geometry.centres):
        cx = math.floor((col + Fraction(1, 2)) * scale)
        cy = math.floor((row + Fraction(1, 2)) * scale)
        if not (0 <= cx < base.width and 0 <= cy < base.height):
            continue  # a centre in the padding: nothing to draw it on
        unit = divmod(n, geometry.output_size[1])
        if unit == geometry.index:
            chosen = (cx, cy)
        elif radius == 0:
            draw.point((cx, cy), fill=OVERLAY_COLORS["centre"])
        else:
            draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius),
                         fill=OVERLAY_COLORS["centre"])
    if chosen is not None:  # drawn last, larger when there is room, outlined in black
        cx, cy = chosen
        big = radius + 2 if _spacing(geometry.field, scale) >= 12 else radius
        draw.ellipse((cx - big, cy - big, cx + big, cy + big), fill=OVERLAY_COLORS["selected"],
                     outline=(0, 0, 0) if big >= 3 else None)
    if lines:
        _caption(draw, lines, canvas.width, base.height)
    return canvas


def _fmt(value: Fraction) -> str:
    return str(int(value)) if value.denominator == 1 else f"{float(value):.1f}"


def caption_lines(geometry: OverlayGeometry) -> list[str]:
    """The text under the picture: layer, unit, field extent, the dots, clipping."""
    field = geometry.field
    size = "x".join(_fmt(Fraction(v)) for v in field.size)
    stride = "x".join(_fmt(Fraction(v)) for v in field.stride)
    (r0, c0), (r1, c1) = geometry.start, geometry.end
    row, col = geometry.index
    lines = [f"{geometry.layer} unit ({row},{col}): field {size} px",
             f"rows {_fmt(r0)}..{_fmt(r1)}, cols {_fmt(c0)}..{_fmt(c1)} (red box)",
             f"dots: centres of all {geometry.output_size[0]}x{geometry.output_size[1]} units, "
             f"stride {stride} px"]
    if geometry.clipped:
        lines.append("part of the field is padding outside the image: clipped")
    return lines


def _caption(draw: ImageDraw.ImageDraw, lines: list[str], width: int, top: int) -> None:
    font = ImageFont.load_default(size=11 if width < 400 else 13)
    for n, line in enumerate(lines):
        draw.text((4, top + 3 + n * LINE_HEIGHT), line, fill=OVERLAY_COLORS["caption"], font=font)


def receptive_field_overlay(
    model: Any, layer: str, image: ImageLike | None = None, index: Sequence[int] | None = None,
    *, path: str | os.PathLike[str] | None = None, input_size: Sequence[int] | None = None,
    scale: int = 1, caption: bool = True,
) -> Image.Image:
    """Draw the receptive field of unit ``index`` of ``layer`` and the grid of unit centres.

    ``model``: a ``torch.nn.Module``, inspected on the meta device with
    ``stridelab.inspect(model, input_size=(C, H, W))``. ``layer``: a layer name of the inspect
    report (e.g. ``"layer3.1.conv2"``); a module that contains several operators (e.g.
    ``"layer3"``) means its last operator, the module's output. ``image``: a file path, a PIL
    image or an ``HxW(xC)`` array; ``None`` uses scikit-learn's sample photo ``china.jpg``.
    ``index``: ``(row, column)`` of the unit in the layer's output (default: the middle unit).
    ``input_size``: ``(C, H, W)`` given to the model; the image is resized to ``H x W`` (default:
    the image's own size, 3 channels).

    Drawn: a red outline around input pixels ``field.start(index) .. field.end(index)``
    (inclusive), lightened inside; the part of the field that lies outside the image is padding
    and is clipped: only the part inside the image is drawn (solid), and the caption says so.
    Dots: ``field.center(u)`` for every output position ``u`` of the layer (yellow for
    ``index``), spaced by the effective stride. One input pixel is ``scale`` picture pixels; a
    caption band is added below the image (``caption=False`` leaves it out). Written
    atomically to ``path`` (PNG) when given; returns the RGB picture.
    """
    from stridelab.inspect import inspect

    if isinstance(scale, bool) or not isinstance(scale, int) or not 1 <= scale <= 16:
        raise ValueError(f"scale must be an int in [1, 16], got {scale!r}")
    photo = load_image(image)
    if input_size is None:
        size = (3, photo.height, photo.width)
    else:
        if (not isinstance(input_size, (tuple, list)) or len(input_size) != 3
                or any(isinstance(v, bool) or not isinstance(v, int) or v < 1
                       for v in input_size)):
            raise ValueError(f"input_size must be (channels, height, width) of ints >= 1, got "
                             f"{input_size!r}")
        size = (input_size[0], input_size[1], input_size[2])
        if (photo.height, photo.width) != size[1:]:
            photo = photo.resize((size[2], size[1]), Image.Resampling.BICUBIC)
    report = inspect(model, input_size=size)
    geometry = overlay_geometry(report, layer, index, (size[1], size[2]))
    picture = draw_overlay(photo, geometry, scale=scale, caption=caption)
    if path is not None:
        from stridelab.viz.animate import atomic_save
        target = Path(path)
        atomic_save(target, lambda tmp: picture.save(tmp, format="PNG", optimize=True))
    return picture


__all__ = ["OVERLAY_COLORS", "OverlayGeometry", "draw_overlay", "load_image", "overlay_geometry",
           "receptive_field_overlay"]
