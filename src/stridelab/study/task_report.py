"""Report sections of scene studies: the claims table, one table per task and the "does detail
drop as the output stride grows" lines, as rows of cells (rendered to Markdown, HTML or text by
:mod:`stridelab.study.report`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from stridelab.study.claims import RULE
from stridelab.study.scene_plots import single_path, task_view

CLAIM_COLUMNS = ("claim", "measured in this run (mean ± std over seeds)", "verdict")
TASK_COLUMNS = {
    "classify": ("variant", "how", "mAP %", "consistency %", "params", "MACs", "RF",
                 "out. stride", "eff. field", "latency ms", "train mem", "train s"),
    "segment": ("variant", "how", "mIoU %", "boundary F1 %", "IoU small %", "IoU medium %",
                "IoU large %", "params", "MACs", "RF", "out. stride", "eff. field",
                "latency ms", "train mem", "train s"),
    "detect": ("variant", "how", "AP %", "AP50 %", "AP75 %", "AP small %", "AP medium %",
               "AP large %", "params", "MACs", "RF", "out. stride", "eff. field", "latency ms",
               "train mem", "train s"),
}
TASK_METRICS = {
    "classify": ("mAP", "consistency"),
    "segment": ("mIoU", "boundary_F1", "IoU_small", "IoU_medium", "IoU_large"),
    "detect": ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large"),
}
DETAIL_METRICS = (("segment", "boundary_F1", "boundary F1"), ("segment", "IoU_small",
                                                               "IoU of small digits"),
                  ("detect", "AP_small", "AP of small digits"))


def claim_rows(results: dict[str, Any], separator: str = "; ") -> list[tuple[str, str, str]]:
    """(claim, measurements joined by ``separator``, verdict) per claim."""
    rows = []
    for claim in results.get("claims", []):
        measured = separator.join(claim["measurements"]) or "—"
        verdict = claim["verdict"] + (f" ({claim['depends_on']})"
                                      if claim["verdict"] in ("depends", "not measured") else "")
        rows.append((claim["claim"], measured, verdict))
    return rows


def claims_note() -> str:
    return f"Verdicts are computed, not written: {RULE}."


def _pct(stat: dict[str, float] | None) -> str:
    if stat is None or not math.isfinite(stat["mean"]):
        return "n/a"
    if stat["n"] > 1:
        return f"{100 * stat['mean']:.1f} ± {100 * stat['std']:.1f}"
    return f"{100 * stat['mean']:.1f}"


def effective_field_cell(variant: dict[str, Any]) -> str:
    """The "eff. field" column: the 95% extent of the effective receptive field after training
    (:mod:`stridelab.study.erf`), mean over seeds and axes, in input pixels; n/a when not
    measured."""
    values = [seed["effective_field"]["trained"]["extent95"] for seed in variant["seeds"]
              if isinstance(seed.get("effective_field"), dict)
              and "trained" in seed["effective_field"]]
    numbers = [float(v) for extent in values for v in extent]
    return f"{sum(numbers) / len(numbers):.0f}" if numbers else "n/a"


def task_rows(results: dict[str, Any], task: str) -> list[tuple[str, ...]]:
    from stridelab.study.report import _bytes, _per_axis, _pm, _si

    rows: list[tuple[str, ...]] = []
    for variant in task_view(results, task)["variants"]:
        s, st = variant["summary"], variant["static"]
        name = variant["name"] + (" *" if variant.get("pareto") else "")
        metrics = [_pct(s.get(m)) for m in TASK_METRICS[task]]
        rows.append((name, variant.get("head", ""), *metrics, _si(st["params"]), _si(st["macs"]),
                     _per_axis(st["receptive_field"]), _per_axis(st["effective_stride"]),
                     effective_field_cell(variant), _pm(s["latency_ms"], digits=2),
                     _bytes(s["peak_train_bytes"]["mean"]), _pm(s["train_seconds"], digits=1)))
    return rows


def detail_lines(results: dict[str, Any]) -> list[str]:
    """Per detail metric: its value at each output stride (single-path variants) and whether it
    drops monotonically as the stride grows, computed from the means."""
    lines = []
    for task, metric, label in DETAIL_METRICS:
        variants = single_path(task_view(results, task)["variants"])
        points = [(v["name"], int(max(v["static"]["effective_stride"])), v["summary"].get(metric))
                  for v in variants]
        points = [(n, s, st) for n, s, st in points if st is not None and math.isfinite(st["mean"])]
        if len(points) < 2:
            continue
        means = [st["mean"] for _, _, st in points]
        strides = [s for _, s, _ in points]
        drops = all(b < a for a, b in zip(means, means[1:], strict=False)) and len(set(strides)) > 1
        values = ", ".join(f"stride {s} ({n}): {_pct(st)}" for n, s, st in points)
        verdict = "drops at every step" if drops else "does not drop at every step"
        change = 100 * (means[-1] - means[0])
        lines.append(f"{task} {label} {verdict} as the output stride grows: {values} "
                     f"(stride {strides[0]} -> {strides[-1]}: {change:+.1f} points)")
    return lines


def task_title(task: str, results: dict[str, Any]) -> str:
    return {"classify": "Classification (multi-label presence of each digit class, mAP)",
            "segment": "Segmentation (mIoU, boundary F1, IoU by object size)",
            "detect": "Detection (CenterNet-style, COCO AP by pycocotools)"}[task]


def text_table(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """Fixed-width text (first column left-aligned, the rest right-aligned)."""
    every = [columns, *rows]
    widths = [max(len(row[i]) for row in every) for i in range(len(columns))]

    def line(row: tuple[str, ...]) -> str:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:],
                                                                         strict=True)]
        return "  ".join(cells).rstrip()

    rule = "-" * len(line(columns))
    return "\n".join([line(columns), rule, *[line(r) for r in rows], rule]) + "\n"


def markdown_table(columns: tuple[str, ...], rows: Sequence[Sequence[str]],
                   left: int = 1) -> str:
    """GitHub Markdown; the first ``left`` columns left-aligned, the others right-aligned."""
    head = "| " + " | ".join(columns) + " |"
    align = "|" + "|".join([":---"] * left + ["---:"] * (len(columns) - left)) + "|"
    body = ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join([head, align, *body]) + "\n"
