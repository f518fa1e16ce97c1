"""COCO-format folders in and out of a :class:`~stridelab.study.scene_set.SceneSet` (via pycocotools).

Reading (:func:`load_coco_folder`; masks decoded and validated by :mod:`stridelab.study.coco_masks`):

* Annotation file: the ``annotations`` argument if given; else the single
  ``<folder>/annotations/instances*.json``; else the single ``<folder>/*.json``. Several
  candidates are an error that lists them (pass ``annotations=`` to choose).
* Image files: each ``file_name`` is looked up relative to the folder, then ``<folder>/images/``,
  then ``<folder>/<split>/`` where ``<split>`` is the annotation file's name without
  ``instances_`` and ``.json`` (COCO's own layout: ``annotations/instances_val2017.json`` next to
  ``val2017/``).
* Categories are sorted by COCO id and mapped to contiguous classes 0..K-1; their names become
  ``class_names`` and their ids ``category_ids`` (kept for writing COCO JSON back).
* Masks: polygons or RLE (compressed or not) decoded by pycocotools; an annotation with an empty
  ``segmentation`` is painted as its box. Where instances overlap, the smaller object wins (objects
  are painted largest first). ``iscrowd`` annotations are not objects: their pixels get the label
  :data:`IGNORE_LABEL` (-1) in ``masks`` (segmentation metrics skip them; train with
  ``ignore_index=-1``) and they have no box, so a detection on a crowd counts as a false positive
  (COCO's own evaluation would ignore it).
* Channels: ``images`` has 1 channel if every image is greyscale (Pillow modes 1, L, LA, I, I;16,
  F), else 3 (everything converted to RGB); values in [0, 1].
* Sizes: with ``image_size=None`` all images must share one size and the size buckets are COCO's
  (32^2, 96^2 px^2), or ``info.stridelab_area_thresholds`` when the JSON has it (written by
  :func:`to_coco`, so scenes round-trip with their own buckets). With ``image_size=S`` every
  image is stretched to S x S (bilinear; masks nearest), boxes are scaled with it, and those area
  thresholds are scaled by ``S^2 / median(original width * height)``.
* Bad input (unreadable JSON, missing keys, a missing or unreadable image, an image whose size
  differs from the JSON, a polygon or RLE that does not describe the image) raises a one-line
  ``ValueError`` that names the file.

Writing (:func:`to_coco`, :func:`write_coco_folder`): ground truth as COCO JSON with 1-based
annotation ids, ``bbox = [x0, y0, x1 - x0, y1 - y0]``, ``area`` = box area (so COCOeval's size
ranges bucket objects exactly as :meth:`SceneSet.size_bucket` does; COCO's own files use the mask
area), ``iscrowd = 0`` and the instance mask as compressed RLE.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from stridelab.study.coco_masks import decode_segmentation, encode_mask
from stridelab.study.scene_set import COCO_AREA_THRESHOLDS, SceneSet, box_area

IGNORE_LABEL = -1
#: ``info`` key under which :func:`to_coco` stores the SceneSet's size-bucket area thresholds
THRESHOLDS_KEY = "stridelab_area_thresholds"
GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})


class _Bad(ValueError):
    """A ValueError whose message is one line naming the offending file."""

    def __init__(self, file: Path, problem: str) -> None:
        super().__init__(f"{file}: {' '.join(problem.split())}")


# --- reading ------------------------------------------------------------------------------------


def find_annotation_file(folder: Path) -> Path:
    """The instances JSON of a COCO folder (see the module docstring for the search order)."""
    if not folder.is_dir():
        raise ValueError(f"{folder}: COCO folder does not exist or is not a folder")
    for candidates in (sorted((folder / "annotations").glob("instances*.json")),
                       sorted(folder.glob("*.json"))):
        if len(candidates) == 1:
            return candidates[0]
        if len(candidates) > 1:
            names = ", ".join(p.name for p in candidates)
            raise ValueError(f"{folder}: several annotation files ({names}); pass annotations=PATH")
    raise ValueError(f"{folder}: no annotations/instances*.json and no *.json in the folder")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _Bad(path, "annotation file does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise _Bad(path, f"not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise _Bad(path, "COCO JSON must be an object with images, annotations and categories")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise _Bad(path, f"COCO JSON needs a list {key!r}")
    if not data["categories"]:
        raise _Bad(path, "COCO JSON has no categories")
    return data


def _image_file(folder: Path, json_path: Path, file_name: str) -> Path:
    split = json_path.stem.removeprefix("instances_")
    for base in (folder, folder / "images", folder / split):
        if (base / file_name).is_file():
            return base / file_name
    raise _Bad(folder / file_name, f"image listed in {json_path.name} does not exist (also looked "
                                   f"in images/ and {split}/)")


def _open_image(path: Path, expected: tuple[int, int] | None) -> tuple[np.ndarray, bool]:
    """Pixels as float32 (H, W, 3) in [0, 1] and whether the file is greyscale."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            grey = image.mode in GREY_MODES
            rgb = image.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise _Bad(path, f"not a readable image ({err})") from None
    if expected is not None and (rgb.height, rgb.width) != expected:
        raise _Bad(path, f"image is {rgb.width}x{rgb.height} but the JSON says "
                         f"{expected[1]}x{expected[0]} (width x height)")
    return np.asarray(rgb, dtype=np.float32) / 255.0, grey


def _resize(array: np.ndarray, size: int, *, nearest: bool) -> np.ndarray:
    from PIL import Image

    method = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
    if nearest:
        image = Image.fromarray(array.astype(np.int32), mode="I")
        return np.asarray(image.resize((size, size), method), dtype=np.int64)
    channels = [np.asarray(Image.fromarray(array[..., c], mode="F").resize((size, size), method))
                for c in range(array.shape[-1])]
    return np.asarray(np.clip(np.stack(channels, axis=-1), 0.0, 1.0), dtype=np.float32)


def _objects(path: Path, anns: list[dict[str, Any]], height: int, width: int,
             class_of: dict[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Instance map, class map (with IGNORE_LABEL for crowds), boxes and labels of one image."""
    decoded = []
    ignore = np.zeros((height, width), dtype=bool)
    for ann in anns:
        ident = ann.get("id", "?")
        if ann.get("category_id") not in class_of:
            raise _Bad(path, f"annotation {ident} has unknown category_id {ann.get('category_id')!r}")
        bbox = ann.get("bbox")
        try:
            segmentation = ann.get("segmentation") or []
            if segmentation:
                mask = decode_segmentation(segmentation, height, width)
            elif bbox is not None:
                mask = np.zeros((height, width), dtype=bool)
                x, y, w, h = (float(v) for v in bbox)
                mask[int(round(y)):int(round(y + h)), int(round(x)):int(round(x + w))] = True
            else:
                raise ValueError("has neither segmentation nor bbox")
            if bbox is not None:
                if len(bbox) != 4 or not all(np.isfinite(float(v)) for v in bbox) or min(bbox[2:]) < 0:
                    raise ValueError(f"bbox must be [x, y, width >= 0, height >= 0]; got {bbox!r}")
                box = np.array([bbox[0], bbox[1], bbox[0] + bbox[2], bbox[1] + bbox[3]], np.float32)
            elif mask.any():
                rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
                box = np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], np.float32)
            else:
                raise ValueError("has an empty segmentation and no bbox")
        except (ValueError, TypeError, OverflowError) as err:
            raise _Bad(path, f"annotation {ident}: {err}") from None
        if ann.get("iscrowd"):
            ignore |= mask
        else:
            decoded.append((box_area(box), mask, box, class_of[ann["category_id"]]))
    instances = np.zeros((height, width), dtype=np.int64)
    # objects keep the JSON's order; painted largest first, so smaller objects end up on top
    for j in sorted(range(len(decoded)), key=lambda k: -decoded[k][0]):
        instances[decoded[j][1]] = j + 1
    labels = np.array([item[3] for item in decoded], dtype=np.int64)
    classes = np.where(instances > 0, 1 + np.concatenate([[0], labels])[instances], 0)
    classes[ignore & (instances == 0)] = IGNORE_LABEL
    boxes = np.array([item[2] for item in decoded], dtype=np.float32).reshape(-1, 4)
    return instances, classes, boxes, labels


def _image_entries(json_path: Path, images: list[Any]) -> list[dict[str, Any]]:
    """Validated ``images`` entries: unique int ``id``, ``file_name`` and the optional
    ``size`` = (height, width) from the JSON."""
    if not images:
        raise _Bad(json_path, "COCO JSON lists no images")
    entries: list[dict[str, Any]] = []
    seen: set[int] = set()
    for entry in images:
        try:
            ident = entry["id"]
            if not isinstance(ident, int) or isinstance(ident, bool) or ident in seen:
                raise ValueError
            name = entry["file_name"]
            if not isinstance(name, str) or not name:
                raise ValueError
            size = ((int(entry["height"]), int(entry["width"]))
                    if "height" in entry and "width" in entry else None)
        except (KeyError, TypeError, ValueError):
            raise _Bad(json_path, f"image entry {entry!r:.80} needs a unique integer id, a "
                                  "file_name and integer width and height") from None
        seen.add(ident)
        entries.append({"id": ident, "file_name": name, "size": size})
    return entries


def _thresholds_from_info(json_path: Path, info: Any) -> tuple[float, float]:
    """COCO's (32^2, 96^2), or the thresholds :func:`to_coco` stored in ``info``."""
    if not isinstance(info, dict) or THRESHOLDS_KEY not in info:
        return COCO_AREA_THRESHOLDS
    value = info[THRESHOLDS_KEY]
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, (int, float)) for v in value) or not 0 < value[0] <= value[1]):
        raise _Bad(json_path, f"info.{THRESHOLDS_KEY} must be two increasing areas; got {value!r}")
    return float(value[0]), float(value[1])


def load_coco_folder(path: str | Path, *, image_size: int | None = None,
                     annotations: str | Path | None = None) -> SceneSet:
    """Read a COCO-format folder into a :class:`SceneSet` (see the module docstring)."""
    folder = Path(path)
    if image_size is not None and (not isinstance(image_size, int) or image_size < 4):
        raise ValueError(f"image_size must be None or an int >= 4; got {image_size!r}")
    json_path = Path(annotations) if annotations is not None else find_annotation_file(folder)
    data = _read_json(json_path)
    categories = sorted(data["categories"], key=lambda c: c.get("id", 0))
    try:
        class_of = {int(c["id"]): k for k, c in enumerate(categories)}
        names = tuple(str(c["name"]) for c in categories)
    except (KeyError, TypeError, ValueError):
        raise _Bad(json_path, "every category needs an integer id and a name") from None
    entries = _image_entries(json_path, data["images"])
    by_image: dict[int, list[dict[str, Any]]] = {entry["id"]: [] for entry in entries}
    for ann in data["annotations"]:
        if not isinstance(ann, dict) or ann.get("image_id") not in by_image:
            shown = ann.get("id", "?") if isinstance(ann, dict) else repr(ann)[:40]
            raise _Bad(json_path, f"annotation {shown} has no image_id of a listed image")
        by_image[ann["image_id"]].append(ann)
    pixels: list[np.ndarray] = []
    instance_maps: list[np.ndarray] = []
    class_maps: list[np.ndarray] = []
    boxes: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    greys: list[bool] = []
    ids: list[int] = []
    files: list[str] = []
    original_areas: list[float] = []
    for entry in entries:
        file = _image_file(folder, json_path, entry["file_name"])
        image, grey = _open_image(file, entry["size"])
        height, width = image.shape[:2]
        inst, cls, box, lab = _objects(json_path, by_image[entry["id"]], height, width, class_of)
        original_areas.append(float(height * width))
        if image_size is not None:
            scale = np.array([image_size / width, image_size / height] * 2, dtype=np.float32)
            image = _resize(image, image_size, nearest=False)
            inst = _resize(inst, image_size, nearest=True)
            cls = _resize(cls, image_size, nearest=True)
            box = box * scale
        elif pixels and image.shape != pixels[0].shape:
            raise _Bad(file, f"image is {width}x{height}, the first one {pixels[0].shape[1]}x"
                             f"{pixels[0].shape[0]}; pass image_size to resize them all")
        pixels.append(image)
        greys.append(grey)
        instance_maps.append(inst)
        class_maps.append(cls)
        boxes.append(box)
        labels.append(lab)
        ids.append(entry["id"])
        files.append(entry["file_name"])
    stacked = np.stack(pixels).transpose(0, 3, 1, 2)
    if all(greys):
        stacked = stacked[:, :1]
    thresholds = _thresholds_from_info(json_path, data.get("info"))
    if image_size is not None:
        factor = image_size ** 2 / float(np.median(original_areas))
        thresholds = (thresholds[0] * factor, thresholds[1] * factor)
    return SceneSet(images=np.ascontiguousarray(stacked, dtype=np.float32),
                    masks=np.stack(class_maps), instances=np.stack(instance_maps), boxes=boxes,
                    labels=labels, class_names=names, area_thresholds=thresholds,
                    image_ids=np.asarray(ids, dtype=np.int64),
                    category_ids=tuple(int(c["id"]) for c in categories),
                    name=folder.name or "coco", file_names=tuple(files))


# --- writing ------------------------------------------------------------------------------------


def _file_name(scenes: SceneSet, index: int) -> str:
    assert scenes.image_ids is not None
    if scenes.file_names is not None:
        return scenes.file_names[index]
    return f"{int(scenes.image_ids[index]):06d}.png"


def to_coco(scenes: SceneSet, *, include_masks: bool = True) -> dict[str, Any]:
    """Ground truth of ``scenes`` as a COCO instances dict (see the module docstring)."""
    assert scenes.image_ids is not None and scenes.category_ids is not None
    height, width = scenes.image_size
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    for i in range(len(scenes)):
        image_id = int(scenes.image_ids[i])
        images.append({"id": image_id, "file_name": _file_name(scenes, i),
                       "width": width, "height": height})
        for j, (box, label) in enumerate(zip(scenes.boxes[i], scenes.labels[i])):
            x0, y0, x1, y1 = (float(v) for v in box)
            ann: dict[str, Any] = {
                "id": len(anns) + 1, "image_id": image_id,
                "category_id": int(scenes.category_ids[int(label)]),
                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": box_area(box), "iscrowd": 0}
            if include_masks:
                ann["segmentation"] = encode_mask(scenes.instances[i] == j + 1)
            anns.append(ann)
    categories = [{"id": int(cid), "name": name, "supercategory": "object"}
                  for cid, name in zip(scenes.category_ids, scenes.class_names)]
    info = {"description": f"stridelab {scenes.name}",
            THRESHOLDS_KEY: [float(v) for v in scenes.area_thresholds]}
    return {"info": info, "images": images,
            "annotations": anns, "categories": categories}


def write_coco_folder(scenes: SceneSet, path: str | Path) -> Path:
    """Write ``scenes`` as a COCO folder: ``images/<file>.png`` (8-bit) and
    ``annotations/instances.json``; files are written atomically. Returns the JSON path."""
    from PIL import Image

    folder = Path(path)
    coco = to_coco(scenes)
    for i, entry in enumerate(coco["images"]):
        pixels = np.clip(np.round(scenes.images[i] * 255.0), 0, 255).astype(np.uint8)
        image = (Image.fromarray(pixels[0], mode="L") if pixels.shape[0] == 1
                 else Image.fromarray(pixels[:3].transpose(1, 2, 0), mode="RGB"))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        _atomic_write(folder / "images" / entry["file_name"], buffer.getvalue())
    json_path = folder / "annotations" / "instances.json"
    _atomic_write(json_path, json.dumps(coco).encode("utf-8"))
    return json_path


def _atomic_write(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder and ``os.replace``; mode 0644 minus umask
    (``mkstemp`` alone would leave 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o644 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
