"""COCO segmentations (polygons, RLE) to and from boolean masks, validated (pycocotools inside).

pycocotools decodes an RLE whose run lengths do not add up to height x width into uninitialized
memory instead of failing, so every RLE is checked first: uncompressed counts directly, compressed
strings by :func:`rle_counts_from_string` (our own reading of its format).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np


def rle_counts_from_string(counts: str) -> list[int]:
    """Decode COCO's compressed RLE string (pycocotools' ``rleFrString``) into run lengths.

    Each run is a little-endian base-32 number, 5 bits per character (character code - 48), bit
    0x20 marks "more characters follow", bit 0x10 of the last character is the sign; from the third
    run on the value is a difference to the run two positions earlier.
    """
    runs: list[int] = []
    position = 0
    while position < len(counts):
        value, shift, more = 0, 0, True
        while more:
            if position >= len(counts):
                raise ValueError("RLE string ends in the middle of a run")
            code = ord(counts[position]) - 48
            if not 0 <= code < 64:
                raise ValueError(f"RLE string has an invalid character {counts[position]!r}")
            value |= (code & 0x1F) << shift
            more = bool(code & 0x20)
            position += 1
            shift += 5
            if not more and code & 0x10:
                value -= 1 << shift
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
    return runs


def check_runs(runs: Sequence[Any], height: int, width: int) -> None:
    if not all(isinstance(r, (int, np.integer)) and not isinstance(r, bool) and r >= 0 for r in runs):
        raise ValueError("RLE counts must be non-negative integers")
    if sum(int(r) for r in runs) != height * width:
        raise ValueError(f"RLE counts sum to {sum(int(r) for r in runs)}, not height*width = "
                         f"{height * width}")


def decode_segmentation(segmentation: Any, height: int, width: int) -> np.ndarray:
    """Boolean (height, width) mask of a COCO ``segmentation`` (polygons or RLE), validated.

    Raises ValueError (without a file name) for anything that does not describe the image.
    """
    from pycocotools import mask as mask_utils

    if isinstance(segmentation, list):
        polygons = []
        for polygon in segmentation:
            if (not isinstance(polygon, list) or len(polygon) < 6 or len(polygon) % 2
                    or not all(isinstance(v, (int, float)) and np.isfinite(v) for v in polygon)):
                raise ValueError("a polygon must be a list of >= 3 finite x, y pairs")
            polygons.append([float(v) for v in polygon])
        rles = mask_utils.frPyObjects(polygons, height, width)
        return decode_rle(mask_utils.merge(rles))
    if not isinstance(segmentation, dict) or "counts" not in segmentation or "size" not in segmentation:
        raise ValueError("segmentation must be a list of polygons or an RLE dict with size and counts")
    if list(segmentation["size"]) != [height, width]:
        raise ValueError(f"RLE size {segmentation['size']} differs from the image's "
                         f"[height, width] = [{height}, {width}]")
    counts = segmentation["counts"]
    if isinstance(counts, list):
        check_runs(counts, height, width)
        rle = mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)
    elif isinstance(counts, (str, bytes)):
        text = counts.decode("ascii") if isinstance(counts, bytes) else counts
        check_runs(rle_counts_from_string(text), height, width)
        rle = {"size": [height, width], "counts": text.encode("ascii")}
    else:
        raise ValueError("RLE counts must be a list of integers or a compressed string")
    return decode_rle(rle)


def decode_rle(rle: dict[str, Any]) -> np.ndarray:
    """pycocotools' decode, without its NumPy-2 ``__array__`` DeprecationWarning (harmless)."""
    from pycocotools import mask as mask_utils

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"__array__ implementation", category=DeprecationWarning)
        return np.asarray(mask_utils.decode(rle), dtype=bool)


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """Compressed RLE (JSON-ready: counts as str) of a boolean 2-D mask."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}
