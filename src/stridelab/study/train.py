"""Seeded, resumable training of one (variant, seed) model.

* Optimizer: SGD (momentum 0.9, Nesterov) or AdamW; learning rate: linear warm-up over the first 5%
  of steps, then a cosine decay to 0, stepped once per batch.
* Determinism: the model is initialized after ``torch.manual_seed(seed)``; the shuffling (and the
  optional shift augmentation) of epoch ``e`` is drawn from a generator seeded with ``(seed, e)``.
  A resumed run therefore replays exactly the batches an uninterrupted run would have seen.
* Objective: what is learned comes from an :class:`Objective` (inputs, per-batch targets, loss,
  validation score); a :class:`~stridelab.study.data.Splits` means single-label classification
  (:class:`ClassificationObjective`, cross-entropy). The scene tasks bring their own
  (:mod:`stridelab.study.tasks`).
* Validation: the objective's validation score after every ``val_every``-th epoch and after the
  last one, recorded in that epoch's history entry (``val_every = epochs``: only at the end, which
  saves the per-epoch COCO evaluations of a short detection run).
* Checkpoints: after every completed epoch, ``epoch-<e>.pt`` (model, optimizer, scheduler, history,
  elapsed training seconds and the global RNG states), written atomically. Resuming loads the last
  one and restarts the interrupted epoch from its beginning.
"""

from __future__ import annotations

import math
import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from stridelab.study.config import TrainSettings
from stridelab.study.data import Splits
from stridelab.study.distributed import DistInfo, all_reduce_sum, barrier
from stridelab.study.runs import atomic_torch_save, checkpoint_path, latest_checkpoint

# Fault injection for the kill-and-resume test: SIGKILL this process after that many training
# steps (counted over the whole process). Never set it outside tests.
CRASH_ENV = "STRIDELAB_STUDY_CRASH_AFTER_STEPS"
WARMUP_FRACTION = 0.05


class ProgressHook(Protocol):
    """What the training loop reports (a rich progress bar in the CLI, nothing in the library)."""

    def start(self, label: str, total_steps: int, completed_steps: int) -> None: ...

    def step(self, loss: float, accuracy: float) -> None: ...

    def finish(self) -> None: ...


class Objective(Protocol):
    """What :func:`train_model` optimizes: inputs, per-batch targets, a loss and a validation
    score (higher is better, recorded in the history as ``validation_key``)."""

    train_x: torch.Tensor

    @property
    def validation_key(self) -> str: ...

    @property
    def supports_shift(self) -> bool: ...

    def normalize(self, images: torch.Tensor) -> torch.Tensor: ...

    def train_targets(self, indices: torch.Tensor) -> Any: ...

    def loss(self, outputs: Any, targets: Any) -> tuple[torch.Tensor, float]:
        """The batch loss and a score in [0, 1] for the progress bar (e.g. batch accuracy)."""
        ...

    def validation_score(self, model: nn.Module, device: torch.device) -> float: ...


class ClassificationObjective:
    """Single-label classification of :class:`Splits`: cross-entropy, validation accuracy."""

    validation_key = "val_accuracy"
    supports_shift = True

    def __init__(self, splits: Splits) -> None:
        self.splits = splits
        self.train_x = splits.train_x

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        return self.splits.normalize(images)

    def train_targets(self, indices: torch.Tensor) -> torch.Tensor:
        return self.splits.train_y[indices]

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, float]:
        targets = targets.to(outputs.device)
        correct = float((outputs.argmax(dim=1) == targets).sum())
        return F.cross_entropy(outputs, targets), correct / max(1, len(targets))

    def validation_score(self, model: nn.Module, device: torch.device) -> float:
        return accuracy(model, self.splits.val_x, self.splits.val_y, self.splits, device)


def as_objective(data: Splits | Objective) -> Objective:
    return ClassificationObjective(data) if isinstance(data, Splits) else data


class SilentProgress:
    def start(self, label: str, total_steps: int, completed_steps: int) -> None:
        return None

    def step(self, loss: float, accuracy: float) -> None:
        return None

    def finish(self) -> None:
        return None


@dataclass
class TrainOutcome:
    """The trained model (unwrapped) and what happened while training it."""

    model: nn.Module
    history: list[dict[str, float]] = field(default_factory=list)
    train_seconds: float = 0.0
    resumed_from_epoch: int = 0


_steps_in_process = 0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_optimizer(model: nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    params = list(model.parameters())
    if settings.optimizer == "sgd":
        return torch.optim.SGD(params, lr=settings.lr, momentum=settings.momentum, nesterov=True,
                               weight_decay=settings.weight_decay)
    return torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)


def cosine_with_warmup(total_steps: int) -> Callable[[int], float]:
    """LR multiplier: linear warm-up over 5% of the steps, then half a cosine down to 0."""
    warmup = max(1, int(total_steps * WARMUP_FRACTION))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def validates_after(epoch: int, settings: TrainSettings) -> bool:
    """Whether epoch ``epoch`` (1-based) ends with a validation: every ``val_every``-th epoch and
    always the last one."""
    return epoch % settings.val_every == 0 or epoch == settings.epochs


def epoch_batches(n_images: int, batch_size: int, seed: int, epoch: int,
                  world_size: int) -> tuple[list[torch.Tensor], torch.Generator]:
    """Shuffled global batches of epoch ``epoch`` and the epoch's generator for augmentation.

    A final partial batch is kept when it holds at least half a batch (and two images per rank:
    batch norm needs more than one value per channel); smaller tails are dropped, a different
    handful of images every epoch."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(n_images, generator=generator)
    batches = list(torch.split(order, batch_size))
    if len(batches) > 1 and len(batches[-1]) < max(2 * world_size, batch_size // 2):
        batches.pop()
    return batches, generator


def random_shift(images: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by up to ``max_shift`` pixels per axis, filling with zeros (black)."""
    n, _, height, width = images.shape
    padded = F.pad(images, (max_shift, max_shift, max_shift, max_shift))
    offsets = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=generator)
    return torch.stack([padded[i, :, int(dy):int(dy) + height, int(dx):int(dx) + width]
                        for i, (dy, dx) in enumerate(offsets)])


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, splits: Splits, device: torch.device,
            batch_size: int = 256) -> torch.Tensor:
    """Predicted class of every image (model in eval mode), as a CPU int64 tensor."""
    model.eval()
    out = [model(splits.normalize(chunk.to(device))).argmax(dim=1).cpu()
           for chunk in torch.split(images, batch_size)]
    return torch.cat(out)


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, splits: Splits,
             device: torch.device) -> float:
    return float((predict(model, images, splits, device) == labels).double().mean())


def train_model(model: nn.Module, data: Splits | Objective, settings: TrainSettings, *,
                seed: int, directory: Path, device: torch.device, info: DistInfo,
                progress: ProgressHook, label: str) -> TrainOutcome:
    """Train ``model`` (already initialized from ``seed``) on ``data`` (a :class:`Splits` for
    single-label classification, or any :class:`Objective`), resuming from ``directory`` if it
    holds checkpoints; writes ``epoch-<e>.pt`` there after every epoch (rank 0 only)."""
    global _steps_in_process
    objective = as_objective(data)
    if settings.augment == "shift" and not objective.supports_shift:
        raise ValueError("augment='shift' is supported for classification only (shifting "
                         "masks and boxes is not implemented); use augment='none'")
    model.to(device)
    optimizer = make_optimizer(model, settings)
    n_train = int(objective.train_x.shape[0])
    steps_per_epoch = len(epoch_batches(n_train, settings.batch_size, seed, 1, info.world_size)[0])
    total_steps = steps_per_epoch * settings.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_with_warmup(total_steps))
    outcome = TrainOutcome(model=model)
    start_epoch = 1
    latest = latest_checkpoint(directory)
    if latest is not None:
        state = torch.load(latest[1], map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        outcome.history = list(state["history"])
        outcome.train_seconds = float(state["train_seconds"])
        outcome.resumed_from_epoch = int(state["epoch"])
        _restore_rng(state["rng"])
        start_epoch = int(state["epoch"]) + 1
    trained: nn.Module = model
    if info.enabled:
        device_ids = [device.index] if device.type == "cuda" else None
        trained = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    crash_after = int(os.environ.get(CRASH_ENV, "0") or 0)
    progress.start(label, total_steps, (start_epoch - 1) * steps_per_epoch)
    for epoch in range(start_epoch, settings.epochs + 1):
        started = time.perf_counter()
        batches, generator = epoch_batches(n_train, settings.batch_size, seed, epoch,
                                           info.world_size)
        trained.train()
        loss_sum = correct = seen = 0.0
        for batch in batches:
            local = batch[info.rank::info.world_size]
            images = objective.train_x[local]
            if settings.augment == "shift":
                images = random_shift(images, settings.max_augment_shift, generator)
            images = objective.normalize(images).to(device)
            outputs = trained(images)
            loss, batch_score = objective.loss(outputs, objective.train_targets(local))
            optimizer.zero_grad(set_to_none=True)
            torch.autograd.backward(loss)
            optimizer.step()
            scheduler.step()
            loss_sum += float(loss.detach()) * len(local)
            correct += batch_score * len(local)
            seen += len(local)
            progress.step(float(loss.detach()), batch_score)
            _steps_in_process += 1
            if crash_after and _steps_in_process >= crash_after:
                os.kill(os.getpid(), signal.SIGKILL)
        loss_sum, correct, seen = all_reduce_sum([loss_sum, correct, seen], info, device)
        record: dict[str, float] = {"epoch": epoch, "loss": loss_sum / seen,
                                    "train_accuracy": correct / seen}
        if validates_after(epoch, settings):
            record[objective.validation_key] = objective.validation_score(model, device)
        seconds = time.perf_counter() - started
        outcome.train_seconds += seconds
        record.update(lr=float(scheduler.get_last_lr()[0]), seconds=seconds)
        outcome.history.append(record)
        if info.is_main:
            atomic_torch_save(checkpoint_path(directory, epoch), {
                "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "history": outcome.history,
                "train_seconds": outcome.train_seconds, "rng": _rng_state(),
                "settings": asdict(settings), "seed": seed,
            })
        barrier(info)
    progress.finish()
    model.eval()
    return outcome


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state(),
                             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
