"""The stride study: train stride variants of a small ResNet on real data and measure them.

``run_study(StudyConfig(...))`` does everything ``stridelab study`` does (see ``runner.py``).
Modules: ``config`` (options, torch-free), ``data`` (datasets and splits), ``variants`` (stride
plans), ``tasks`` (classify / segment / detect on scenes: variants, objectives, metrics glue),
``scenes`` / ``coco`` / ``metrics`` (scene data and the metrics), ``train`` (seeded, resumable
training of any objective), ``distributed`` (DDP under torchrun), ``measure`` (per-model
measurements), ``results`` (aggregation, Pareto front), ``claims`` (the seeds' claims and the
verdict rule), ``runs`` (run folder, atomic writes), ``report`` / ``task_report`` / ``plots`` /
``scene_plots`` / ``pictures`` (tables, Markdown, HTML, PNGs), ``progress`` (rich bars).
Attributes load lazily so that importing the package (e.g. for the CLI's defaults) needs no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from stridelab.study.config import DEFAULT_VARIANTS, StudyConfig, TrainSettings

_LAZY = {
    "run_study": "stridelab.study.runner",
    "load_dataset": "stridelab.study.data",
    "Splits": "stridelab.study.data",
    "Variant": "stridelab.study.variants",
    "BUILTIN_VARIANTS": "stridelab.study.variants",
    "resolve_variants": "stridelab.study.variants",
    "format_table": "stridelab.study.report",
    "format_summary": "stridelab.study.report",
    "evaluate_claims": "stridelab.study.claims",
    "write_report": "stridelab.study.report",
}

__all__ = ["DEFAULT_VARIANTS", "StudyConfig", "TrainSettings", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'stridelab.study' has no attribute {name!r}")
