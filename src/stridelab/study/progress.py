"""Rich progress bars for training: one bar per (variant, seed) with running loss and accuracy."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

SMOOTHING = 0.9  # exponential moving average of the per-batch loss and accuracy


class RichProgress:
    """Implements :class:`stridelab.study.train.ProgressHook` with a rich Progress display."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<22}"), BarColumn(bar_width=24), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.3f} acc {task.fields[acc]:5.1%}"),
            TimeElapsedColumn(), console=console,
        )
        self.console = console
        self.label = ""
        self.task: TaskID | None = None
        self.loss: float | None = None
        self.acc: float | None = None

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def start(self, label: str, total_steps: int, completed_steps: int) -> None:
        self.loss = self.acc = None
        self.label = label
        self.task = self.progress.add_task(label, total=total_steps, completed=completed_steps,
                                           loss=float("nan"), acc=0.0)

    def step(self, loss: float, accuracy: float) -> None:
        self.loss = loss if self.loss is None else SMOOTHING * self.loss + (1 - SMOOTHING) * loss
        self.acc = (accuracy if self.acc is None
                    else SMOOTHING * self.acc + (1 - SMOOTHING) * accuracy)
        if self.task is not None:
            self.progress.update(self.task, advance=1, loss=self.loss, acc=self.acc)

    def finish(self) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=self.progress.tasks[-1].total)
        if not self.console.is_terminal and self.loss is not None and self.acc is not None:
            # No live bars in a log file: one line per finished run instead.
            self.console.print(f"{self.label}: trained, loss {self.loss:.3f}, "
                               f"train accuracy {self.acc:.1%}")
