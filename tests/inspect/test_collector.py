"""``stridelab.inspect`` hides older objects from the cyclic garbage collector during a capture
(``gc.freeze``) and gives them back afterwards, also when the capture fails; a caller's own
freeze and a disabled collector are left as they were."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch
from torch import nn

from stridelab.inspect import inspect


class Broken(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("this model cannot run")


class Watch(nn.Module):
    """Records the freeze count seen during its forward."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.seen: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(gc.get_freeze_count())
        return self.conv(x)


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_older_objects_frozen_during_and_collectable_after() -> None:
    assert gc.get_freeze_count() == 0
    garbage = Cycle()
    alive = weakref.ref(garbage)
    del garbage  # cyclic garbage that only the collector frees
    model = Watch()
    inspect(model, (3, 16, 16))
    assert model.seen and all(count > 0 for count in model.seen)
    assert gc.get_freeze_count() == 0
    assert alive() is not None  # a cycle waits for the collector...
    gc.collect()
    assert alive() is None  # ...which reaches it again once the capture is over
    with pytest.raises(ValueError, match="cannot run"):
        inspect(Broken(), (3, 16, 16))
    assert gc.get_freeze_count() == 0


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
