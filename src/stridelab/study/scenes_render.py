"""Drawing primitives of the scenes (NumPy and Pillow): digit strokes, clutter strokes, pasting.

:func:`render_digit`: the 8x8 scan (cropped to its inked columns, zero border added) is resampled
bicubically to :data:`SUPERSAMPLE` x the target resolution, a smoothstep contrast curve turns the
grey blur into strokes with sharp edges, and a box filter brings it to the target size
(anti-aliased edges). A 6-pixel digit keeps only a hint of its strokes, a 32-pixel one has crisp
ones: the detail a stride can lose. A digit's mask is ``shape >= 0.5`` of the rendered shape.
"""

from __future__ import annotations

import numpy as np

SUPERSAMPLE = 4
#: the smoothstep contrast curve that turns the bicubic blur of a scan into strokes
STROKE_LOW, STROKE_HIGH = 0.4, 0.6


def smoothstep(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """0 below ``low``, 1 above ``high``, ``3t^2 - 2t^3`` in between (t rescaled to [0, 1])."""
    t = np.clip((values - low) / (high - low), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def resample(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bicubic resampling of a float 2-D array (Pillow, mode 'F'; antialiased when shrinking)."""
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(array, dtype=np.float32), mode="F")
    resized = image.resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(resized, dtype=np.float32)


def box_downsample(array: np.ndarray, factor: int) -> np.ndarray:
    """Mean over ``factor`` x ``factor`` blocks (area resampling; a trailing remainder is cut)."""
    h, w = array.shape[0] // factor, array.shape[1] // factor
    blocks = array[:h * factor, :w * factor].reshape(h, factor, w, factor)
    return np.asarray(blocks.mean(axis=(1, 3)), dtype=np.float32)


def render_digit(scan: np.ndarray, height: int) -> np.ndarray:
    """Render an 8x8 scan (values in [0, 1]) as strokes ``height`` pixels tall.

    Returns the shape in [0, 1] with peak 1, including a margin of about one source pixel; the
    digit's mask is ``shape >= 0.5``. See the module docstring for the method.
    """
    inked = np.flatnonzero(scan.max(axis=0) > 0.0)
    cropped = scan[:, inked[0]:inked[-1] + 1] if inked.size else scan
    padded = np.pad(cropped, 1)
    scale = height / 8.0
    out_h = max(1, int(round(padded.shape[0] * scale)))
    out_w = max(1, int(round(padded.shape[1] * scale)))
    fine = resample(padded, out_h * SUPERSAMPLE, out_w * SUPERSAMPLE)
    strokes = smoothstep(fine, STROKE_LOW, STROKE_HIGH)
    shape = box_downsample(strokes, SUPERSAMPLE)
    peak = float(shape.max())
    return shape / peak if peak > 0 else shape


def stroke_fragment(rng: np.random.Generator, length: float) -> np.ndarray:
    """A curved stroke (quadratic Bezier, about ``length`` pixels across) that is not a digit,
    drawn at SUPERSAMPLE x resolution and box-filtered down; peak about 1."""
    size = int(np.ceil(length)) + 4
    fine = size * SUPERSAMPLE
    points = rng.uniform(2 * SUPERSAMPLE, fine - 2 * SUPERSAMPLE, size=(3, 2))
    t = np.linspace(0.0, 1.0, 4 * size)[:, None]
    curve = ((1 - t) ** 2) * points[0] + 2 * (1 - t) * t * points[1] + (t ** 2) * points[2]
    axis = np.arange(fine, dtype=np.float32) + 0.5
    dy = (axis[None, :] - curve[:, 0:1]) ** 2  # (points, fine) squared row distances
    dx = (axis[None, :] - curve[:, 1:2]) ** 2
    nearest = (dy[:, :, None] + dx[:, None, :]).min(axis=0)
    width = rng.uniform(0.5, 1.0) * SUPERSAMPLE
    return box_downsample((nearest <= width ** 2).astype(np.float32), SUPERSAMPLE)


def round_window(height: int, width: int) -> np.ndarray:
    """1 at the centre, falling smoothly to 0 at the inscribed ellipse."""
    ys = (np.arange(height) + 0.5) / height * 2.0 - 1.0
    xs = (np.arange(width) + 0.5) / width * 2.0 - 1.0
    radius = np.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)
    return 1.0 - smoothstep(radius, 0.3, 1.0)


def paste_max(image: np.ndarray, patch: np.ndarray, top: int, left: int) -> None:
    """``image = max(image, patch)`` over the window at (top, left), clipped to the image."""
    h, w = image.shape
    y0, x0 = max(0, top), max(0, left)
    y1, x1 = min(h, top + patch.shape[0]), min(w, left + patch.shape[1])
    if y1 <= y0 or x1 <= x0:
        return
    window = patch[y0 - top:y1 - top, x0 - left:x1 - left]
    np.maximum(image[y0:y1, x0:x1], window, out=image[y0:y1, x0:x1])


def paste_mask(target: np.ndarray, mask: np.ndarray, top: int, left: int) -> None:
    h, w = target.shape
    y0, x0 = max(0, top), max(0, left)
    y1, x1 = min(h, top + mask.shape[0]), min(w, left + mask.shape[1])
    target[y0:y1, x0:x1] |= mask[y0 - top:y1 - top, x0 - left:x1 - left]


def dilate8(mask: np.ndarray) -> np.ndarray:
    out: np.ndarray = mask.copy()
    padded = np.pad(mask, 1)
    h, w = mask.shape
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            out |= padded[dy:dy + h, dx:dx + w]
    return out
