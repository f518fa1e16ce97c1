"""``scenes``: cluttered canvases of real handwritten digits with masks and boxes (NumPy only).

Each scene is a dark canvas (default 64x64) holding 1 to ``max_digits`` of scikit-learn's bundled
handwritten digits (1,797 real 8x8 scans, no download) at heights from about 6 to 32 pixels, at
random positions, over mild clutter: a smooth background, pixel noise and faint stroke fragments
that are *not* digits (curved strokes and faded pieces of scans). Everything is deterministic from
``seed`` and ``split``. The result is a :class:`~stridelab.study.scene_set.SceneSet` (conventions
there); digits are drawn by :func:`~stridelab.study.scenes_render.render_digit`, ink bright on a
dark background as in the source scans.

* Boxes: every box is the tight box of that digit's mask pixels (``mask = shape >= 0.5``).
* Overlaps: digits never share a mask pixel (a placement whose ink would touch another digit's ink,
  8-neighbourhood, is rejected), so every pixel has exactly one label; boxes may overlap by at most
  ``max_overlap`` of the smaller box's area. Digits are placed largest first.
* Sizes: each digit's size bucket (small / medium / large, see
  :func:`~stridelab.study.scene_set.area_thresholds`: 64 and 576 px^2 at 64 pixels) is drawn
  uniformly, then its height log-uniformly within the bucket for that scan's shape, so the three
  buckets are about equally frequent.
* Leakage: train / val / test scenes draw their digits (and clutter pieces) from disjoint sets of
  source scans (a fixed, seed-independent split per class: 65 % / 10 % / 25 %).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache, lru_cache

import numpy as np

from stridelab.study.scene_set import (
    COCO_AREA_THRESHOLDS,
    DIGIT_CLASSES,
    SIZE_BUCKETS,
    SceneSet,
    area_thresholds,
    box_area,
    bucket_of_area,
    scene_stats,
    tight_box,
)
from stridelab.study.scenes_render import (
    dilate8,
    paste_mask,
    paste_max,
    render_digit,
    resample,
    round_window,
    stroke_fragment,
)

__all__ = ["COCO_AREA_THRESHOLDS", "DIGIT_CLASSES", "SIZE_BUCKETS", "SPLITS", "SceneSet",
           "area_thresholds", "box_area", "bucket_of_area", "make_scenes", "render_digit",
           "scene_stats", "source_pool", "tight_box"]

SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = {"train": 0.65, "val": 0.10, "test": 0.25}
_POOL_SEED = 20_131_017  # fixed: the train/val/test partition of the source scans never changes


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


@lru_cache(maxsize=16_384)
def _render_source(source: int, height: int) -> np.ndarray:
    """:func:`render_digit` of source scan ``source`` (cached; callers must not modify it)."""
    shape = render_digit(_source_digits()[0][source], height)
    shape.setflags(write=False)
    return shape


def _background(rng: np.random.Generator, canvas: int, clutter: float) -> np.ndarray:
    low = rng.uniform(0.0, 1.0, size=(4, 4)).astype(np.float32)
    smooth = resample(low, canvas, canvas)
    image: np.ndarray = 0.12 * clutter * np.clip(smooth, 0.0, 1.0)
    image += rng.normal(0.0, 0.05 * clutter, size=(canvas, canvas)).astype(np.float32)
    return image


CLUTTER_BANK_SIZE = 96


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
            patch = stroke_fragment(rng, rng.uniform(0.06, 0.25) * canvas)
        else:
            scan = scans[rng.choice(pool)]
            side = int(rng.integers(3, 5))
            r, c = rng.integers(0, 8 - side + 1, size=2)
            piece = np.pad(scan[r:r + side, c:c + side], ((0, 8 - side), (0, 0)))
            patch = render_digit(piece, max(4, int(round(rng.uniform(0.12, 0.38) * canvas))))
            patch = patch * round_window(*patch.shape)  # fade out: no cut-off stroke ends
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
        paste_max(image, strength * patch, top, left)


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
    occupied = dilate8(scene.instances > 0)
    for _ in range(tries):
        # position of the ink box's top-left corner, so the whole ink lies on the canvas
        y = int(rng.integers(0, canvas - ink_h + 1))
        x = int(rng.integers(0, canvas - ink_w + 1))
        box = np.array([x, y, x + ink_w, y + ink_h], dtype=np.float32)
        if any(_overlap_fraction(box, other) > max_overlap for other in scene.boxes):
            continue
        top, left = y - int(rows[0]), x - int(cols[0])
        full = np.zeros((canvas, canvas), dtype=bool)
        paste_mask(full, ink, top, left)
        if (full & occupied).any():
            continue
        scene.instances[full] = len(scene.boxes) + 1
        paste_max(scene.image, intensity * shape, top, left)
        scene.boxes.append(box)
        scene.labels.append(label)
        return True
    return False


def _check_args(count: int, canvas: int, max_digits: int, seed: int, split: str, min_size: int,
                max_size: int, clutter: float, max_overlap: float) -> None:
    for label, value, low in (("count", count, 0), ("canvas", canvas, 16), ("max_digits", max_digits, 1),
                              ("seed", seed, 0), ("min_size", min_size, 4)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{label} must be an int >= {low}; got {value!r}")
    if not isinstance(max_size, int) or not min_size <= max_size <= canvas:
        raise ValueError(f"max_size must be an int in [min_size={min_size}, canvas={canvas}]; "
                         f"got {max_size!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
    if not isinstance(clutter, (int, float)) or not 0.0 <= clutter <= 1.0:
        raise ValueError(f"clutter must be in [0, 1]; got {clutter!r}")
    if not isinstance(max_overlap, (int, float)) or not 0.0 <= max_overlap < 1.0:
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
    _check_args(count, canvas, max_digits, seed, split, min_size, max_size, clutter, max_overlap)
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


