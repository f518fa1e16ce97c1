"""Configuration of a study (torch-free, so the CLI can show defaults without importing torch)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stridelab.study.runs import check_name

OPTIMIZERS = ("sgd", "adamw")
AUGMENTATIONS = ("none", "shift")


@dataclass(frozen=True)
class TrainSettings:
    """Hyper-parameters shared by every variant of a study."""

    epochs: int = 5
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.05
    weight_decay: float = 5e-4
    momentum: float = 0.9
    augment: str = "none"
    max_augment_shift: int = 2
    val_every: int = 1  # validate after every val_every-th epoch and always after the last

    def validate(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1; got {self.epochs}")
        if not isinstance(self.val_every, int) or self.val_every < 1:
            raise ValueError(f"val_every must be an int >= 1 (epochs between validations); "
                             f"got {self.val_every!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {self.batch_size}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; "
                             f"got {self.optimizer!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0; got {self.lr}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0; got {self.weight_decay}")
        if self.augment not in AUGMENTATIONS:
            raise ValueError(f"augment must be one of {', '.join(AUGMENTATIONS)}; "
                             f"got {self.augment!r}")


DEFAULT_VARIANTS = "strided,maxpool,blurpool,space-to-depth,aggressive,no-downsampling"


@dataclass(frozen=True)
class StudyConfig:
    """Everything that defines a study (``config.json``); the defaults are ``make demo``'s."""

    name: str = "study"
    runs_dir: str = "runs"
    dataset: str = "auto"
    task: str = "classify"
    variants: str = "auto"
    canvas: int = 64
    seeds: int = 2
    seed: int = 0
    epochs: int = 6
    batch_size: int = 32
    optimizer: str = "sgd"
    lr: float = 0.05
    weight_decay: float = 5e-4
    augment: str = "none"
    val_every: int = 1
    depth: int = 8
    width: int = 16
    image_size: int = 32
    train_limit: int | None = None
    max_shift: int = 4
    latency_repeats: int = 20
    effective_field: bool = True  # measure each model's effective receptive field (~3 s each)
    device: str = "auto"

    def validate(self) -> None:
        check_name(self.name)
        if self.seeds < 1:
            raise ValueError(f"seeds must be >= 1 (number of training seeds); got {self.seeds}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0; got {self.seed}")
        if self.max_shift < 0:
            raise ValueError(f"max_shift must be >= 0; got {self.max_shift}")
        if self.latency_repeats < 1:
            raise ValueError(f"latency_repeats must be >= 1; got {self.latency_repeats}")
        if self.device not in ("cpu", "cuda", "auto"):
            raise ValueError(f"device must be one of cpu, cuda, auto; got {self.device!r}")
        if not isinstance(self.canvas, int) or self.canvas < 32:
            raise ValueError(f"canvas must be an int >= 32 (pixels; output stride 32 needs "
                             f"it); got {self.canvas!r}")
        from stridelab.study.tasks import parse_tasks

        tasks = parse_tasks(self.task)
        scenes = self.scene_dataset
        if not scenes and tasks != ["classify"]:
            raise ValueError(f"task {self.task!r} needs --dataset scenes or coco:PATH (dataset "
                             f"{self.dataset!r} has class labels only); use --task classify")
        self.train_settings().validate()
        if self.augment != "none" and (scenes or tasks != ["classify"]):
            raise ValueError("augment='shift' is supported for classification of digits / "
                             "folder / cifar10 only; use --augment none with scenes")

    def task_list(self) -> list[str]:
        from stridelab.study.tasks import parse_tasks

        return parse_tasks(self.task)

    @property
    def dataset_spec(self) -> str:
        """``--dataset``, with ``auto`` resolved: ``digits`` when the only task is classify,
        ``scenes`` otherwise (so ``stridelab study --task segment`` runs as is)."""
        if self.dataset != "auto":
            return self.dataset
        return "digits" if self.task.strip() == "classify" else "scenes"

    @property
    def scene_dataset(self) -> bool:
        spec = self.dataset_spec
        return spec == "scenes" or spec.startswith("coco:")

    def train_settings(self) -> TrainSettings:
        return TrainSettings(epochs=self.epochs, batch_size=self.batch_size,
                             optimizer=self.optimizer, lr=self.lr,
                             weight_decay=self.weight_decay, augment=self.augment,
                             val_every=self.val_every)

    def seed_list(self) -> list[int]:
        """Training seeds: ``seed``, ``seed + 1``, ... (``seeds`` of them)."""
        return [self.seed + i for i in range(self.seeds)]

    def to_dict(self) -> dict[str, Any]:
        """The options that determine results (stored in and compared with config.json)."""
        values = dataclasses.asdict(self)
        values.pop("runs_dir")
        return values

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.name


