"""`make pictures`: regenerate the three pictures of the README in docs/images/.

* conv_stride2.gif: a 5x5 input, kernel 3, stride 2, padding 1, step by step (stridelab.viz.animate).
* receptive_field.png: what one unit of ResNet-18's layer3 sees, over scikit-learn's sample photo
  china.jpg (centre-cropped to a square, resized to 224x224), with the grid of unit centres.
* size_pyramid.png: feature-map size and channels per stage of the ResNet-50 plan at 224.

Everything is computed offline (no downloads, untrained models: only shapes matter). Each file
must stay under 300 KB; the script fails loudly if one does not.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

from stridelab.nn import imagenet_plan, resnet18
from stridelab.viz import animate, receptive_field_overlay, size_pyramid
from stridelab.viz.animate import atomic_save
from stridelab.viz.overlay import OVERLAY_COLORS, load_image

IMAGES = Path(__file__).resolve().parent.parent / "docs" / "images"
MAX_BYTES = 300 * 1024


def sample_square() -> Image.Image:
    """china.jpg, centre-cropped to a square (the model input is resized from it)."""
    photo = load_image(None)
    side = min(photo.size)
    left, top = (photo.width - side) // 2, (photo.height - side) // 2
    return photo.crop((left, top, left + side, top + side))


def keep_colours_quantized(picture: Image.Image) -> Image.Image:
    """A 256-colour version of ``picture`` (a third of the bytes) if it keeps the overlay's exact
    box and dot colours, else ``picture`` itself."""
    small = picture.quantize(colors=256, method=Image.Quantize.FASTOCTREE)
    colours = {rgb for _count, rgb in small.convert("RGB").getcolors(maxcolors=1 << 16) or []}
    marks = {OVERLAY_COLORS[name] for name in ("box", "centre", "selected")}
    return small if marks <= colours else picture


def main() -> int:
    IMAGES.mkdir(parents=True, exist_ok=True)
    written = []
    gif = IMAGES / "conv_stride2.gif"
    animate(5, 3, stride=2, padding=1, path=gif, frame_ms=900)
    written.append(gif)

    overlay = receptive_field_overlay(resnet18(), "layer3", sample_square(), (6, 4),
                                      input_size=(3, 224, 224), scale=2)
    field_png = IMAGES / "receptive_field.png"
    small = keep_colours_quantized(overlay)
    atomic_save(field_png, lambda tmp: small.save(tmp, format="PNG", optimize=True))
    written.append(field_png)

    written.append(size_pyramid(imagenet_plan(50), IMAGES / "size_pyramid.png",
                                input_size=224))

    too_big = False
    for path in written:
        size = path.stat().st_size
        print(f"wrote {path.relative_to(IMAGES.parent.parent)} ({size / 1024:.0f} KB)")
        too_big |= size > MAX_BYTES
    if too_big:
        print(f"error: a picture is over {MAX_BYTES // 1024} KB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
