"""Per-layer stride, receptive field, cost and diagnostics for any PyTorch model.

``stridelab.inspect(model, input_size=(3, 224, 224), batch_size=1, device="meta")`` returns a
:class:`Report`; this module is itself callable, and ``from stridelab.inspect import inspect``
works too. See :mod:`stridelab.inspect.api` for the capture and
``docs/inspect-json.md`` for the JSON schema.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from stridelab.inspect.api import inspect
from stridelab.inspect.records import Diagnostic, LayerRecord, Report
from stridelab.inspect.registry import LoadedModel, load_model
from stridelab.inspect.render import SCHEMA, SCHEMA_VERSION

__all__ = ["SCHEMA", "SCHEMA_VERSION", "Diagnostic", "LayerRecord", "LoadedModel", "Report",
           "inspect", "load_model"]


class _CallableModule(types.ModuleType):
    """Lets ``stridelab.inspect(model, ...)`` call :func:`inspect` directly."""

    def __call__(self, *args: Any, **kwargs: Any) -> Report:
        return inspect(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
