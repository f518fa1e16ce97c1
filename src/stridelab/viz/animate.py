"""Sliding-kernel animations: a GIF (one frame per output position) or a PNG frame strip.

    >>> from stridelab.viz import animate
    >>> result = animate((5, 7), 3, stride=2, padding=1, path="conv.gif")  # doctest: +SKIP

Geometry comes from :mod:`stridelab.viz.geometry` (i.e. from :mod:`stridelab.arith`), numbers
(``values=True``) from :mod:`stridelab.ops`, pixels from :mod:`stridelab.viz.render` (Pillow).
Nothing here imports torch or matplotlib.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from stridelab.arith import PaddingSpec
from stridelab.viz.geometry import FramePlan, animation_frames, conv_spec
from stridelab.viz.render import Layout, Renderer, to_palette
from stridelab.viz.values import FrameValues, frame_values

FORMATS = ("gif", "png")


@dataclass(frozen=True)
class Animation:
    """What :func:`animate` drew: the frame plan, pixel layout, values and the frames (RGB)."""

    plan: FramePlan
    layout: Layout
    values: FrameValues | None
    frames: tuple[Image.Image, ...]
    path: Path | None = None


def format_for(path: str | os.PathLike[str], fmt: str | None) -> str:
    """``fmt`` if given, else the suffix of ``path`` (``.gif`` / ``.png``)."""
    if fmt is None:
        fmt = Path(path).suffix.lower().lstrip(".")
        if fmt not in FORMATS:
            raise ValueError(f"format: cannot tell from the file name {str(path)!r}; pass format "
                             f"one of {FORMATS} (or name the file .gif / .png)")
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    return fmt


def frame_strip(frames: Sequence[Image.Image], columns: int = 4) -> Image.Image:
    """All frames on one sheet, ``columns`` per row, in order (left to right, top to bottom)."""
    if isinstance(columns, bool) or not isinstance(columns, int) or columns < 1:
        raise ValueError(f"columns must be an int >= 1, got {columns!r}")
    width, height = frames[0].size
    cols = min(columns, len(frames))
    rows = -(-len(frames) // cols)
    sheet = Image.new("RGB", (cols * width, rows * height), (255, 255, 255))
    for n, frame in enumerate(frames):
        sheet.paste(frame, ((n % cols) * width, (n // cols) * height))
    return sheet


def _current_umask() -> int:
    """The process umask: read from ``/proc/self/status`` where it exists (Linux; no change to
    process state), else by setting and at once restoring it with ``os.umask``."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_save(path: Path, save: Callable[[str], None]) -> None:
    """Write through a temporary file in the same directory, then ``os.replace``.

    ``save(tmp_path)`` writes the content. The file gets the permissions of a normally created
    file (``0o666`` minus the umask), not the private ``0o600`` of :func:`tempfile.mkstemp`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save(tmp)
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_gif(frames: Sequence[Image.Image], path: Path, frame_ms: int) -> None:
    """Looping GIF; the last frame stays three times as long."""
    paletted = [to_palette(f) for f in frames]
    durations = [frame_ms] * (len(frames) - 1) + [frame_ms * 3]

    def save(tmp: str) -> None:
        paletted[0].save(tmp, format="GIF", save_all=True, append_images=paletted[1:],
                         duration=durations if len(frames) > 1 else frame_ms * 3, loop=0,
                         optimize=False, disposal=1)
    atomic_save(path, save)


def save_png(image: Image.Image, path: Path) -> None:
    atomic_save(path, lambda tmp: to_palette(image).save(tmp, format="PNG", optimize=True))


def animate(
    input_size: int | Sequence[int], kernel: int | Sequence[int], stride: int | Sequence[int] = 1,
    padding: PaddingSpec = 0, dilation: int | Sequence[int] = 1, *, transposed: bool = False,
    output_padding: int | Sequence[int] = 0, values: bool = False,
    path: str | os.PathLike[str] | None = None, format: str | None = None, frame_ms: int = 700,
    columns: int = 4, cell: int | None = None,
) -> Animation:
    """Draw a 2-D (transposed) convolution step by step and optionally write it to ``path``.

    Sizes are ints (both axes) or ``(height, width)`` pairs; ``padding`` takes every form of
    :func:`stridelab.arith.padding_pairs` (strings for convolution only). ``values=True`` prints
    a small deterministic example in the cells, computed by :mod:`stridelab.ops`. ``format`` is
    ``"gif"`` (animation, ``frame_ms`` per frame) or ``"png"`` (a strip of every frame,
    ``columns`` per row); by default it follows the suffix of ``path``. ``cell`` forces the
    pixels per cell (default: chosen from the grid size).
    """
    if not isinstance(values, bool):
        raise TypeError(f"values must be True or False, got {values!r}")
    if isinstance(frame_ms, bool) or not isinstance(frame_ms, int) or not 20 <= frame_ms <= 10000:
        raise ValueError(f"frame_ms must be an int in [20, 10000], got {frame_ms!r}")
    if cell is not None and (isinstance(cell, bool) or not isinstance(cell, int)
                             or not 8 <= cell <= 80):
        raise ValueError(f"cell must be an int in [8, 80] pixels, got {cell!r}")
    fmt = format_for(path, format) if path is not None else None
    spec = conv_spec(input_size, kernel, stride, padding, dilation, transposed=transposed,
                     output_padding=output_padding)
    plan = animation_frames(spec)
    vals = frame_values(plan) if values else None
    renderer = Renderer(plan, vals, cell)
    frames = tuple(renderer.frame(n) for n in range(len(plan.frames)))
    target = None
    if path is not None:
        target = Path(path)
        if fmt == "gif":
            save_gif(frames, target, frame_ms)
        else:
            save_png(frame_strip(frames, columns), target)
    return Animation(plan, renderer.layout, vals, frames, target)


__all__ = ["FORMATS", "Animation", "animate", "atomic_save", "format_for", "frame_strip",
           "save_gif", "save_png"]
