"""Named stride plans for the study, all derived from one CIFAR-style ResNet.

The base is ``stridelab.nn.cifar_plan(depth)`` (3x3/1 stem, three stages with widths
w / 2w / 4w and stride 2 at stages 2 and 3) with its widths scaled to ``width``. Built-in variants
change only *how* (or how much) the model downsamples:

==================  =========================================================================
strided             stride-2 3x3 convs (the baseline; effective stride 4)
maxpool             max pool, then a stride-1 conv, at each downsampling point
avgpool             average pool instead
blurpool            binomial low-pass filter, then subsample (Zhang 2019)
space-to-depth      rearrange 2x2 pixel blocks into channels (lossless downsampling)
aggressive          stride 4 in the first stage, the baseline's stride 2 afterwards (eff. 16)
no-downsampling     stride 1 everywhere (effective stride 1; the most compute)
==================  =========================================================================

User plans come from a JSON or TOML file (``--variants strided,my_plans.toml``). A file holds one
plan, or several under a ``variants`` table keyed by name. A plan is a
:meth:`StridePlan.to_dict`-style mapping, applied *on top of* a built-in variant (key ``base``,
default ``strided``), so it may name only the fields it changes::

    # my_plans.toml
    [variants.blur-late]
    base = "strided"
    downsample = "blurpool"
    stages = [{blocks = 3, width = 16, stride = 1}, {blocks = 3, width = 32, stride = 1},
              {blocks = 3, width = 64, stride = 4}]
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from torch import nn

from stridelab.nn import ResNet, StridePlan, cifar_plan

BUILTIN_VARIANTS = ("strided", "maxpool", "avgpool", "blurpool", "space-to-depth", "aggressive",
                    "no-downsampling")
PLAN_SUFFIXES = (".json", ".toml")
VARIANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class Variant:
    """A named stride plan and where it came from (``built-in`` or a file path)."""

    name: str
    plan: StridePlan
    source: str = "built-in"

    def build(self, *, num_classes: int, in_channels: int) -> nn.Module:
        return ResNet(self.plan, num_classes=num_classes, in_channels=in_channels)


def base_plan(*, depth: int = 20, width: int = 16) -> StridePlan:
    """``cifar_plan(depth)`` with stage widths width, 2*width, 4*width and stem width ``width``."""
    if not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be an int >= 1; got {width!r}")
    plan = cifar_plan(depth)
    first = plan.stages[0].width
    stages = tuple(replace(stage, width=max(1, stage.width * width // first))
                   for stage in plan.stages)
    # Projection shortcuts (B) everywhere: option A cannot change width at stride 1, which the
    # no-downsampling variant needs, and one shortcut type keeps the variants comparable.
    return replace(plan, stages=stages, stem_width=width, shortcut="B")


def _with_strides(plan: StridePlan, strides: tuple[int, ...]) -> StridePlan:
    return replace(plan, stages=tuple(replace(stage, stride=stride)
                                      for stage, stride in zip(plan.stages, strides, strict=True)))


def builtin_variant(name: str, base: StridePlan) -> Variant:
    """One of :data:`BUILTIN_VARIANTS` applied to ``base``."""
    makers: dict[str, Callable[[], StridePlan]] = {
        "strided": lambda: replace(base, downsample="stride"),
        "maxpool": lambda: replace(base, downsample="maxpool"),
        "avgpool": lambda: replace(base, downsample="avgpool"),
        "blurpool": lambda: replace(base, downsample="blurpool"),
        "space-to-depth": lambda: replace(base, downsample="space_to_depth"),
        # Downsample by 4 right away (cheap early layers), then as the baseline does.
        "aggressive": lambda: _with_strides(
            base, (4, *(stage.stride for stage in base.stages[1:]))),
        "no-downsampling": lambda: _with_strides(base, (1,) * len(base.stages)),
    }
    if name not in makers:
        raise ValueError(f"variant must be one of {', '.join(BUILTIN_VARIANTS)} or a "
                         f".json/.toml plan file; got {name!r}")
    return Variant(name=name, plan=makers[name]())


def read_plan_file(path: Path) -> dict[str, Any]:
    """Parse a JSON or TOML plan file into a dict (TOML needs Python 3.11+ or ``tomli``)."""
    if not path.is_file():
        raise FileNotFoundError(f"plan file {str(path)!r} not found")
    try:
        if path.suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
        else:
            data = _toml_loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ValueError(f"plan file {str(path)!r} is not UTF-8 text: {err}") from err
    except ValueError as err:  # json.JSONDecodeError and tomllib.TOMLDecodeError
        raise ValueError(f"cannot parse plan file {str(path)!r}: {err}") from err
    if not isinstance(data, dict):
        raise ValueError(f"plan file {str(path)!r} must hold a table/object, not "
                         f"{type(data).__name__}")
    return data


def _toml_loads(text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised only on Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise ValueError("TOML plan files need Python >= 3.11 or the 'tomli' package; "
                             "use a .json plan file instead") from None
    result: dict[str, Any] = tomllib.loads(text)
    return result


def load_plan_file(path: Path, base: StridePlan,
                   input_size: tuple[int, int] | None = None) -> list[Variant]:
    """The variants of one plan file (see module docstring), validated."""
    data = read_plan_file(path)
    if "variants" in data:
        table = data["variants"]
        if not isinstance(table, dict) or not table:
            raise ValueError(f"plan file {str(path)!r}: 'variants' must be a non-empty table")
        entries = list(table.items())
    else:
        entries = [(str(data.get("name", path.stem)), data)]
    variants = []
    for name, entry in entries:
        if not isinstance(entry, dict):
            raise ValueError(f"plan file {str(path)!r}: variant {name!r} must be a table")
        _check_variant_name(name, str(path))
        fields = {k: v for k, v in entry.items() if k not in ("name", "base")}
        try:
            start = builtin_variant(str(entry.get("base", "strided")), base).plan
            plan = StridePlan.from_dict({**start.to_dict(), **fields})
            plan.validate(input_size)
        except (TypeError, KeyError) as err:
            raise ValueError(f"plan file {str(path)!r}, variant {name!r}: {err}") from err
        except ValueError as err:
            raise ValueError(f"plan file {str(path)!r}, variant {name!r}: {err}") from err
        variants.append(Variant(name=name, plan=plan, source=str(path)))
    return variants


def _check_variant_name(name: str, where: str) -> None:
    if not VARIANT_NAME.match(name):
        raise ValueError(f"{where}: variant name must be letters, digits, '.', '_' or '-'; "
                         f"got {name!r}")


def resolve_variants(spec: str, *, depth: int = 20, width: int = 16,
                     input_size: tuple[int, int] | None = None) -> list[Variant]:
    """``--variants``: comma-separated built-in names and/or plan-file paths, in that order."""
    items = [item.strip() for item in spec.split(",")] if isinstance(spec, str) else []
    if not items or not all(items):
        raise ValueError(f"variants must be a comma-separated list of {', '.join(BUILTIN_VARIANTS)}"
                         f" or .json/.toml files; got {spec!r}")
    base = base_plan(depth=depth, width=width)
    variants: list[Variant] = []
    for item in items:
        if item.lower().endswith(PLAN_SUFFIXES):
            variants.extend(load_plan_file(Path(item), base, input_size))
        else:
            variant = builtin_variant(item, base)
            variant.plan.validate(input_size)
            variants.append(variant)
    names = [v.name for v in variants]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"variants: each name may appear once; repeated {', '.join(duplicates)}")
    return variants
