"""Training: determinism, resume equivalence, optimizers and the LR schedule."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch

from stridelab.study.config import TrainSettings
from stridelab.study.data import load_dataset
from stridelab.study.distributed import DistInfo
from stridelab.study.train import (
    SilentProgress,
    accuracy,
    cosine_with_warmup,
    epoch_batches,
    random_shift,
    seed_everything,
    train_model,
)
from stridelab.study.variants import resolve_variants

DEVICE = torch.device("cpu")


@pytest.fixture(scope="module")
def tiny_splits():
    return load_dataset("digits", image_size=12, seed=0, train_limit=96)


def _model(seed: int) -> torch.nn.Module:
    seed_everything(seed)
    variant = resolve_variants("strided", depth=8, width=4, input_size=(12, 12))[0]
    return variant.build(num_classes=10, in_channels=1)


def _train(splits, directory: Path, settings: TrainSettings, seed: int = 1):
    return train_model(_model(seed), splits, settings, seed=seed, directory=directory,
                       device=DEVICE, info=DistInfo(), progress=SilentProgress(), label="t")


def _same_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_resume_from_a_checkpoint_equals_uninterrupted(tiny_splits, tmp_path: Path,
                                                      optimizer: str) -> None:
    settings = TrainSettings(epochs=3, batch_size=16, optimizer=optimizer,
                             lr=0.05 if optimizer == "sgd" else 0.003, augment="shift")
    full = _train(tiny_splits, tmp_path / "full", settings)
    assert sorted(p.name for p in (tmp_path / "full").iterdir()) == [
        "epoch-1.pt", "epoch-2.pt", "epoch-3.pt"]
    # An interrupted run: only the first epoch's checkpoint survived.
    (tmp_path / "cut").mkdir()
    shutil.copy(tmp_path / "full" / "epoch-1.pt", tmp_path / "cut" / "epoch-1.pt")
    # Disturb the global RNGs: the resumed run must not depend on them.
    torch.manual_seed(12345)
    resumed = _train(tiny_splits, tmp_path / "cut", settings, seed=1)
    assert resumed.resumed_from_epoch == 1
    assert _same_state(full.model, resumed.model)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]
    # And a different seed really trains differently (the comparison above can fail).
    other = _train(tiny_splits, tmp_path / "other", settings, seed=2)
    assert not _same_state(full.model, other.model)


def test_training_learns_and_history_is_complete(tiny_splits, tmp_path: Path) -> None:
    settings = TrainSettings(epochs=3, batch_size=16, lr=0.05)
    outcome = _train(tiny_splits, tmp_path, settings)
    assert [h["epoch"] for h in outcome.history] == [1, 2, 3]
    assert outcome.history[-1]["loss"] < outcome.history[0]["loss"]
    assert outcome.history[-1]["lr"] == pytest.approx(0.0, abs=1e-9)  # cosine ends at zero
    checkpoint = torch.load(tmp_path / "epoch-2.pt", weights_only=False)
    assert checkpoint["epoch"] == 2 and set(checkpoint["rng"]) >= {"python", "numpy", "torch"}


def test_cosine_schedule_shape() -> None:
    factor = cosine_with_warmup(100)  # 5 warm-up steps
    assert [factor(i) for i in range(5)] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert factor(5) == pytest.approx(1.0)
    assert factor(5 + 95 // 2) == pytest.approx(0.5 * (1 + math.cos(math.pi * 47 / 95)))
    assert factor(100) == pytest.approx(0.0)


def test_epoch_batches_are_a_seeded_permutation() -> None:
    batches, _ = epoch_batches(50, 16, seed=3, epoch=2, world_size=1)
    again, _ = epoch_batches(50, 16, seed=3, epoch=2, world_size=1)
    assert [b.tolist() for b in batches] == [b.tolist() for b in again]
    assert [len(b) for b in batches] == [16, 16, 16]  # the 2-image tail is dropped
    assert len(set(torch.cat(batches).tolist())) == 48
    kept, _ = epoch_batches(60, 16, seed=3, epoch=2, world_size=1)
    assert [len(b) for b in kept] == [16, 16, 16, 12]  # at least half a batch: kept
    nxt, _ = epoch_batches(50, 16, seed=3, epoch=3, world_size=1)
    assert torch.cat(nxt).tolist() != torch.cat(batches).tolist()


def test_random_shift_moves_pixels_and_fills_black() -> None:
    image = torch.zeros(1, 1, 5, 5)
    image[0, 0, 2, 2] = 1.0
    out = random_shift(image.repeat(50, 1, 1, 1), 2, torch.Generator().manual_seed(0))
    positions = {tuple(torch.nonzero(o[0])[0].tolist()) for o in out}
    assert positions <= {(r, c) for r in range(5) for c in range(5)}
    assert len(positions) > 5
    assert float(out.sum()) == 50.0  # a shift of at most 2 keeps the centre pixel inside


@pytest.mark.parametrize(("field", "value"), [("epochs", 0), ("batch_size", 0),
                                              ("optimizer", "adam"), ("lr", 0.0),
                                              ("augment", "flip"), ("weight_decay", -1.0)])
def test_bad_settings_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        TrainSettings(**{field: value}).validate()  # type: ignore[arg-type]


def test_val_every_validates_only_then_and_at_the_end_without_changing_training(
        tiny_splits, tmp_path: Path) -> None:
    every = _train(tiny_splits, tmp_path / "every", TrainSettings(epochs=3, batch_size=16))
    sparse = _train(tiny_splits, tmp_path / "sparse",
                    TrainSettings(epochs=3, batch_size=16, val_every=2))
    assert [("val_accuracy" in h) for h in every.history] == [True, True, True]
    assert [("val_accuracy" in h) for h in sparse.history] == [False, True, True]
    assert _same_state(every.model, sparse.model)  # validation never touches the weights
    assert [h["loss"] for h in sparse.history] == [h["loss"] for h in every.history]
    # the recorded score is the final model's validation accuracy, computed independently
    direct = accuracy(sparse.model, tiny_splits.val_x, tiny_splits.val_y, tiny_splits, DEVICE)
    assert sparse.history[-1]["val_accuracy"] == pytest.approx(direct)


@pytest.mark.parametrize("val_every", [0, -1, 1.5])
def test_bad_val_every(val_every: object) -> None:
    with pytest.raises(ValueError, match="val_every"):
        TrainSettings(val_every=val_every).validate()  # type: ignore[arg-type]
