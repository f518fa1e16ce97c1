"""Datasets for the stride study, loaded fully into memory as float tensors in [0, 1].

Every loader returns a :class:`Splits`: train / validation / test images of shape (N, C, H, W),
pixel values in [0, 1] (not yet normalized), integer labels, class names and the per-channel
mean and standard deviation of the *training* split (normalization is applied batch by batch, so
the shifts of the consistency measurement fill with true black). Splits are stratified per class and depend
only on ``seed``.

Sources (``--dataset``):

* ``digits``: scikit-learn's bundled handwritten digits (1,797 real 8x8 images, 16 grey levels),
  bilinearly upsampled to ``image_size``. Loads offline.
* ``cifar10:PATH``: the CIFAR-10 "python version" pickle batches in ``PATH`` (``data_batch_1`` ..
  ``data_batch_5`` and ``test_batch``; dict keys ``b"data"`` (N x 3072 uint8, channel-major) and
  ``b"labels"``). ``test_batch`` is the test split; validation comes from the training batches.
* ``folder:PATH``: one sub-folder per class, any image format Pillow reads, converted to RGB and
  resized to ``image_size`` x ``image_size``.
* ``synthetic``: procedural images whose class is a 2-pixel-period texture (see
  :func:`synthetic_images`), so a model that subsamples without low-pass filtering can alias it.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

DATASET_KINDS = ("digits", "cifar10:PATH", "folder:PATH", "synthetic")
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
SYNTHETIC_CLASSES = ("plain", "vertical", "horizontal", "checker")


@dataclass(frozen=True)
class Splits:
    """Train / validation / test tensors of one dataset (images in [0, 1], shape (N, C, H, W))."""

    name: str
    classes: tuple[str, ...]
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def in_channels(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.train_x.shape[2]), int(self.train_x.shape[3])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Standardize a batch with the training split's per-channel mean and std."""
        return standardize(images, self.mean, self.std)

    def summary(self) -> dict[str, object]:
        return {
            "name": self.name, "classes": list(self.classes), "in_channels": self.in_channels,
            "image_size": list(self.image_size), "train": int(self.train_y.numel()),
            "val": int(self.val_y.numel()), "test": int(self.test_y.numel()),
        }


def standardize(images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]
                ) -> torch.Tensor:
    """``(images - mean) / std`` per channel of an ``(N, C, H, W)`` batch."""
    shape = (1, -1, 1, 1)
    mean_t = torch.tensor(mean, dtype=images.dtype, device=images.device).view(shape)
    std_t = torch.tensor(std, dtype=images.dtype, device=images.device).view(shape)
    return (images - mean_t) / std_t


def load_dataset(spec: str, *, image_size: int = 32, seed: int = 0, val_fraction: float = 0.1,
                 test_fraction: float = 0.2, train_limit: int | None = None) -> Splits:
    """Load ``spec`` (see module docstring) and split it deterministically from ``seed``.

    ``val_fraction`` / ``test_fraction`` are fractions of each class (the test fraction is unused
    for CIFAR-10, which has its own test batch). ``train_limit`` keeps at most that many training
    images (a seeded, class-balanced subset) for quick runs.
    """
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"dataset must be one of {', '.join(DATASET_KINDS)}; got {spec!r}")
    if not isinstance(image_size, int) or image_size < 4:
        raise ValueError(f"image_size must be an int >= 4; got {image_size!r}")
    for label, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 < value < 0.5:
            raise ValueError(f"{label} must be in (0, 0.5); got {value!r}")
    kind, _, path = spec.partition(":")
    if kind in ("cifar10", "folder") and not path:
        raise ValueError(f"dataset {kind!r} needs a path: --dataset {kind}:PATH")
    if kind == "digits" and not path:
        images, labels, classes = digits_images(image_size)
    elif kind == "synthetic" and not path:
        images, labels, classes = synthetic_images(image_size, seed=seed)
    elif kind == "folder":
        images, labels, classes = folder_images(Path(path), image_size)
    elif kind == "cifar10":
        return _cifar10_splits(Path(path), image_size, seed, val_fraction, train_limit)
    else:
        raise ValueError(f"dataset must be one of {', '.join(DATASET_KINDS)}; got {spec!r}")
    rng = np.random.default_rng(seed)
    parts = stratified_split(labels.numpy(), (val_fraction, test_fraction), rng)
    train_idx, val_idx, test_idx = parts
    train_idx = _limit(train_idx, labels.numpy(), train_limit, rng)
    return _make_splits(spec, classes, images, labels, train_idx, val_idx, test_idx)


def stratified_split(labels: np.ndarray, fractions: tuple[float, ...],
                     rng: np.random.Generator) -> list[np.ndarray]:
    """Split indices per class: part i > 0 gets ``round(n * fractions[i-1])`` of each class,
    part 0 the rest."""
    parts: list[list[int]] = [[] for _ in range(len(fractions) + 1)]
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        start = 0
        for part, fraction in enumerate(fractions, start=1):
            count = max(1, int(round(len(idx) * fraction))) if len(idx) > len(fractions) else 0
            parts[part].extend(idx[start:start + count].tolist())
            start += count
        parts[0].extend(idx[start:].tolist())
    return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]


def digits_images(image_size: int) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """scikit-learn's 1,797 handwritten digits, 16 grey levels scaled to [0, 1], upsampled."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy(np.asarray(digits.images, dtype=np.float32) / 16.0).unsqueeze(1)
    images = resize(images, image_size)
    labels = torch.from_numpy(np.asarray(digits.target, dtype=np.int64))
    return images, labels, tuple(str(i) for i in range(10))


def synthetic_images(image_size: int, *, seed: int, per_class: int = 300
                     ) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """Grey images: smooth random background plus a square patch carrying the class's texture.

    Classes: ``plain`` (patch of constant brightness), ``vertical`` / ``horizontal`` stripes and a
    ``checker`` board, all with a period of 2 pixels. Subsampling by 2 without low-pass filtering
    maps each texture to a constant (aliasing), so the class survives only if the model resolves
    detail at full resolution; the patch position and contrast are random.
    """
    rng = np.random.default_rng(10_007 + seed)
    n = per_class * len(SYNTHETIC_CLASSES)
    rows = np.arange(image_size)[:, None]
    cols = np.arange(image_size)[None, :]
    shape = (image_size, image_size)
    textures = tuple(np.broadcast_to(t, shape) for t in (
        np.zeros(shape), (cols % 2) * 2.0 - 1.0, (rows % 2) * 2.0 - 1.0,
        ((rows + cols) % 2) * 2.0 - 1.0))
    labels = np.repeat(np.arange(len(SYNTHETIC_CLASSES)), per_class)
    images = np.empty((n, 1, image_size, image_size), dtype=np.float32)
    patch = max(2, image_size // 3)
    for i, cls in enumerate(labels):
        low = rng.normal(0.0, 1.0, (1, 1, 4, 4))
        background = F.interpolate(torch.from_numpy(low), size=(image_size, image_size),
                                   mode="bilinear", align_corners=False)[0, 0].numpy()
        image = 0.5 + 0.12 * background
        top, left = rng.integers(0, image_size - patch + 1, size=2)
        contrast = rng.uniform(0.15, 0.35)
        region = (slice(top, top + patch), slice(left, left + patch))
        image[region] += rng.uniform(-0.1, 0.1) + contrast * textures[cls][region]
        image += rng.normal(0.0, 0.03, image.shape)
        images[i, 0] = np.clip(image, 0.0, 1.0)
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64)), SYNTHETIC_CLASSES


def folder_images(root: Path, image_size: int
                  ) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """Every readable image under ``root/<class>/``; sub-folder names (sorted) are the classes."""
    from PIL import Image, UnidentifiedImageError

    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {str(root)!r} does not exist or is not a folder")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(class_dirs) < 2:
        raise ValueError(f"dataset folder {str(root)!r} needs one sub-folder per class (>= 2); "
                         f"found {len(class_dirs)}")
    arrays: list[np.ndarray] = []
    labels: list[int] = []
    for cls, class_dir in enumerate(class_dirs):
        files = sorted(p for p in class_dir.iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            raise ValueError(f"class folder {str(class_dir)!r} contains no images")
        for file in files:
            try:
                with Image.open(file) as image:
                    rgb = image.convert("RGB").resize((image_size, image_size),
                                                      Image.Resampling.BILINEAR)
                    arrays.append(np.asarray(rgb, dtype=np.float32) / 255.0)
            except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
                raise ValueError(f"cannot read image {str(file)!r}: {err}") from err
            labels.append(cls)
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    return images, torch.tensor(labels, dtype=torch.int64), tuple(p.name for p in class_dirs)


def read_cifar10_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch: (N, 3, 32, 32) uint8 images and (N,) int64 labels."""
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR-10 batch {str(path)!r} not found")
    try:
        with path.open("rb") as handle:
            batch = pickle.load(handle, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
        images = data.reshape(-1, 3, 32, 32)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError,
            IndexError) as err:
        raise ValueError(f"corrupt CIFAR-10 batch {str(path)!r}: {type(err).__name__}: {err}"
                         ) from err
    if len(labels) != len(images) or (labels.size and not 0 <= labels.min() <= labels.max() < 10):
        raise ValueError(f"corrupt CIFAR-10 batch {str(path)!r}: labels do not match the images")
    return images, labels


def _cifar10_splits(root: Path, image_size: int, seed: int, val_fraction: float,
                    train_limit: int | None) -> Splits:
    if not root.is_dir():
        raise FileNotFoundError(f"CIFAR-10 folder {str(root)!r} does not exist")
    train = [read_cifar10_batch(root / name) for name in CIFAR10_TRAIN_FILES]
    test_images, test_labels = read_cifar10_batch(root / CIFAR10_TEST_FILE)
    images = np.concatenate([t[0] for t in train] + [test_images])
    labels = np.concatenate([t[1] for t in train] + [test_labels])
    n_train = len(images) - len(test_images)
    rng = np.random.default_rng(seed)
    train_idx, val_idx = stratified_split(labels[:n_train], (val_fraction,), rng)
    train_idx = _limit(train_idx, labels[:n_train], train_limit, rng)
    test_idx = np.arange(n_train, len(images))
    # Stay uint8 until each split is cut out: the float copy of all 60,000 images is 737 MB.
    return _make_splits(f"cifar10:{root}", CIFAR10_CLASSES, torch.from_numpy(images),
                        torch.from_numpy(labels), train_idx, val_idx, test_idx,
                        prepare=lambda chunk: resize(chunk.float().div_(255.0), image_size))


def resize(images: torch.Tensor, image_size: int) -> torch.Tensor:
    """Bilinear resize of (N, C, H, W) images to a square ``image_size`` (no-op if equal)."""
    if tuple(images.shape[-2:]) == (image_size, image_size):
        return images.contiguous()
    return F.interpolate(images, size=(image_size, image_size), mode="bilinear",
                         align_corners=False).clamp_(0.0, 1.0)


def _limit(idx: np.ndarray, labels: np.ndarray, limit: int | None,
           rng: np.random.Generator) -> np.ndarray:
    if limit is None or limit >= len(idx):
        return idx
    if limit < 1:
        raise ValueError(f"train_limit must be >= 1; got {limit}")
    # Round-robin over classes so a small subset stays balanced.
    per_class = [rng.permutation(idx[labels[idx] == c]).tolist() for c in np.unique(labels[idx])]
    chosen: list[int] = []
    while len(chosen) < limit:
        for bucket in per_class:
            if bucket and len(chosen) < limit:
                chosen.append(bucket.pop())
    return np.sort(np.asarray(chosen, dtype=np.int64))


def _make_splits(name: str, classes: tuple[str, ...], images: torch.Tensor, labels: torch.Tensor,
                 train_idx: np.ndarray, val_idx: np.ndarray, test_idx: np.ndarray,
                 prepare: Callable[[torch.Tensor], torch.Tensor] | None = None) -> Splits:
    """Cut the three splits out of ``images`` (``prepare`` turns each into float [0, 1])."""
    for part, idx in (("train", train_idx), ("validation", val_idx), ("test", test_idx)):
        if len(idx) == 0:
            raise ValueError(f"dataset {name!r} is too small: the {part} split is empty")

    def cut(idx: np.ndarray) -> torch.Tensor:
        chunk = images[torch.from_numpy(idx)]
        return (prepare(chunk) if prepare is not None else chunk).contiguous()

    train_x = cut(train_idx)
    mean = train_x.mean(dim=(0, 2, 3))
    std = train_x.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return Splits(
        name=name, classes=tuple(classes), train_x=train_x,
        train_y=labels[torch.from_numpy(train_idx)].contiguous(),
        val_x=cut(val_idx),
        val_y=labels[torch.from_numpy(val_idx)].contiguous(),
        test_x=cut(test_idx),
        test_y=labels[torch.from_numpy(test_idx)].contiguous(),
        mean=tuple(round(float(v), 6) for v in mean), std=tuple(round(float(v), 6) for v in std),
    )
