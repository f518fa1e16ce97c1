"""COCO folders written by the tests (polygons, RLE, crowds) load; scenes round-trip; bad files
give one-line errors naming the file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from stridelab.study.coco import IGNORE_LABEL, load_coco_folder, to_coco, write_coco_folder
from stridelab.study.coco_masks import rle_counts_from_string
from stridelab.study.scenes import make_scenes

H, W = 16, 20


def _runs(mask: np.ndarray) -> list[int]:
    """COCO run lengths by hand: column-major pixels, alternating runs starting with zeros."""
    flat = mask.ravel(order="F").astype(np.int8)
    runs, current, length = [], 0, 0
    for value in flat:
        if value == current:
            length += 1
        else:
            runs.append(length)
            current, length = value, 1
    runs.append(length)
    return runs


def _box_mask(top: int, left: int, bottom: int, right: int) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[top:bottom, left:right] = True
    return mask


def _compressed(mask: np.ndarray) -> str:
    from pycocotools import mask as mask_utils

    return mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))["counts"].decode("ascii")


def _write_folder(root: Path, *, annotations: list[dict[str, Any]] | None = None,
                  images: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """COCO's own layout: annotations/instances_val.json next to val/ with the images."""
    rng = np.random.default_rng(0)
    (root / "val").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(exist_ok=True)
    rgb = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, size=(H, W), dtype=np.uint8)
    Image.fromarray(rgb).save(root / "val" / "a.png")
    Image.fromarray(grey).save(root / "val" / "b.png")
    data = {
        "images": images if images is not None else [
            {"id": 10, "file_name": "a.png", "width": W, "height": H},
            {"id": 11, "file_name": "b.png", "width": W, "height": H}],
        "categories": [{"id": 7, "name": "dog"}, {"id": 3, "name": "cat"}],
        "annotations": annotations if annotations is not None else [
            {"id": 1, "image_id": 10, "category_id": 3, "iscrowd": 0, "bbox": [2, 1, 4, 3],
             "segmentation": [[2, 1, 6, 1, 6, 4, 2, 4]]},
            {"id": 2, "image_id": 10, "category_id": 7, "iscrowd": 0, "bbox": [10, 8, 5, 4],
             "segmentation": {"size": [H, W], "counts": _runs(_box_mask(8, 10, 12, 15))}},
            {"id": 3, "image_id": 10, "category_id": 3, "iscrowd": 0, "bbox": [0, 12, 4, 3],
             "segmentation": {"size": [H, W], "counts": _compressed(_box_mask(12, 0, 15, 4))}},
            {"id": 4, "image_id": 10, "category_id": 7, "iscrowd": 1, "bbox": [15, 0, 5, 3],
             "segmentation": {"size": [H, W], "counts": _runs(_box_mask(0, 15, 3, 20))}},
            {"id": 5, "image_id": 10, "category_id": 7, "iscrowd": 0, "bbox": [16, 10, 3, 4],
             "segmentation": []}],
    }
    (root / "annotations" / "instances_val.json").write_text(json.dumps(data))
    return {"rgb": rgb, "grey": grey}


def test_hand_made_folder_with_polygons_rle_and_crowds_loads(tmp_path: Path) -> None:
    written = _write_folder(tmp_path)
    scenes = load_coco_folder(tmp_path)
    assert scenes.class_names == ("cat", "dog") and scenes.category_ids == (3, 7)
    assert scenes.images.shape == (2, 3, H, W)       # one colour image: everything RGB
    np.testing.assert_allclose(scenes.images[0].transpose(1, 2, 0), written["rgb"] / 255.0, atol=1e-6)
    np.testing.assert_allclose(scenes.images[1, 0], written["grey"] / 255.0, atol=1e-6)
    assert scenes.image_ids is not None and scenes.image_ids.tolist() == [10, 11]
    expected = np.zeros((H, W), np.int64)
    expected[1:4, 2:6] = 1 + 0                       # polygon: pixels [x0, x1) x [y0, y1)
    expected[8:12, 10:15] = 1 + 1                    # uncompressed RLE, dog
    expected[12:15, 0:4] = 1 + 0                     # compressed RLE, cat
    expected[0:3, 15:20] = IGNORE_LABEL              # crowd: ignored, not an object
    expected[10:14, 16:19] = 1 + 1                   # no segmentation: its box
    np.testing.assert_array_equal(scenes.masks[0], expected)
    assert (scenes.masks[1] == 0).all() and len(scenes.boxes[1]) == 0
    assert scenes.labels[0].tolist() == [0, 1, 0, 1]
    assert scenes.boxes[0].tolist() == [[2, 1, 6, 4], [10, 8, 15, 12], [0, 12, 4, 15], [16, 10, 19, 14]]
    for j, box in enumerate(scenes.boxes[0]):
        rows, cols = np.nonzero(scenes.instances[0] == j + 1)
        assert box.tolist() == [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]
    assert scenes.area_thresholds == (32.0 ** 2, 96.0 ** 2)


def test_greyscale_folder_has_one_channel_and_resizing_scales_boxes(tmp_path: Path) -> None:
    _write_folder(tmp_path, images=[{"id": 11, "file_name": "b.png", "width": W, "height": H}],
                  annotations=[{"id": 1, "image_id": 11, "category_id": 7, "bbox": [10, 8, 5, 4],
                                "segmentation": [[10, 8, 15, 8, 15, 12, 10, 12]]}])
    scenes = load_coco_folder(tmp_path)
    assert scenes.images.shape == (1, 1, H, W)
    resized = load_coco_folder(tmp_path, image_size=40)
    assert resized.images.shape == (1, 1, 40, 40) and resized.masks.shape == (1, 40, 40)
    assert resized.boxes[0].tolist() == [[20.0, 20.0, 30.0, 30.0]]  # x * 2, y * 2.5
    assert resized.area_thresholds == pytest.approx((1024 * 1600 / 320, 9216 * 1600 / 320))
    assert (resized.masks[0][20:30, 20:30] == 2).all() and (resized.masks[0] > 0).sum() == 100


def test_smaller_object_wins_where_instances_overlap(tmp_path: Path) -> None:
    _write_folder(tmp_path, annotations=[
        {"id": 1, "image_id": 10, "category_id": 3, "bbox": [6, 6, 3, 3],
         "segmentation": [[6, 6, 9, 6, 9, 9, 6, 9]]},
        {"id": 2, "image_id": 10, "category_id": 7, "bbox": [0, 0, 16, 14],
         "segmentation": [[0, 0, 16, 0, 16, 14, 0, 14]]}])
    scenes = load_coco_folder(tmp_path)
    assert (scenes.masks[0][6:9, 6:9] == 1).all() and (scenes.instances[0][6:9, 6:9] == 1).all()
    assert (scenes.masks[0][0:6, 0:16] == 2).all()
    assert scenes.labels[0].tolist() == [0, 1]  # objects keep the JSON's order


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # pycocotools'
def test_scenes_round_trip_through_a_coco_folder_and_pycocotools(tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    scenes = make_scenes(6, seed=2, split="val")
    json_path = write_coco_folder(scenes, tmp_path / "coco")
    assert json_path == tmp_path / "coco" / "annotations" / "instances.json"
    umask = os.umask(0)
    os.umask(umask)
    assert (json_path.stat().st_mode & 0o777) == 0o644 & ~umask  # not mkstemp's 0600
    coco = COCO(str(json_path))
    assert len(coco.getImgIds()) == 6
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list("0123456789")
    assert scenes.image_ids is not None
    for i, image_id in enumerate(scenes.image_ids):
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[int(image_id)]))
        assert len(anns) == len(scenes.labels[i])
        for j, ann in enumerate(anns):
            np.testing.assert_array_equal(coco.annToMask(ann), scenes.instances[i] == j + 1)
            x0, y0, x1, y1 = scenes.boxes[i][j].tolist()
            assert ann["bbox"] == [x0, y0, x1 - x0, y1 - y0] and ann["area"] == (x1 - x0) * (y1 - y0)
            assert ann["category_id"] == int(scenes.labels[i][j]) + 1 and ann["iscrowd"] == 0
    loaded = load_coco_folder(tmp_path / "coco")
    np.testing.assert_allclose(loaded.images, scenes.images, atol=0.5 / 255 + 1e-6)
    np.testing.assert_array_equal(loaded.masks, scenes.masks)
    np.testing.assert_array_equal(loaded.instances, scenes.instances)
    assert all((a == b).all() for a, b in zip(loaded.boxes, scenes.boxes))
    assert all((a == b).all() for a, b in zip(loaded.labels, scenes.labels))
    assert loaded.area_thresholds == scenes.area_thresholds and loaded.class_names == scenes.class_names
    assert to_coco(loaded)["annotations"] == to_coco(scenes)["annotations"]


def test_compressed_rle_decoder_matches_hand_counted_runs() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        mask = rng.random((rng.integers(1, 30), rng.integers(1, 30))) < rng.uniform(0.05, 0.95)
        assert rle_counts_from_string(_compressed(mask)) == _runs(mask)


def _error(tmp_path: Path, **kwargs: Any) -> str:
    with pytest.raises(ValueError) as info:
        load_coco_folder(tmp_path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def _with_annotation(tmp_path: Path, segmentation: Any, **extra: Any) -> None:
    _write_folder(tmp_path, annotations=[{"id": 9, "image_id": 10, "category_id": 3,
                                          "bbox": [0, 0, 2, 2], "segmentation": segmentation,
                                          **extra}])


@pytest.mark.parametrize(("segmentation", "words"), [
    ({"size": [H, W], "counts": [1, 2]}, "sum to 3"),
    ({"size": [H, W], "counts": [-1, H * W + 1]}, "non-negative"),
    ({"size": [H, W], "counts": "zz"}, "invalid character"),
    ({"size": [H, W], "counts": ""}, "sum to 0"),
    ({"size": [H, W], "counts": _compressed(_box_mask(0, 0, 2, 2))[:-1]}, "RLE"),
    ({"size": [H + 1, W], "counts": [H * W]}, "size"),
    ([[1, 2, 3, 4]], "polygon"),
    ("a string", "segmentation"),
])
def test_bad_segmentations_name_the_json_and_the_annotation(tmp_path: Path, segmentation: Any,
                                                           words: str) -> None:
    _with_annotation(tmp_path, segmentation)
    message = _error(tmp_path)
    assert "instances_val.json" in message and "annotation 9" in message and words in message


def test_corrupt_json_names_the_file(tmp_path: Path) -> None:
    _write_folder(tmp_path)
    (tmp_path / "annotations" / "instances_val.json").write_text('{"images": [')
    message = _error(tmp_path)
    assert "instances_val.json" in message and "not valid JSON" in message


def test_missing_and_corrupt_images_name_the_image(tmp_path: Path) -> None:
    _write_folder(tmp_path)
    (tmp_path / "val" / "b.png").write_bytes(b"this is not a png")
    assert "b.png" in (message := _error(tmp_path)) and "not a readable image" in message
    (tmp_path / "val" / "b.png").unlink()
    assert "b.png" in (message := _error(tmp_path)) and "does not exist" in message


def test_other_bad_inputs(tmp_path: Path) -> None:
    _write_folder(tmp_path, images=[{"id": 10, "file_name": "a.png", "width": W + 1, "height": H}],
                  annotations=[])
    assert "a.png" in (message := _error(tmp_path)) and "JSON says" in message
    _write_folder(tmp_path, annotations=[{"id": 5, "image_id": 10, "category_id": 99, "bbox": [0, 0, 1, 1]}])
    assert "unknown category_id 99" in _error(tmp_path)
    (tmp_path / "annotations" / "instances_train.json").write_text("{}")
    assert "several annotation files" in _error(tmp_path)
    assert "needs a list" in _error(tmp_path, annotations=tmp_path / "annotations" / "instances_train.json")
    assert "does not exist" in _error(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="image_size"):
        load_coco_folder(tmp_path, image_size=2)


@pytest.mark.parametrize(("images", "annotations", "words"), [
    ([{"id": 10, "file_name": "a.png", "width": W, "height": H}],
     [{"id": 4, "image_id": 12, "category_id": 3, "bbox": [0, 0, 1, 1]}], "annotation 4 has no image_id"),
    ([{"id": 10, "file_name": "a.png"}, {"id": 10, "file_name": "b.png"}], [], "unique integer id"),
    ([{"id": 10, "file_name": "a.png", "width": "wide", "height": H}], [], "integer width"),
    ([{"id": 10}], [], "file_name"),
    ([], [], "no images"),
])
def test_bad_image_lists_name_the_json(tmp_path: Path, images: list[Any],
                                       annotations: list[Any], words: str) -> None:
    _write_folder(tmp_path, images=images, annotations=annotations)
    assert "instances_val.json" in (message := _error(tmp_path)) and words in message


def test_images_of_different_sizes_need_image_size(tmp_path: Path) -> None:
    _write_folder(tmp_path, annotations=[])
    Image.fromarray(np.zeros((H + 2, W), np.uint8)).save(tmp_path / "val" / "b.png")
    data = json.loads((tmp_path / "annotations" / "instances_val.json").read_text())
    data["images"][1]["height"] = H + 2
    (tmp_path / "annotations" / "instances_val.json").write_text(json.dumps(data))
    assert "pass image_size" in (message := _error(tmp_path)) and "b.png" in message
    assert load_coco_folder(tmp_path, image_size=24).images.shape == (2, 3, 24, 24)


def test_a_loaded_coco_folder_feeds_the_metrics(tmp_path: Path) -> None:
    from stridelab.study.metrics import detection_metrics, scene_segmentation_metrics

    _write_folder(tmp_path)
    scenes = load_coco_folder(tmp_path)
    perfect = [(b, np.ones(len(b)), lab) for b, lab in zip(scenes.boxes, scenes.labels)]
    assert detection_metrics(scenes, perfect)["AP"] == pytest.approx(1.0)  # COCO ids 3 and 7
    predicted = np.where(scenes.masks == IGNORE_LABEL, 2, scenes.masks)  # anything on the crowd
    result = scene_segmentation_metrics(scenes, predicted)
    assert result["mIoU"] == pytest.approx(1.0) and result["boundary_F1"] == pytest.approx(1.0)
    assert json.loads(json.dumps(to_coco(scenes)))["categories"][0] == {
        "id": 3, "name": "cat", "supercategory": "object"}
