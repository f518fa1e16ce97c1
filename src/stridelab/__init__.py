"""stridelab: stride and padding as first-class citizens.

Subpackages load lazily so ``import stridelab`` (and ``stridelab.arith``) stays free of torch:
``stridelab.arith`` (pure Python), ``stridelab.ops`` (NumPy), ``stridelab.nn``,
``stridelab.inspect``, ``stridelab.study``, ``stridelab.viz`` (PyTorch and plotting).
"""

from __future__ import annotations

import importlib
from typing import Any

from stridelab._version import __version__

_SUBPACKAGES = ("arith", "ops", "nn", "inspect", "study", "viz", "cli")

# top-level functions, loaded on first use: name -> defining module
_FUNCTIONS = {"effective_field": "stridelab.inspect.erf"}

__all__ = ["__version__", *_SUBPACKAGES, *_FUNCTIONS]


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"stridelab.{name}")
    if name in _FUNCTIONS:
        return getattr(importlib.import_module(_FUNCTIONS[name]), name)
    raise AttributeError(f"module 'stridelab' has no attribute {name!r}")
