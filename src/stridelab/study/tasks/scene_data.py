"""Scene datasets for the segment / detect / multi-label classify tasks: ``scenes`` (bundled,
generated from scikit-learn's digits) and ``coco:PATH`` (a COCO-format folder).

:class:`SceneSplits` holds train / validation / test :class:`~stridelab.study.scenes.SceneSet`s and
their images as float tensors in [0, 1] (normalized batch by batch with the training split's mean
and standard deviation, like :class:`stridelab.study.data.Splits`).

* ``scenes``: ``make_scenes(n, split=...)`` for the three splits (disjoint source scans), seeded by
  the study's ``--seed``; ``--canvas`` pixels square. Sizes: ``train_limit`` training scenes
  (default :data:`DEFAULT_SCENE_COUNTS`), a validation set of a quarter and a test set of half that.
* ``coco:PATH``: every image of the folder (``load_coco_folder``, resized to ``canvas`` pixels
  square), split 70 / 10 / 20 % by a seeded permutation; ``train_limit`` caps the training images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

DEFAULT_SCENE_COUNTS = {"train": 800, "val": 100, "test": 300}
COCO_FRACTIONS = (0.1, 0.2)  # validation, test


@dataclass(frozen=True)
class SceneSplits:
    """Train / validation / test scenes and their image tensors."""

    name: str
    train: Any  # SceneSet
    val: Any
    test: Any
    train_x: torch.Tensor
    val_x: torch.Tensor
    test_x: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    stats: dict[str, Any]

    @property
    def in_channels(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.train_x.shape[2]), int(self.train_x.shape[3])

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.train.class_names)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Standardize a batch with the training scenes' per-channel mean and std."""
        from stridelab.study.data import standardize

        return standardize(images, self.mean, self.std)

    def summary(self) -> dict[str, object]:
        return {
            "name": self.name, "classes": list(self.classes), "in_channels": self.in_channels,
            "image_size": list(self.image_size), "train": len(self.train), "val": len(self.val),
            "test": len(self.test), "scene_stats": self.stats,
        }


def is_scene_dataset(spec: str) -> bool:
    return spec == "scenes" or spec.startswith("coco:")


def load_scene_splits(spec: str, *, canvas: int = 64, seed: int = 0,
                      train_limit: int | None = None) -> SceneSplits:
    """``scenes`` or ``coco:PATH`` (see module docstring)."""
    if spec == "scenes":
        from stridelab.study.scenes import make_scenes

        n_train = train_limit or DEFAULT_SCENE_COUNTS["train"]
        counts = {"train": n_train, "val": max(16, n_train // 4),
                  "test": max(32, n_train * DEFAULT_SCENE_COUNTS["test"]
                              // DEFAULT_SCENE_COUNTS["train"])}
        parts = {split: make_scenes(count, canvas=canvas, seed=seed, split=split)
                 for split, count in counts.items()}
        name = f"scenes ({canvas}x{canvas})"
    elif spec.startswith("coco:") and spec[5:]:
        from stridelab.study.coco import load_coco_folder

        everything = load_coco_folder(Path(spec[5:]), image_size=canvas)
        order = np.random.default_rng(seed).permutation(len(everything))
        n_val = max(1, int(round(len(order) * COCO_FRACTIONS[0])))
        n_test = max(1, int(round(len(order) * COCO_FRACTIONS[1])))
        if len(order) < n_val + n_test + 2:
            raise ValueError(f"dataset {spec!r} is too small: {len(order)} image(s); the study "
                             "needs at least 4 (train / validation / test)")
        train_idx = np.sort(order[n_val + n_test:])[:train_limit]
        parts = {"train": everything.subset(train_idx),
                 "val": everything.subset(np.sort(order[:n_val])),
                 "test": everything.subset(np.sort(order[n_val:n_val + n_test]))}
        name = spec
    else:
        raise ValueError(f"dataset must be scenes or coco:PATH for scene tasks; got {spec!r}")
    from stridelab.study.scenes import scene_stats

    tensors = {k: torch.from_numpy(np.ascontiguousarray(v.images, dtype=np.float32))
               for k, v in parts.items()}
    train_x = tensors["train"]
    mean = train_x.mean(dim=(0, 2, 3))
    std = train_x.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return SceneSplits(name=name, train=parts["train"], val=parts["val"], test=parts["test"],
                       train_x=train_x, val_x=tensors["val"], test_x=tensors["test"],
                       mean=tuple(round(float(v), 6) for v in mean),
                       std=tuple(round(float(v), 6) for v in std),
                       stats={k: scene_stats(v) for k, v in parts.items()})
