"""Datasets: real formats written by the tests, deterministic splits, clear errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stridelab.study.data import load_dataset, stratified_split
from tests.study.fixtures import write_cifar10


def _all_labels(splits) -> np.ndarray:
    return np.concatenate([splits.train_y.numpy(), splits.val_y.numpy(), splits.test_y.numpy()])


def test_digits_are_sklearns_images_upsampled_and_split_deterministically() -> None:
    from sklearn.datasets import load_digits

    reference = load_digits()
    splits = load_dataset("digits", image_size=32, seed=3)
    assert splits.train_x.shape[1:] == (1, 32, 32)
    assert splits.num_classes == 10 and splits.in_channels == 1
    assert len(_all_labels(splits)) == 1797
    np.testing.assert_array_equal(np.bincount(_all_labels(splits)), np.bincount(reference.target))
    for part in (splits.train_y, splits.val_y, splits.test_y):
        assert set(part.tolist()) == set(range(10))  # stratified: every class everywhere
    assert 0.0 <= float(splits.train_x.min()) and float(splits.train_x.max()) <= 1.0
    again = load_dataset("digits", image_size=32, seed=3)
    assert torch.equal(again.test_y, splits.test_y) and torch.equal(again.val_x, splits.val_x)
    other = load_dataset("digits", image_size=32, seed=4)
    assert not torch.equal(other.test_x, splits.test_x)


def test_upsampled_digit_matches_bilinear_reference() -> None:
    from sklearn.datasets import load_digits

    reference = load_digits()
    splits = load_dataset("digits", image_size=16, seed=0, test_fraction=0.2)
    # Each 16x16 image is the bilinear (half-pixel centres) upsampling of one 8x8 digit: the
    # mean brightness is preserved up to border effects, so the label-wise mean intensity matches.
    ours = np.concatenate([splits.train_x, splits.val_x, splits.test_x]).mean(axis=(1, 2, 3))
    theirs = reference.images.mean(axis=(1, 2)) / 16
    assert abs(np.sort(ours).mean() - np.sort(theirs).mean()) < 0.01


def test_stratified_split_is_a_partition() -> None:
    labels = np.repeat(np.arange(5), 40)
    parts = stratified_split(labels, (0.1, 0.25), np.random.default_rng(0))
    joined = np.concatenate(parts)
    assert sorted(joined.tolist()) == list(range(200))
    assert [len(p) for p in parts] == [5 * 26, 5 * 4, 5 * 10]


def test_cifar10_batches_are_read_exactly(tmp_path: Path) -> None:
    written = write_cifar10(tmp_path / "cifar", per_batch=20)
    splits = load_dataset(f"cifar10:{tmp_path / 'cifar'}", image_size=32, seed=0)
    assert splits.train_x.shape[1:] == (3, 32, 32) and splits.num_classes == 10
    assert len(splits.test_y) == 20 and len(splits.train_y) + len(splits.val_y) == 100
    raw = written["test_batch"]
    # CIFAR layout: 1024 red, then 1024 green, then 1024 blue values, rows of 32.
    for image, channel, row, col in ((0, 0, 0, 0), (3, 1, 5, 7), (19, 2, 31, 30)):
        expected = raw[image, channel * 1024 + row * 32 + col] / 255.0
        assert float(splits.test_x[image, channel, row, col]) == pytest.approx(expected)
    assert splits.test_y.tolist() == [i % 10 for i in range(20)]
    small = load_dataset(f"cifar10:{tmp_path / 'cifar'}", image_size=16, seed=0)
    assert small.test_x.shape == (20, 3, 16, 16)
    # Bilinear 2x reduction (half-pixel centres) of an image = mean of each 2x2 block.
    block = splits.test_x[:, :, :2, :2].mean(dim=(2, 3))
    assert torch.allclose(small.test_x[:, :, 0, 0], block, atol=1e-6)


def test_cifar10_missing_and_corrupt_batches_name_the_file(tmp_path: Path) -> None:
    root = tmp_path / "cifar"
    write_cifar10(root, per_batch=10)
    (root / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        load_dataset(f"cifar10:{root}")
    (root / "data_batch_3").write_bytes(b"\x80\x04 this is not a pickle")
    with pytest.raises(ValueError, match="data_batch_3"):
        load_dataset(f"cifar10:{root}")
    with (root / "data_batch_3").open("wb") as handle:
        pickle.dump({b"labels": [1, 2]}, handle)  # no b"data"
    with pytest.raises(ValueError, match="data_batch_3"):
        load_dataset(f"cifar10:{root}")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_dataset(f"cifar10:{tmp_path / 'nowhere'}")


def _write_folder(root: Path) -> None:
    colours = {"blue": (0, 0, 255), "green": (0, 255, 0), "red": (255, 0, 0)}
    for name, colour in colours.items():
        (root / name).mkdir(parents=True)
        for i in range(6):
            fmt = "PNG" if i % 2 == 0 else "JPEG"
            image = Image.new("RGB", (20 + i, 12), colour)
            image.save(root / name / f"img{i}.{fmt.lower()}", format=fmt)


def test_folder_dataset_reads_png_and_jpeg(tmp_path: Path) -> None:
    _write_folder(tmp_path / "imgs")
    splits = load_dataset(f"folder:{tmp_path / 'imgs'}", image_size=8, seed=1)
    assert splits.classes == ("blue", "green", "red")
    assert splits.train_x.shape[1:] == (3, 8, 8)
    images = torch.cat([splits.train_x, splits.val_x, splits.test_x])
    labels = torch.cat([splits.train_y, splits.val_y, splits.test_y])
    assert len(labels) == 18
    for cls in range(3):  # the class's colour channel is bright, the others dark (JPEG: ~)
        mean = images[labels == cls].mean(dim=(0, 2, 3))
        channel = {0: 2, 1: 1, 2: 0}[cls]
        assert float(mean[channel]) > 0.95
        assert float(mean.sum() - mean[channel]) < 0.1


def test_folder_dataset_errors_name_the_file(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    _write_folder(root)
    (root / "red" / "broken.png").write_bytes(b"definitely not an image")
    with pytest.raises(ValueError, match="broken.png"):
        load_dataset(f"folder:{root}")
    with pytest.raises(FileNotFoundError, match="missing"):
        load_dataset(f"folder:{tmp_path / 'missing'}")
    lonely = tmp_path / "lonely"
    (lonely / "only").mkdir(parents=True)
    with pytest.raises(ValueError, match="sub-folder per class"):
        load_dataset(f"folder:{lonely}")


def test_synthetic_classes_live_in_the_finest_detail() -> None:
    splits = load_dataset("synthetic", image_size=16, seed=0)
    assert splits.classes == ("plain", "vertical", "horizontal", "checker")
    images = torch.cat([splits.train_x, splits.val_x, splits.test_x])[:, 0]
    labels = torch.cat([splits.train_y, splits.val_y, splits.test_y])
    # Energy of the highest horizontal, vertical and diagonal frequencies (period 2), per class.
    signs = torch.tensor([1.0, -1.0]).repeat(8)
    vertical = (images * signs.view(1, 1, 16)).sum(dim=(1, 2)).abs()
    horizontal = (images * signs.view(1, 16, 1)).sum(dim=(1, 2)).abs()
    checker = (images * (signs.view(16, 1) * signs.view(1, 16))).sum(dim=(1, 2)).abs()
    for cls, energy in ((1, vertical), (2, horizontal), (3, checker)):
        assert float(energy[labels == cls].mean()) > 5 * float(energy[labels == 0].mean())
    # A stride-2 subsample of a period-2 texture is constant: the class information vanishes.
    sub = images[labels == 3][:, ::2, ::2]
    assert float(sub.std(dim=(1, 2)).mean()) < float(images[labels == 3].std(dim=(1, 2)).mean())


@pytest.mark.parametrize("spec", ["", "mnist", "cifar10", "folder:", "digits:x"])
def test_bad_dataset_spec(spec: str) -> None:
    with pytest.raises(ValueError, match="dataset"):
        load_dataset(spec)
