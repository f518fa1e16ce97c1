"""``scenes``: cluttered canvases of real handwritten digits with masks and boxes (NumPy only).

Each scene is a dark canvas (default 64x64) holding 1 to ``max_digits`` of scikit-learn's bundled
handwritten digits (1,797 real 8x8 scans, no download) at heights from about 6 to 32 pixels, at
random positions, over mild clutter: a smooth background, pixel noise and faint stroke fragments
that are *not* digits. Everything is deterministic from ``seed``.

Conventions (all coordinates in pixels of the canvas):

* ``images``: float32 ``(N, 1, H, W)`` in [0, 1]; ink is bright on a dark background, as in the
  source scans.
* ``masks``: int64 ``(N, H, W)``; 0 is background, ``1 + c`` a pixel of a digit of class ``c``.
* ``instances``: int64 ``(N, H, W)``; 0 is no object, ``1 + j`` a pixel of object ``j`` of that
  image (``boxes[i][j]``, ``labels[i][j]``).
* ``boxes[i]``: float32 ``(k, 4)``, ``x0, y0, x1, y1`` with ``x0, y0`` inclusive and ``x1, y1``
  exclusive, so ``x1 - x0`` is the width in pixels (COCO's ``bbox = [x0, y0, x1 - x0, y1 - y0]``).
  For scenes every box is the tight box of that digit's mask pixels.
* Overlaps: digits never share a mask pixel (a placement whose ink would touch another digit's ink,
  8-neighbourhood, is rejected), so every pixel has exactly one label; boxes may overlap by at most
  ``max_overlap`` of the smaller box's area.

Rendering (:func:`render_digit`): the 8x8 scan (cropped to its inked columns, zero border added) is
resampled bicubically to 4x the target resolution, a smoothstep contrast curve turns the grey blur
into strokes with sharp edges, and a 4x4 box filter brings it to the target size (anti-aliased
edges). A 6-pixel digit therefore keeps only a hint of its strokes, a 32-pixel one has crisp ones:
the detail a stride can lose. The mask is ``shape >= 0.5`` of the rendered (peak-normalized) shape.

Size buckets (:func:`area_thresholds`): COCO calls an object small below 32^2 and large above 96^2
pixels of area in images of about 640 pixels. Scaled literally to a 64-pixel canvas (factor 0.1) the
small bucket would end at a 3.2-pixel side, below the smallest legible digit, and nothing would be
small. We keep COCO's 1:3 ratio of side thresholds and scale them by ``canvas / 256``: small below
``(canvas / 8)^2`` and large from ``(3 * canvas / 8)^2``, i.e. 8^2 = 64 and 24^2 = 576 px^2 at 64
pixels. Digit sizes are drawn so that the three buckets are about equally frequent.

Train / val / test scenes draw their digits from disjoint sets of source scans (a fixed,
seed-independent split per class: 65 % / 10 % / 25 %), so no handwriting sample leaks between them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

import numpy as np

SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = {"train": 0.65, "val": 0.10, "test": 0.25}
SIZE_BUCKETS = ("small", "medium", "large")
DIGIT_CLASSES = tuple(str(i) for i in range(10))
#: COCO's side thresholds (32, 96 pixels) are applied at this canvas size; see the module docstring.
BUCKET_REFERENCE_CANVAS = 256
COCO_AREA_THRESHOLDS = (32.0 ** 2, 96.0 ** 2)
SUPERSAMPLE = 4
#: the smoothstep contrast curve that turns the bicubic blur of a scan into strokes
STROKE_LOW, STROKE_HIGH = 0.4, 0.6
_POOL_SEED = 20_131_017  # fixed: the train/val/test partition of the source scans never changes


def area_thresholds(canvas: int) -> tuple[float, float]:
    """(small / medium, medium / large) box-area thresholds in px^2 for a ``canvas``-pixel image.

    COCO's 32 and 96 pixel sides scaled by ``canvas / 256``: (64.0, 576.0) at 64 pixels.
    """
    if not isinstance(canvas, int) or isinstance(canvas, bool) or canvas < 1:
        raise ValueError(f"canvas must be a positive int; got {canvas!r}")
    scale = canvas / BUCKET_REFERENCE_CANVAS
    return (32.0 * scale) ** 2, (96.0 * scale) ** 2


def bucket_of_area(area: float, thresholds: tuple[float, float]) -> str:
    """'small' if ``area < thresholds[0]``, 'medium' if below ``thresholds[1]``, else 'large'
    (COCOeval's ranges: lower bound inclusive, upper exclusive)."""
    if area < thresholds[0]:
        return "small"
    return "medium" if area < thresholds[1] else "large"


def box_area(box: np.ndarray) -> float:
    """Area in px^2 of one ``x0, y0, x1, y1`` box (x1, y1 exclusive)."""
    return float(max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1]))


def tight_box(mask: np.ndarray) -> np.ndarray:
    """The ``x0, y0, x1, y1`` box (x1, y1 exclusive) of the True pixels of a 2-D mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ValueError("tight_box: the mask has no pixels")
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=np.float32)


@dataclass(frozen=True, eq=False)
class SceneSet:
    """Images with per-pixel class masks, instance masks, boxes and labels (see module docstring).

    ``area_thresholds`` are the small/medium and medium/large box-area limits in px^2 used by
    :meth:`size_bucket` and by the detection metrics' AP_small / AP_medium / AP_large.
    ``image_ids`` / ``category_ids`` are the COCO ids used when writing COCO JSON (1-based by
    default; a loaded COCO folder keeps its own).
    """

    images: np.ndarray
    masks: np.ndarray
    instances: np.ndarray
    boxes: list[np.ndarray]
    labels: list[np.ndarray]
    class_names: tuple[str, ...] = DIGIT_CLASSES
    area_thresholds: tuple[float, float] = (64.0, 576.0)
    image_ids: np.ndarray | None = None
    category_ids: tuple[int, ...] | None = None
    name: str = "scenes"
    file_names: tuple[str, ...] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.ndim != 4:
            raise ValueError(f"images must have shape (N, C, H, W); got {self.images.shape}")
        spatial = (n, *self.images.shape[2:])
        for label, array in (("masks", self.masks), ("instances", self.instances)):
            if array.shape != spatial:
                raise ValueError(f"{label} must have shape {spatial}; got {array.shape}")
        if len(self.boxes) != n or len(self.labels) != n:
            raise ValueError(f"boxes and labels need one entry per image ({n}); "
                             f"got {len(self.boxes)} and {len(self.labels)}")
        if self.image_ids is None:
            object.__setattr__(self, "image_ids", np.arange(1, n + 1, dtype=np.int64))
        if self.category_ids is None:
            object.__setattr__(self, "category_ids", tuple(range(1, len(self.class_names) + 1)))
        if len(self.category_ids or ()) != len(self.class_names):
            raise ValueError("category_ids needs one id per class name")

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int | slice | Sequence[int] | np.ndarray) -> SceneSet:
        """A new SceneSet of the selected images (an int selects one image, still a SceneSet)."""
        if isinstance(index, (int, np.integer)):
            position = int(index) + (len(self) if index < 0 else 0)
            if not 0 <= position < len(self):
                raise IndexError(f"image index {index} out of range for {len(self)} images")
            chosen = np.array([position])
        elif isinstance(index, slice):
            chosen = np.arange(len(self))[index]
        else:
            chosen = np.asarray(index)
            if chosen.dtype == bool:
                chosen = np.flatnonzero(chosen)
        return self.subset(chosen)

    def subset(self, indices: Sequence[int] | np.ndarray) -> SceneSet:
        """The images at ``indices`` (in that order), with everything that belongs to them."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        assert self.image_ids is not None
        names = None if self.file_names is None else tuple(self.file_names[i] for i in idx)
        return SceneSet(
            images=self.images[idx], masks=self.masks[idx], instances=self.instances[idx],
            boxes=[self.boxes[i] for i in idx], labels=[self.labels[i] for i in idx],
            class_names=self.class_names, area_thresholds=self.area_thresholds,
            image_ids=self.image_ids[idx], category_ids=self.category_ids, name=self.name,
            file_names=names)

    @property
    def num_classes(self) -> int:
        """Number of object classes (10 for scenes); masks hold 0 .. num_classes."""
        return len(self.class_names)

    @property
    def in_channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[3])

    def size_bucket(self, box: np.ndarray | Sequence[float]) -> str:
        """'small', 'medium' or 'large' for an ``x0, y0, x1, y1`` box (by its area)."""
        return bucket_of_area(box_area(np.asarray(box, dtype=np.float64)), self.area_thresholds)

    def presence(self) -> np.ndarray:
        """Multi-hot float32 ``(N, num_classes)``: 1 where the image holds a digit of that class
        (the target of the multi-label classification task)."""
        targets = np.zeros((len(self), self.num_classes), dtype=np.float32)
        for i, labels in enumerate(self.labels):
            targets[i, labels] = 1.0
        return targets


# --- the source scans --------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _source_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.asarray(digits.images, dtype=np.float32) / 16.0
    return images, np.asarray(digits.target, dtype=np.int64)


def source_pool(split: str) -> np.ndarray:
    """Indices into ``sklearn.datasets.load_digits()`` used by ``split`` (disjoint per split,
    stratified per class, independent of any seed)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
    _, targets = _source_digits()
    rng = np.random.default_rng(_POOL_SEED)
    chosen: list[np.ndarray] = []
    for cls in range(10):
        idx = rng.permutation(np.flatnonzero(targets == cls))
        n_train = int(round(len(idx) * SPLIT_FRACTIONS["train"]))
        n_val = int(round(len(idx) * SPLIT_FRACTIONS["val"]))
        bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val),
                  "test": (n_train + n_val, len(idx))}[split]
        chosen.append(idx[bounds[0]:bounds[1]])
    return np.sort(np.concatenate(chosen))


# --- rendering ---------------------------------------------------------------------------------


def _smoothstep(values: np.ndarray, low: float, high: float) -> np.ndarray:
    t = np.clip((values - low) / (high - low), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _resample(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bicubic resampling of a float 2-D array (Pillow, mode 'F'; antialiased when shrinking)."""
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(array, dtype=np.float32), mode="F")
    resized = image.resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(resized, dtype=np.float32)


def _box_downsample(array: np.ndarray, factor: int) -> np.ndarray:
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
    fine = _resample(padded, out_h * SUPERSAMPLE, out_w * SUPERSAMPLE)
    strokes = _smoothstep(fine, STROKE_LOW, STROKE_HIGH)
    shape = _box_downsample(strokes, SUPERSAMPLE)
    peak = float(shape.max())
    return shape / peak if peak > 0 else shape


@lru_cache(maxsize=16_384)
def _render_source(source: int, height: int) -> np.ndarray:
    """:func:`render_digit` of source scan ``source`` (cached; callers must not modify it)."""
    shape = render_digit(_source_digits()[0][source], height)
    shape.setflags(write=False)
    return shape


def _stroke_fragment(rng: np.random.Generator, length: float) -> np.ndarray:
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
    return _box_downsample((nearest <= width ** 2).astype(np.float32), SUPERSAMPLE)


def _background(rng: np.random.Generator, canvas: int, clutter: float) -> np.ndarray:
    low = rng.uniform(0.0, 1.0, size=(4, 4)).astype(np.float32)
    smooth = _resample(low, canvas, canvas)
    image: np.ndarray = 0.12 * clutter * np.clip(smooth, 0.0, 1.0)
    image += rng.normal(0.0, 0.05 * clutter, size=(canvas, canvas)).astype(np.float32)
    return image


def _paste_max(image: np.ndarray, patch: np.ndarray, top: int, left: int) -> None:
    """``image = max(image, patch)`` over the window at (top, left), clipped to the image."""
    h, w = image.shape
    y0, x0 = max(0, top), max(0, left)
    y1, x1 = min(h, top + patch.shape[0]), min(w, left + patch.shape[1])
    if y1 <= y0 or x1 <= x0:
        return
    window = patch[y0 - top:y1 - top, x0 - left:x1 - left]
    np.maximum(image[y0:y1, x0:x1], window, out=image[y0:y1, x0:x1])


CLUTTER_BANK_SIZE = 96


def _round_window(height: int, width: int) -> np.ndarray:
    """1 at the centre, falling smoothly to 0 at the inscribed ellipse."""
    ys = (np.arange(height) + 0.5) / height * 2.0 - 1.0
    xs = (np.arange(width) + 0.5) / width * 2.0 - 1.0
    radius = np.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)
    return 1.0 - _smoothstep(radius, 0.3, 1.0)


@lru_cache(maxsize=8)
def _clutter_bank(split: str, canvas: int) -> tuple[np.ndarray, ...]:
    """Clutter patches (peak about 1) for one split and canvas, made once from a fixed seed: half
    curved strokes, half pieces of real scans of that split (3-4 of their 8 rows and columns, never
    a whole digit). Scenes draw from the bank with random flips, rotations and strengths."""
    rng = np.random.default_rng([_POOL_SEED, SPLITS.index(split), canvas])
    scans, _ = _source_digits()
    pool = source_pool(split)
    patches = []
    for k in range(CLUTTER_BANK_SIZE):
        if k % 2 == 0:
            patch = _stroke_fragment(rng, rng.uniform(0.06, 0.25) * canvas)
        else:
            scan = scans[rng.choice(pool)]
            side = int(rng.integers(3, 5))
            r, c = rng.integers(0, 8 - side + 1, size=2)
            piece = np.pad(scan[r:r + side, c:c + side], ((0, 8 - side), (0, 0)))
            patch = render_digit(piece, max(4, int(round(rng.uniform(0.12, 0.38) * canvas))))
            patch = patch * _round_window(*patch.shape)  # fade out: no cut-off stroke ends
        patch.setflags(write=False)
        patches.append(patch)
    return tuple(patches)


def _add_clutter(rng: np.random.Generator, image: np.ndarray, clutter: float, split: str) -> None:
    canvas = image.shape[0]
    bank = _clutter_bank(split, canvas)
    for _ in range(rng.poisson(6.0 * clutter)):
        patch = np.rot90(bank[int(rng.integers(len(bank)))], k=int(rng.integers(4)))
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        strength = rng.uniform(0.15, 0.4)
        top = int(rng.integers(-patch.shape[0] // 2, canvas - patch.shape[0] // 2))
        left = int(rng.integers(-patch.shape[1] // 2, canvas - patch.shape[1] // 2))
        _paste_max(image, strength * patch, top, left)


# --- placement ---------------------------------------------------------------------------------


@cache
def _ink_area_ratio(source: int) -> float:
    """Ink-box area over height^2 of source scan ``source``, measured on a 32-pixel rendering."""
    return box_area(tight_box(_render_source(source, 32) >= 0.5)) / 32.0 ** 2


def _height_range(ratio: float, bucket: int, min_size: int, max_size: int,
                  thresholds: tuple[float, float]) -> tuple[float, float] | None:
    """Heights (px) whose ink-box area, about ``ratio * height^2``, falls in ``bucket`` (0..2)."""
    edges = (0.0, float(np.sqrt(thresholds[0] / ratio)), float(np.sqrt(thresholds[1] / ratio)),
             np.inf)
    low, high = max(float(min_size), edges[bucket]), min(float(max_size) + 1.0, edges[bucket + 1])
    return (low, high) if high > low else None


def _draw_digit(rng: np.random.Generator, pool: np.ndarray, min_size: int, max_size: int,
                thresholds: tuple[float, float], tries: int = 6) -> tuple[int, np.ndarray]:
    """A source scan and its rendering whose ink box falls in a size bucket drawn uniformly.

    The height is log-uniform within the bucket's range for that scan's ink-box shape; a draw
    whose rendered box still misses the bucket (rounding at small sizes) or a scan that cannot
    reach it (a narrow "1" is never large) is redrawn up to ``tries`` times, then the last kept.
    """
    bucket = int(rng.integers(len(SIZE_BUCKETS)))
    source, shape = int(rng.choice(pool)), None
    for _ in range(tries):
        source = int(rng.choice(pool))
        span = _height_range(_ink_area_ratio(source), bucket, min_size, max_size, thresholds)
        if span is None:
            continue
        height = int(np.clip(np.floor(np.exp(rng.uniform(np.log(span[0]), np.log(span[1])))),
                             min_size, max_size))
        shape = _render_source(source, height)
        if SIZE_BUCKETS.index(bucket_of_area(box_area(tight_box(shape >= 0.5)), thresholds)) == bucket:
            break
    return source, (_render_source(source, max_size) if shape is None else shape)


def _dilate8(mask: np.ndarray) -> np.ndarray:
    out: np.ndarray = mask.copy()
    padded = np.pad(mask, 1)
    h, w = mask.shape
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            out |= padded[dy:dy + h, dx:dx + w]
    return out


def _overlap_fraction(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection area over the smaller box's area."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    return float(w * h) / max(1.0, min(box_area(a), box_area(b)))


@dataclass
class _Scene:
    image: np.ndarray
    instances: np.ndarray
    boxes: list[np.ndarray] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)


def _place_digit(rng: np.random.Generator, scene: _Scene, shape: np.ndarray, label: int,
                 intensity: float, max_overlap: float, tries: int = 40) -> bool:
    canvas = scene.image.shape[0]
    ink = shape >= 0.5
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    ink_h, ink_w = rows[-1] - rows[0] + 1, cols[-1] + 1 - cols[0]
    if ink_h > canvas or ink_w > canvas:
        return False
    occupied = _dilate8(scene.instances > 0)
    for _ in range(tries):
        # position of the ink box's top-left corner, so the whole ink lies on the canvas
        y = int(rng.integers(0, canvas - ink_h + 1))
        x = int(rng.integers(0, canvas - ink_w + 1))
        box = np.array([x, y, x + ink_w, y + ink_h], dtype=np.float32)
        if any(_overlap_fraction(box, other) > max_overlap for other in scene.boxes):
            continue
        top, left = y - int(rows[0]), x - int(cols[0])
        full = np.zeros((canvas, canvas), dtype=bool)
        _paste_mask(full, ink, top, left)
        if (full & occupied).any():
            continue
        scene.instances[full] = len(scene.boxes) + 1
        _paste_max(scene.image, intensity * shape, top, left)
        scene.boxes.append(box)
        scene.labels.append(label)
        return True
    return False


def _paste_mask(target: np.ndarray, mask: np.ndarray, top: int, left: int) -> None:
    h, w = target.shape
    y0, x0 = max(0, top), max(0, left)
    y1, x1 = min(h, top + mask.shape[0]), min(w, left + mask.shape[1])
    target[y0:y1, x0:x1] |= mask[y0 - top:y1 - top, x0 - left:x1 - left]


def _check_args(count: int, canvas: int, max_digits: int, split: str, min_size: int,
                max_size: int, clutter: float, max_overlap: float) -> None:
    for label, value, low in (("count", count, 0), ("canvas", canvas, 16), ("max_digits", max_digits, 1),
                              ("min_size", min_size, 4)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{label} must be an int >= {low}; got {value!r}")
    if not isinstance(max_size, int) or not min_size <= max_size <= canvas:
        raise ValueError(f"max_size must be an int in [min_size={min_size}, canvas={canvas}]; "
                         f"got {max_size!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
    if not 0.0 <= clutter <= 1.0:
        raise ValueError(f"clutter must be in [0, 1]; got {clutter!r}")
    if not 0.0 <= max_overlap < 1.0:
        raise ValueError(f"max_overlap must be in [0, 1); got {max_overlap!r}")


def make_scenes(count: int, *, canvas: int = 64, max_digits: int = 4, seed: int = 0,
                split: str = "train", min_size: int | None = None, max_size: int | None = None,
                clutter: float = 0.5, max_overlap: float = 0.2) -> SceneSet:
    """``count`` scenes of ``canvas`` x ``canvas`` pixels, deterministic from (``seed``, ``split``).

    Each holds 1..``max_digits`` digits (uniform; a digit that finds no free place in 40 tries is
    dropped, never the first) of heights in [``min_size``, ``max_size``] pixels (defaults: 6 and 32
    at 64 pixels, scaled with the canvas: ``round(canvas * 3 / 32)`` and ``canvas // 2``).
    ``clutter`` in [0, 1] scales the background texture, the pixel noise (sigma ``0.05 * clutter``)
    and the number of faint non-digit stroke fragments (Poisson, mean ``6 * clutter``).
    ``max_overlap``: the largest allowed intersection of two boxes over the smaller one's area.
    """
    min_size = max(4, int(round(canvas * 3 / 32))) if min_size is None else min_size
    max_size = canvas // 2 if max_size is None else max_size
    _check_args(count, canvas, max_digits, split, min_size, max_size, clutter, max_overlap)
    scans, targets = _source_digits()
    pool = source_pool(split)
    thresholds = area_thresholds(canvas)
    rng = np.random.default_rng([seed, SPLITS.index(split), 0x5CE7E])
    images = np.empty((count, 1, canvas, canvas), dtype=np.float32)
    instances = np.zeros((count, canvas, canvas), dtype=np.int64)
    masks = np.zeros((count, canvas, canvas), dtype=np.int64)
    boxes: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for i in range(count):
        scene = _Scene(image=_background(rng, canvas, clutter), instances=instances[i])
        _add_clutter(rng, scene.image, clutter, split)
        drawn = [_draw_digit(rng, pool, min_size, max_size, thresholds)
                 for _ in range(int(rng.integers(1, max_digits + 1)))]
        # largest first: big digits need the most room; the first one always fits on the empty
        # canvas (its height is at most the canvas), later ones are dropped if they find no room
        for source, shape in sorted(drawn, key=lambda item: -item[1].size):
            _place_digit(rng, scene, shape, int(targets[source]), float(rng.uniform(0.6, 1.0)),
                         max_overlap)
        images[i, 0] = np.clip(scene.image, 0.0, 1.0)
        label_array = np.asarray(scene.labels, dtype=np.int64)
        masks[i] = np.where(instances[i] > 0, 1 + np.concatenate([[0], label_array])[instances[i]], 0)
        boxes.append(np.asarray(scene.boxes, dtype=np.float32).reshape(-1, 4))
        labels.append(label_array)
    return SceneSet(images=images, masks=masks, instances=instances, boxes=boxes, labels=labels,
                    class_names=DIGIT_CLASSES, area_thresholds=thresholds,
                    name=f"scenes-{split}")


def scene_stats(scenes: SceneSet) -> dict[str, Any]:
    """Counts for the report: digits per image, box-side histogram, per-bucket and per-class
    counts, the bucket thresholds and the fraction of pixels that are digit ink."""
    per_image = [len(labels) for labels in scenes.labels]
    all_boxes = [box for boxes in scenes.boxes for box in boxes]
    sides = [float(np.sqrt(box_area(box))) for box in all_boxes]
    buckets = {name: 0 for name in SIZE_BUCKETS}
    for box in all_boxes:
        buckets[scenes.size_bucket(box)] += 1
    classes = np.bincount(np.concatenate(scenes.labels) if all_boxes else np.zeros(0, np.int64),
                          minlength=scenes.num_classes)
    max_side = max(scenes.image_size)
    edges = list(range(0, max_side + 4, 4))
    hist, _ = np.histogram(sides, bins=edges)
    return {
        "images": len(scenes), "objects": len(all_boxes),
        "objects_per_image": {str(k): int(v) for k, v in enumerate(np.bincount(per_image)) if v},
        "mean_objects_per_image": float(np.mean(per_image)) if per_image else 0.0,
        "box_side_histogram": {"edges_px": edges, "counts": hist.astype(int).tolist()},
        "buckets": buckets,
        "bucket_area_thresholds_px2": list(scenes.area_thresholds),
        "per_class": {scenes.class_names[c]: int(n) for c, n in enumerate(classes)},
        "ink_fraction": float((scenes.masks > 0).mean()) if len(scenes) else 0.0,
    }
