"""Model specs: a name a user types -> a ``torch.nn.Module`` and its default input size.

Accepted specs (:func:`load_model`):

* a built-in name from :data:`stridelab.nn.presets` (``resnet50``, ``cifar_resnet20``, ...);
* ``timm:NAME`` (``timm.create_model(NAME, pretrained=False)``; ``NAME`` may carry a pretrained
  tag such as ``convnext_tiny.fb_in22k`` which only chooses the default input size);
* ``torchvision:NAME`` (``torchvision.models.get_model(NAME, weights=None)``, and
  ``weights_backbone=None`` where the builder has it);
* ``package.module:attr`` and ``path/to/file.py:attr``, where ``attr`` is a module class or a
  factory (called without arguments) or a module instance. These run user code, so they are
  accepted only with ``allow_code=True`` (the command line); a server passes ``allow_code=False``.

Weights are never downloaded: every registry model is built with random weights, and timm names
that resolve through the Hugging Face hub (``hf-hub:...``) are refused.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

DEFAULT_INPUT_SIZE = (3, 224, 224)
_CIFAR_INPUT_SIZE = (3, 32, 32)
_VIDEO_FRAMES = 16
_HUB_PREFIXES = ("hf-hub:", "hf_hub:", "local-dir:")


@dataclass(frozen=True)
class LoadedModel:
    """A resolved spec: the module (random weights), the spec text and the model's default
    ``input_size`` ``(channels, *spatial)`` without the batch axis, or ``None`` when unknown."""

    model: torch.nn.Module
    spec: str
    input_size: tuple[int, ...] | None


def load_model(spec: str, *, allow_code: bool = True) -> LoadedModel:
    """Resolve a model spec (see the module docstring) to a :class:`LoadedModel`.

    Raises ``ValueError`` (one line) for an unknown name (with close names), a registry package
    that is not installed, or a code spec when ``allow_code`` is false; ``TypeError`` when the
    spec names something that is not a module or a factory of one.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise TypeError(f"model spec must be a non-empty string, got {spec!r}")
    spec = spec.strip()
    registry, _, name = spec.partition(":")
    if registry == "timm" and name:
        return _load_timm(spec, name)
    if registry == "torchvision" and name:
        return _load_torchvision(spec, name)
    if ":" in spec:
        if not allow_code:
            raise ValueError(f"model spec {spec!r}: package.module:attr and file.py:attr run user "
                             f"code and are accepted from the command line only; use a built-in "
                             f"name, timm:NAME or torchvision:NAME")
        return LoadedModel(_load_code(spec), spec, None)
    return _load_builtin(spec)


def resolve_model(model: torch.nn.Module | str, input_size: Sequence[int] | None
                  ) -> tuple[torch.nn.Module, Sequence[int]]:
    """``stridelab.inspect``'s argument handling: a spec string becomes its module, and a missing
    ``input_size`` becomes the spec's default (else :data:`DEFAULT_INPUT_SIZE`)."""
    default: tuple[int, ...] | None = None
    if isinstance(model, str):
        loaded = load_model(model)
        model, default = loaded.model, loaded.input_size
    if input_size is None:
        input_size = default if default is not None else DEFAULT_INPUT_SIZE
    return model, input_size


def _unknown(kind: str, name: str, known: Sequence[str]) -> ValueError:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return ValueError(f"unknown {kind} model {name!r}{hint}")


def _import_registry(package: str) -> Any:
    try:
        return importlib.import_module(package)
    except ImportError:
        raise ValueError(f"{package} is not installed: pip install {package}") from None


# -- built-ins ---------------------------------------------------------------------------------

def _load_builtin(spec: str) -> LoadedModel:
    try:
        from stridelab.nn import presets
    except ImportError:
        raise ValueError(f"model {spec!r}: built-in models need stridelab.nn, which is not "
                         f"available; use timm:NAME, torchvision:NAME, package.module:attr or "
                         f"file.py:attr") from None
    if spec not in presets:
        close = difflib.get_close_matches(spec, sorted(presets), n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ValueError(f"unknown model {spec!r}: {hint}use a built-in name "
                         f"({', '.join(sorted(presets))}), timm:NAME, torchvision:NAME, "
                         f"package.module:attr or file.py:attr")
    size = _CIFAR_INPUT_SIZE if spec.startswith("cifar_") else DEFAULT_INPUT_SIZE
    return LoadedModel(_build(presets[spec], spec), spec, size)


# -- timm --------------------------------------------------------------------------------------

@contextmanager
def _hub_offline() -> Iterator[None]:
    """Belt and braces: even if timm tried the Hugging Face hub, it would find it offline."""
    saved = {key: os.environ.get(key) for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ.update({key: "1" for key in saved})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _load_timm(spec: str, name: str) -> LoadedModel:
    if name.startswith(_HUB_PREFIXES):
        raise ValueError(f"model spec {spec!r}: hub names download files; use a timm "
                         f"architecture name such as timm:resnet50")
    timm = _import_registry("timm")
    architecture = name.split(".", 1)[0]
    if not timm.is_model(architecture):
        raise _unknown("timm", name, timm.list_models())
    with _hub_offline():
        try:
            model = timm.create_model(name, pretrained=False)
        except RuntimeError as err:  # an unknown pretrained tag
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ValueError(f"model spec {spec!r}: {first}") from None
    config = getattr(model, "pretrained_cfg", None) or {}
    size = config.get("input_size")
    return LoadedModel(model, spec, tuple(int(v) for v in size) if size else None)


# -- torchvision -------------------------------------------------------------------------------

def _load_torchvision(spec: str, name: str) -> LoadedModel:
    _import_registry("torchvision")
    from torchvision import models

    known = models.list_models()
    if name not in known:
        raise _unknown("torchvision", name, known)
    options: dict[str, Any] = {"weights": None}
    if "weights_backbone" in inspect.signature(models.get_model_builder(name)).parameters:
        options["weights_backbone"] = None  # detection / segmentation default to ImageNet weights
    model = models.get_model(name, **options)
    return LoadedModel(model, spec, _torchvision_input_size(name, model))


def _torchvision_input_size(name: str, model: torch.nn.Module) -> tuple[int, ...] | None:
    """The size torchvision's own preprocessing feeds the model.

    Classification / video: the DEFAULT weights' crop (inception_v3 299, EfficientNet-B7 600,
    video 16 frames of 112 or 224), unless the architecture fixes its size (ViT's
    ``image_size``); segmentation: the 520-pixel resize; detection: the transform's fixed or
    minimum size, square. Optical flow (two images per call): unknown (``None``).
    """
    from torchvision import models

    fixed = getattr(model, "image_size", None)
    if isinstance(fixed, int):
        return (3, fixed, fixed)
    if name in models.list_models(module=models.optical_flow):
        return None
    if name in models.list_models(module=models.detection):
        transform = getattr(model, "transform", None)
        fixed_size = getattr(transform, "fixed_size", None)
        if fixed_size:
            return (3, *(int(v) for v in fixed_size))
        min_size = getattr(transform, "min_size", None)
        return (3, int(min_size[-1]), int(min_size[-1])) if min_size else None
    try:
        preprocess = models.get_model_weights(name).DEFAULT.transforms()
    except (ValueError, AttributeError, KeyError):
        return DEFAULT_INPUT_SIZE
    crop = getattr(preprocess, "crop_size", None) or getattr(preprocess, "resize_size", None)
    if not crop:
        return DEFAULT_INPUT_SIZE
    spatial = (int(crop[0]), int(crop[-1]))
    if name in models.list_models(module=models.video):
        return (3, _VIDEO_FRAMES, *spatial)
    return (3, *spatial)


# -- user code ---------------------------------------------------------------------------------

def _attribute(namespace: Any, attr: str, where: str) -> Any:
    value = namespace
    for part in attr.split("."):
        if not hasattr(value, part):
            raise ValueError(f"model spec: {where} has no attribute {attr!r}")
        value = getattr(value, part)
    return value


def _load_code(spec: str) -> torch.nn.Module:
    target, attr = spec.rsplit(":", 1)
    if not attr or not target:
        raise ValueError(f"model spec {spec!r} must be package.module:attr or file.py:attr")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise ValueError(f"model spec: file {target!r} does not exist")
        module_spec = importlib.util.spec_from_file_location(f"_stridelab_user_{path.stem}", path)
        if module_spec is None or module_spec.loader is None:
            raise ValueError(f"model spec: cannot load {target!r} as Python")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_spec.name] = module
        module_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as err:
            raise ValueError(f"model spec: cannot import {target!r} ({err})") from None
    return _build(_attribute(module, attr, target), spec)


def _build(factory: Callable[[], Any] | torch.nn.Module, spec: str) -> torch.nn.Module:
    if isinstance(factory, torch.nn.Module):
        return factory
    if not callable(factory):
        raise TypeError(f"model spec {spec!r} names a {type(factory).__name__}; it must be a "
                        f"module class, a factory or a module instance")
    try:
        model = factory()
    except TypeError as err:
        raise TypeError(f"model spec {spec!r}: calling it without arguments failed ({err})"
                        ) from None
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model spec {spec!r} gave a {type(model).__name__}, not a "
                        f"torch.nn.Module")
    return model
