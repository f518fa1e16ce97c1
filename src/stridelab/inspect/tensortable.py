"""A mapping keyed by tensor identity that does not keep its tensors alive.

``torch.utils.weak.WeakIdKeyDictionary`` does the same with a Python ``weakref`` subclass as its
key: every lookup builds one and calls its ``__init__``, ``__hash__`` and ``__eq__`` in Python,
about 2 us per ``in`` (the capture makes ~10 lookups per ATen operator; 12% of inspecting a
10,000-operator MViT-v2). Here the key is the plain ``id`` and the entry keeps a C ``weakref.ref``
next to the value: an entry counts only while that reference still points at the very tensor
asked about, so an ``id`` reused by a later tensor never inherits a dead tensor's value.
Dead entries stay until their ``id`` is reused (a few per operator of one forward pass).
"""

from __future__ import annotations

import weakref
from typing import Generic, TypeVar

import torch

V = TypeVar("V")


class TensorTable(Generic[V]):
    """``table[tensor] = value``, ``tensor in table``, ``table[tensor]``, ``table.get(tensor)``."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[int, tuple[weakref.ref[torch.Tensor], V]] = {}

    def __contains__(self, tensor: object) -> bool:
        entry = self._entries.get(id(tensor))
        return entry is not None and entry[0]() is tensor

    def __getitem__(self, tensor: torch.Tensor) -> V:
        entry = self._entries.get(id(tensor))
        if entry is None or entry[0]() is not tensor:
            raise KeyError(f"tensor {tuple(tensor.shape)} is not in the table")
        return entry[1]

    def get(self, tensor: object, default: V | None = None) -> V | None:
        entry = self._entries.get(id(tensor))
        if entry is None or entry[0]() is not tensor:
            return default
        return entry[1]

    def __setitem__(self, tensor: torch.Tensor, value: V) -> None:
        self._entries[id(tensor)] = (weakref.ref(tensor), value)

    def __len__(self) -> int:
        """Live entries (a full scan; for tests and debugging)."""
        return sum(1 for ref, _ in self._entries.values() if ref() is not None)
