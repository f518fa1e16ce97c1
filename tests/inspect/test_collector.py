"""``stridelab.inspect`` hides older objects from the cyclic garbage collector during a capture
(``gc.freeze``) and gives them back afterwards, also when the capture fails; a caller's own
freeze and a disabled collector are left as they were."""

from __future__ import annotations

import gc
import threading
import time
import weakref

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from stridelab.inspect import api, inspect
from stridelab.inspect.api import CAPTURE_GC_THRESHOLD


class Broken(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("this model cannot run")


class Watch(nn.Module):
    """Records the freeze count and the collector's thresholds seen during its forward."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.seen: list[int] = []
        self.thresholds: list[tuple[int, int, int]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(gc.get_freeze_count())
        self.thresholds.append(gc.get_threshold())
        return self.conv(x)


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_older_objects_frozen_during_and_collectable_after() -> None:
    assert gc.get_freeze_count() == 0
    before = gc.get_threshold()
    assert before[0] < CAPTURE_GC_THRESHOLD
    garbage = Cycle()
    alive = weakref.ref(garbage)
    del garbage  # cyclic garbage that only the collector frees
    model = Watch()
    inspect(model, (3, 16, 16))
    assert model.seen and all(count > 0 for count in model.seen)
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before
    assert model.thresholds == [(CAPTURE_GC_THRESHOLD, *before[1:])] * len(model.seen)
    assert alive() is not None  # a cycle waits for the collector...
    gc.collect()
    assert alive() is None  # ...which reaches it again once the capture is over
    with pytest.raises(ValueError, match="cannot run"):
        inspect(Broken(), (3, 16, 16))
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before


def test_the_young_generation_is_collected_less_often_during_a_capture(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Oracle: ``gc.callbacks`` counts the collections of one capture, at our threshold and at
    Python's default (700), which the same capture triggers many times over."""
    model = nn.Sequential(*[nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
                            for _ in range(300)])
    inspect(model, (4, 16, 16))  # warm: first-call imports and caches allocate too

    def collections_of_one_capture() -> int:
        starts: list[int] = []

        def count(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                starts.append(info["generation"])

        gc.collect()
        gc.callbacks.append(count)
        try:
            inspect(model, (4, 16, 16))
        finally:
            gc.callbacks.remove(count)
        return len(starts)

    saved = gc.get_threshold()
    gc.set_threshold(700, *saved[1:])  # Python's default, which the test compares with
    try:
        ours = collections_of_one_capture()
        monkeypatch.setattr(api, "CAPTURE_GC_THRESHOLD", 700)
        default = collections_of_one_capture()
    finally:
        gc.set_threshold(*saved)
    assert default >= 10 * max(ours, 1)


def test_a_callers_freeze_and_a_disabled_collector_are_kept() -> None:
    gc.freeze()
    try:
        model = Watch()
        inspect(model, (3, 16, 16))
        assert gc.get_freeze_count() > 0  # not unfrozen by the inspector
    finally:
        gc.unfreeze()
    gc.disable()
    try:
        model = Watch()
        inspect(model, (3, 16, 16))
        assert model.seen == [0] * len(model.seen) and not gc.isenabled()
    finally:
        gc.enable()


class Meeting(nn.Module):
    """A leaf (no submodules) whose forward waits until both threads' captures are inside it,
    then lets the one with ``linger`` finish later."""

    def __init__(self, barrier: threading.Barrier, linger: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(4, 3, 3, 3))
        self.barrier = barrier
        self.linger = linger
        self.thresholds: list[tuple[int, int, int]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.barrier.wait(timeout=30)
        self.thresholds.append(gc.get_threshold())
        time.sleep(self.linger)
        return F.conv2d(x, self.weight)


def test_overlapping_captures_in_threads_restore_the_collector() -> None:
    """The first capture to finish must not restore the collector under the second, and the
    second must not 'restore' the tuned settings it saw (oracle: the settings before both)."""
    before = gc.get_threshold()
    barrier = threading.Barrier(2)
    models = [Meeting(barrier, 0.0), Meeting(barrier, 0.3)]
    errors: list[BaseException] = []

    def run(model: Meeting) -> None:
        try:
            inspect(nn.Sequential(model), (3, 8, 8))
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(m,)) for m in models]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert all(m.thresholds == [(CAPTURE_GC_THRESHOLD, *before[1:])] for m in models)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
