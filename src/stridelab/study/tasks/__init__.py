"""The study's tasks (``--task classify|segment|detect``, comma-separated for several) and which
variants each one trains.

* ``classify`` on ``digits`` / ``synthetic`` / ``folder:`` / ``cifar10:``: single-label
  classification with the CIFAR-style variants of :mod:`stridelab.study.variants` (as before).
* ``classify`` / ``segment`` / ``detect`` on ``scenes`` / ``coco:PATH``: see
  :mod:`stridelab.study.tasks.scene_tasks`; variants from
  :mod:`stridelab.study.tasks.scene_variants` (classify also takes the CIFAR-style ones).

``--variants auto`` (the default) picks each task's default list. Otherwise a comma-separated list;
an item ``task:name`` goes to that task only, a bare ``name`` to every task of the run.
"""

from __future__ import annotations

from typing import Any

from stridelab.study.config import DEFAULT_VARIANTS

TASKS = ("classify", "segment", "detect")
AUTO = "auto"


def parse_tasks(spec: str) -> list[str]:
    """``--task``: one or more of :data:`TASKS`, comma-separated, each at most once."""
    items = [item.strip() for item in spec.split(",")] if isinstance(spec, str) else []
    if not items or any(item not in TASKS for item in items) or len(set(items)) != len(items):
        raise ValueError(f"task must be one or more of {', '.join(TASKS)} (comma-separated, "
                         f"each once); got {spec!r}")
    return items


def variant_items(spec: str, task: str, tasks: list[str]) -> list[str] | None:
    """The variant names of ``spec`` that apply to ``task`` (None: use the task's defaults)."""
    if spec.strip() == AUTO:
        return None
    items = [item.strip() for item in spec.split(",")]
    if not all(items):
        raise ValueError(f"variants must be a comma-separated list of names; got {spec!r}")
    chosen = []
    for item in items:
        prefix, sep, name = item.partition(":")
        if sep and prefix in TASKS:
            if prefix not in tasks:
                raise ValueError(f"variants: {item!r} names task {prefix!r}, which is not in "
                                 f"--task {','.join(tasks)}")
            if prefix == task:
                chosen.append(name)
        else:
            chosen.append(item)
    return chosen


def resolve_task_variants(task: str, spec: str, tasks: list[str], *, scenes: bool, depth: int,
                          width: int, input_size: tuple[int, int]) -> list[Any]:
    """The variants ``task`` trains (objects with ``name``, ``plan``, ``source`` and
    ``build(num_classes=, in_channels=)``), validated against ``input_size``."""
    from stridelab.study.tasks.scene_variants import (
        DEFAULT_SCENE_VARIANTS,
        is_scene_variant_name,
        parse_scene_variant,
    )
    from stridelab.study.variants import resolve_variants

    items = variant_items(spec, task, tasks)
    if items is None:
        items = (DEFAULT_SCENE_VARIANTS[task] if scenes else DEFAULT_VARIANTS).split(",")
    if not items:
        for other in tasks:  # a malformed name for another task is the more useful message
            if other != task and variant_items(spec, other, tasks):
                resolve_task_variants(other, spec, tasks, scenes=scenes, depth=depth,
                                      width=width, input_size=input_size)
        raise ValueError(f"variants: none of {spec!r} applies to task {task!r}")
    variants: list[Any] = []
    for item in items:
        if scenes and (task != "classify" or is_scene_variant_name(item)):
            variant = parse_scene_variant(item, task, depth=depth, width=width)
            variant.plan.validate(input_size)
            variants.append(variant)
        elif task == "classify":
            variants.extend(resolve_variants(item, depth=depth, width=width,
                                             input_size=input_size))
        else:
            raise ValueError(f"variant {item!r} is for classification of digits / folder / "
                             f"cifar10 data; task {task!r} needs --dataset scenes or coco:PATH")
    names = [v.name for v in variants]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"variants: each name may appear once per task; repeated "
                         f"{', '.join(duplicates)}")
    return variants
