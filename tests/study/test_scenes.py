"""The scenes generator checked against its own masks and boxes, pycocotools and its sources."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stridelab.study import scenes as scenes_module
from stridelab.study.scenes import (
    SIZE_BUCKETS,
    SceneSet,
    area_thresholds,
    make_scenes,
    render_digit,
    scene_stats,
    source_pool,
)
from tests._budget import budget


@pytest.fixture(scope="module")
def train_scenes() -> SceneSet:
    return make_scenes(60, seed=3, split="train")


def _touching(a: np.ndarray, b: np.ndarray) -> bool:
    """Brute force: does any pixel of ``a`` have an 8-neighbour (or itself) in ``b``?"""
    for y, x in zip(*np.nonzero(a)):
        if b[max(0, y - 1):y + 2, max(0, x - 1):x + 2].any():
            return True
    return False


def test_every_box_is_the_tight_box_of_its_digits_mask_pixels(train_scenes: SceneSet) -> None:
    from pycocotools import mask as mask_utils

    s = train_scenes
    assert s.images.dtype == np.float32 and s.images.shape == (60, 1, 64, 64)
    assert s.masks.dtype == np.int64 and s.instances.dtype == np.int64
    for i in range(len(s)):
        boxes, labels = s.boxes[i], s.labels[i]
        assert boxes.dtype == np.float32 and boxes.shape == (len(labels), 4)
        assert labels.dtype == np.int64 and set(labels.tolist()) <= set(range(10))
        assert sorted(np.unique(s.instances[i]).tolist()) == list(range(len(labels) + 1))
        for j, (box, label) in enumerate(zip(boxes, labels)):
            own = s.instances[i] == j + 1
            rows, cols = np.nonzero(own)
            assert box.tolist() == [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]
            # pycocotools computes the same box from the mask (COCO xywh)
            rle = mask_utils.encode(np.asfortranarray(own.astype(np.uint8)))
            x0, y0, x1, y1 = box
            assert mask_utils.toBbox(rle).tolist() == [x0, y0, x1 - x0, y1 - y0]
            assert (s.masks[i][own] == 1 + label).all()
        assert ((s.masks[i] > 0) == (s.instances[i] > 0)).all()


def test_mask_pixels_are_visible_ink_and_digits_never_touch(train_scenes: SceneSet) -> None:
    s = train_scenes
    # every mask pixel is at least half the dimmest digit's intensity (0.6), whatever the clutter
    assert float(s.images[:, 0][s.masks > 0].min()) >= 0.3 - 1e-6
    assert 0.0 <= float(s.images.min()) and float(s.images.max()) <= 1.0
    for i in range(len(s)):
        k = len(s.labels[i])
        for a in range(k):
            for b in range(a + 1, k):
                assert not _touching(s.instances[i] == a + 1, s.instances[i] == b + 1)
                box_a, box_b = s.boxes[i][a], s.boxes[i][b]
                w = min(box_a[2], box_b[2]) - max(box_a[0], box_b[0])
                h = min(box_a[3], box_b[3]) - max(box_a[1], box_b[1])
                smaller = min((box_a[2] - box_a[0]) * (box_a[3] - box_a[1]),
                              (box_b[2] - box_b[0]) * (box_b[3] - box_b[1]))
                assert max(0, w) * max(0, h) <= 0.2 * smaller + 1e-6


def test_digit_counts_and_size_buckets_are_populated(train_scenes: SceneSet) -> None:
    s = train_scenes
    counts = [len(labels) for labels in s.labels]
    assert min(counts) >= 1 and max(counts) <= 4 and set(counts) == {1, 2, 3, 4}
    assert s.area_thresholds == (64.0, 576.0) == area_thresholds(64)
    assert area_thresholds(128) == (256.0, 2304.0)
    buckets = [s.size_bucket(box) for boxes in s.boxes for box in boxes]
    for name in SIZE_BUCKETS:  # drawn about uniformly: each bucket holds at least a fifth
        assert buckets.count(name) >= 0.2 * len(buckets), (name, buckets.count(name))
    sides = [np.sqrt((b[2] - b[0]) * (b[3] - b[1])) for boxes in s.boxes for b in boxes]
    heights = [b[3] - b[1] for boxes in s.boxes for b in boxes]
    assert 4 <= min(heights) <= 7 and 28 <= max(heights) <= 33 and min(sides) > 2
    assert set(np.concatenate(s.labels).tolist()) == set(range(10))
    stats = scene_stats(s)
    assert json.loads(json.dumps(stats)) == stats  # goes into results.json as is
    assert stats["objects"] == len(buckets) and stats["images"] == 60
    assert stats["buckets"] == {name: buckets.count(name) for name in SIZE_BUCKETS}
    assert sum(stats["box_side_histogram"]["counts"]) == len(buckets)
    assert sum(stats["objects_per_image"].values()) == 60
    assert stats["per_class"] == {str(c): int((np.concatenate(s.labels) == c).sum()) for c in range(10)}


def test_size_bucket_edges_follow_cocoeval_ranges() -> None:
    s = make_scenes(1)
    assert s.size_bucket([0, 0, 7, 9]) == "small"      # 63 < 64
    assert s.size_bucket([0, 0, 8, 8]) == "medium"     # 64: lower bound inclusive
    assert s.size_bucket([0, 0, 24, 23]) == "medium"   # 552
    assert s.size_bucket([10, 10, 34, 34]) == "large"  # 576


def test_same_seed_same_scenes_other_seed_or_split_other_scenes() -> None:
    a, b = make_scenes(6, seed=5), make_scenes(6, seed=5)
    for field in ("images", "masks", "instances"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert all((x == y).all() for x, y in zip(a.boxes, b.boxes))
    assert not np.array_equal(make_scenes(6, seed=6).images, a.images)
    assert not np.array_equal(make_scenes(6, seed=5, split="test").images, a.images)


def test_splits_draw_digits_from_disjoint_source_scans(monkeypatch: pytest.MonkeyPatch) -> None:
    from sklearn.datasets import load_digits

    pools = {split: set(source_pool(split).tolist()) for split in ("train", "val", "test")}
    assert not pools["train"] & pools["test"] and not pools["train"] & pools["val"]
    assert not pools["val"] & pools["test"]
    assert sum(len(p) for p in pools.values()) == 1797
    assert 0.23 < len(pools["test"]) / 1797 < 0.27
    reference = load_digits()
    flat = reference.images.reshape(1797, -1) / 16.0
    rendered: list[np.ndarray] = []
    original = scenes_module.render_digit

    def recording(scan: np.ndarray, height: int) -> np.ndarray:
        rendered.append(scan.copy())
        return original(scan, height)

    monkeypatch.setattr(scenes_module, "render_digit", recording)
    for split in ("train", "test"):
        rendered.clear()
        scenes_module._render_source.cache_clear()  # so that every digit is rendered again
        made = make_scenes(30, seed=0, split=split, clutter=0.0)
        whole = [np.flatnonzero(np.abs(flat - scan.reshape(1, -1)).max(axis=1) < 1e-6)
                 for scan in rendered]
        sources = [int(m[0]) for m in whole if m.size]
        assert len(sources) >= sum(len(labels) for labels in made.labels)
        assert set(sources) <= pools[split], split
        # and the labels are the source scans' digits
        assert set(reference.target[sources].tolist()) >= set(np.concatenate(made.labels).tolist())


def test_rendered_digit_keeps_the_scans_strokes() -> None:
    from sklearn.datasets import load_digits

    scans = load_digits().images / 16.0
    correlations = []
    for scan in scans[:40]:
        shape = render_digit(scan, 32)
        assert shape.max() == pytest.approx(1.0) and shape.min() >= 0.0
        inked = np.flatnonzero(scan.max(axis=0) > 0)
        cropped = np.pad(scan[:, inked[0]:inked[-1] + 1], 1)
        # 32 px tall: 4 output pixels per source pixel; average back to the scan's grid
        h, w = cropped.shape
        pooled = shape[:h * 4, :w * 4].reshape(h, 4, w, 4).mean(axis=(1, 3))
        correlations.append(np.corrcoef(pooled.ravel(), cropped.ravel())[0, 1])
        mask = shape >= 0.5
        assert 0.1 < mask.mean() < 0.6  # strokes, not a filled block
    assert np.mean(correlations) > 0.85
    small = render_digit(scans[0], 6)
    assert small.shape[0] == round(10 * 6 / 8) and (small >= 0.5).any()


def test_clutter_is_faint_and_never_labelled() -> None:
    clean = make_scenes(10, seed=1, clutter=0.0)
    busy = make_scenes(10, seed=1, clutter=1.0)
    far = np.ones_like(clean.masks, dtype=bool)
    for i in range(len(clean)):
        for box in clean.boxes[i]:
            x0, y0, x1, y1 = (int(v) for v in box)
            far[i, max(0, y0 - 3):y1 + 3, max(0, x0 - 3):x1 + 3] = False
    assert float(clean.images[:, 0][far].max()) == 0.0  # no clutter: black away from digits
    far_busy = np.ones_like(busy.masks, dtype=bool)
    for i in range(len(busy)):
        for box in busy.boxes[i]:
            x0, y0, x1, y1 = (int(v) for v in box)
            far_busy[i, max(0, y0 - 3):y1 + 3, max(0, x0 - 3):x1 + 3] = False
    background = busy.images[:, 0][far_busy]
    assert float(background.mean()) > 0.02 and float(np.quantile(background, 0.999)) < 0.5


def test_slicing_subsets_and_presence(train_scenes: SceneSet) -> None:
    s = train_scenes
    part = s[10:13]
    assert len(part) == 3 and part.name == s.name
    np.testing.assert_array_equal(part.images, s.images[10:13])
    assert [b.tolist() for b in part.boxes] == [b.tolist() for b in s.boxes[10:13]]
    assert part.image_ids is not None and part.image_ids.tolist() == [11, 12, 13]
    one = s[-1]
    assert len(one) == 1 and (one.masks[0] == s.masks[-1]).all()
    picked = s[np.array([5, 2])]
    assert (picked.labels[0] == s.labels[5]).all() and (picked.labels[1] == s.labels[2]).all()
    chosen = s[np.arange(len(s)) % 2 == 0]
    assert len(chosen) == 30
    with pytest.raises(IndexError):
        s[len(s)]
    presence = s.presence()
    assert presence.shape == (60, 10)
    for i in range(len(s)):
        assert set(np.flatnonzero(presence[i]).tolist()) == set(s.labels[i].tolist())
    assert s.num_classes == 10 and s.in_channels == 1 and s.image_size == (64, 64)


@pytest.mark.parametrize(("kwargs", "word"), [
    ({"count": -1}, "count"), ({"count": 2, "canvas": 8}, "canvas"),
    ({"count": 2, "split": "dev"}, "split"), ({"count": 2, "max_digits": 0}, "max_digits"),
    ({"count": 2, "clutter": 1.5}, "clutter"), ({"count": 2, "min_size": 10, "max_size": 8}, "max_size"),
    ({"count": 2, "max_size": 80}, "max_size"), ({"count": 2, "max_overlap": 1.0}, "max_overlap"),
    ({"count": 2, "seed": -1}, "seed"), ({"count": 2.5}, "count"),
    ({"count": 2, "clutter": "lots"}, "clutter"),
])
def test_bad_arguments_name_the_parameter(kwargs: dict[str, object], word: str) -> None:
    with pytest.raises(ValueError, match=word):
        make_scenes(**kwargs)  # type: ignore[arg-type]


def test_other_canvas_scales_sizes_and_buckets() -> None:
    big = make_scenes(20, canvas=128, seed=2)
    assert big.images.shape == (20, 1, 128, 128) and big.area_thresholds == (256.0, 2304.0)
    heights = [b[3] - b[1] for boxes in big.boxes for b in boxes]
    assert max(heights) <= 65 and min(heights) >= 8


def _check_consistent(s: SceneSet) -> None:
    """Masks, instances, boxes and labels agree (an independent re-derivation from the maps)."""
    for i in range(len(s)):
        k = len(s.labels[i])
        assert 1 <= k and sorted(np.unique(s.instances[i]).tolist()) == list(range(k + 1))
        for j in range(k):
            own = s.instances[i] == j + 1
            rows, cols = np.nonzero(own)
            assert s.boxes[i][j].tolist() == [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]
            assert (s.masks[i][own] == 1 + s.labels[i][j]).all()
        assert ((s.masks[i] > 0) == (s.instances[i] > 0)).all()


@settings(max_examples=budget(6))
@given(seed=st.integers(0, 2**31), canvas=st.sampled_from([32, 48, 64, 96]),
       max_digits=st.integers(1, 6), clutter=st.floats(0.0, 1.0),
       split=st.sampled_from(["train", "val", "test"]))
def test_any_parameters_give_consistent_scenes(seed: int, canvas: int, max_digits: int,
                                               clutter: float, split: str) -> None:
    s = make_scenes(3, canvas=canvas, max_digits=max_digits, seed=seed, split=split, clutter=clutter)
    assert s.images.shape == (3, 1, canvas, canvas)
    assert all(len(labels) <= max_digits for labels in s.labels)
    _check_consistent(s)


def test_zero_scenes_is_an_empty_set() -> None:
    empty = make_scenes(0)
    assert len(empty) == 0 and empty.images.shape == (0, 1, 64, 64) and empty.boxes == []
    stats = scene_stats(empty)
    assert stats["objects"] == 0 and stats["buckets"] == {"small": 0, "medium": 0, "large": 0}
