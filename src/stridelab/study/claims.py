"""The seeds' claims about stride, tested against this run's numbers with a stated rule.

Each claim is a list of comparisons "variant A's metric vs variant B's", with the direction the
claim predicts (``higher``, ``lower``, or ``not lower`` for "as good at less cost"). The rule
(:func:`compare`), for means ``a``, ``b`` and sample standard deviations over seeds ``sa``, ``sb``:

    threshold = max(2 * sqrt(sa^2 + sb^2), RELATIVE_FLOOR * max(|a|, |b|))
    a difference counts when |a - b| > threshold

so ``higher`` is *as claimed* when ``a - b > threshold``, *against* when ``b - a > threshold`` and
*no difference* otherwise (``lower`` mirrors it; ``not lower`` is as claimed unless
``b - a > threshold``). The 1 % floor keeps single-seed runs (std 0) and exact costs from calling
noise-sized gaps a difference.

Verdict (:func:`verdict`): *supported* when every comparison is as claimed, *contradicted* when
every one is against, *inconclusive* when none shows a difference, otherwise *depends* (on the
comparisons that are not as claimed); *not measured* when this run has none of the variants.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

RELATIVE_FLOOR = 0.01
FRACTIONS = ("test_accuracy", "consistency", "mAP", "mIoU", "boundary_F1", "IoU_small",
             "IoU_medium", "IoU_large", "AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large")
SIGMAS = 2.0
EXPECTATIONS = ("higher", "lower", "not lower")
AS_CLAIMED, AGAINST, NO_DIFFERENCE = "as claimed", "against", "no difference"
RULE = (f"a difference counts when |Δ| > max({SIGMAS:g}·√(σa² + σb²), "
        f"{RELATIVE_FLOOR:.0%} of the larger value) (σ: sample std over seeds); supported = every "
        "comparison as claimed, contradicted = every one against, inconclusive = no difference in "
        "any, depends = a mix")


@dataclass(frozen=True)
class Stat:
    variant: str
    mean: float
    std: float = 0.0


@dataclass(frozen=True)
class Comparison:
    metric: str
    a: Stat
    b: Stat
    expect: str
    task: str = ""

    @property
    def outcome(self) -> str:
        return compare(self.a.mean, self.a.std, self.b.mean, self.b.std, self.expect)

    def describe(self) -> str:
        where = f"{self.task} " if self.task else ""
        return (f"{where}{self.metric}: {self.a.variant} {_fmt(self.a, self.metric)} vs "
                f"{self.b.variant} {_fmt(self.b, self.metric)} (claim: {self.expect}; "
                f"{self.outcome})")


def _fmt(stat: Stat, metric: str) -> str:
    """MACs in M, bytes in MiB, fractions (metrics in [0, 1]) in %, anything else as is."""
    if metric == "macs":
        scale, unit, digits = 1e-6, " M", 2
    elif metric.endswith("bytes"):
        scale, unit, digits = 1 / 2**20, " MiB", 2
    elif metric in FRACTIONS:
        scale, unit, digits = 100.0, " %", 1
    else:
        scale, unit, digits = 1.0, "", 3
    text = f"{stat.mean * scale:.{digits}f}"
    if stat.std * scale >= 0.5 * 10 ** -digits:
        text += f" ± {stat.std * scale:.{digits}f}"
    return text + unit


def threshold(a: float, sa: float, b: float, sb: float) -> float:
    return max(SIGMAS * math.sqrt(sa * sa + sb * sb), RELATIVE_FLOOR * max(abs(a), abs(b)))


def compare(a: float, sa: float, b: float, sb: float, expect: str) -> str:
    """Outcome of one comparison under the module's rule."""
    if expect not in EXPECTATIONS:
        raise ValueError(f"expect must be one of {', '.join(EXPECTATIONS)}; got {expect!r}")
    limit = threshold(a, sa, b, sb)
    diff = a - b
    if expect == "not lower":
        return AGAINST if -diff > limit else AS_CLAIMED
    if abs(diff) <= limit:
        return NO_DIFFERENCE
    return AS_CLAIMED if (diff > 0) == (expect == "higher") else AGAINST


def verdict(comparisons: Sequence[Comparison]) -> tuple[str, str]:
    """(verdict, what it depends on) for a claim's comparisons."""
    if not comparisons:
        return "not measured", "this run has no variants that test it"
    outcomes = [c.outcome for c in comparisons]
    if all(o == AS_CLAIMED for o in outcomes):
        return "supported", ""
    if all(o == AGAINST for o in outcomes):
        return "contradicted", ""
    if all(o == NO_DIFFERENCE for o in outcomes):
        return "inconclusive", "no comparison exceeds the threshold"
    odd = [f"{c.metric} {c.a.variant} vs {c.b.variant}: {c.outcome}"
           for c in comparisons if c.outcome != AS_CLAIMED]
    return "depends", "; ".join(odd)


# --- picking the variants ------------------------------------------------------------------------


def _by_task(results: dict[str, Any], task: str) -> list[dict[str, Any]]:
    return [v for v in results["variants"] if v.get("task", "classify") == task]


def _stride(variant: dict[str, Any]) -> float:
    return float(max(variant["static"]["effective_stride"]))


def _stat(variant: dict[str, Any], metric: str) -> Stat | None:
    if metric in ("macs", "params", "activation_bytes"):
        return Stat(variant["name"], float(variant["static"][metric]))
    summary = variant["summary"].get(metric)
    if summary is None or not math.isfinite(summary["mean"]) or summary["mean"] < 0:
        return None  # NaN (or pycocotools' -1): no object of that size in the test set
    return Stat(variant["name"], float(summary["mean"]), float(summary["std"]))


def _compare(a: dict[str, Any], b: dict[str, Any], metric: str,
             expect: str) -> list[Comparison]:
    sa, sb = _stat(a, metric), _stat(b, metric)
    task = str(a.get("task", "classify"))
    return [Comparison(metric, sa, sb, expect, task)] if sa and sb else []


def _single_path(variants: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Variants without a pyramid or skip decoder (one feature map decides) whose effective
    stride is trustworthy (no ``field_warning``)."""
    return [v for v in variants if v.get("head_kind", "classifier") != "skip"
            and "/" not in v.get("head_kind", "") and not v["static"].get("field_warning")]


def stride_pair(variants: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(finest, coarsest) output stride among the single-path variants, if they differ."""
    candidates = _single_path(variants)
    if len(candidates) < 2:
        return None
    low = min(candidates, key=_stride)
    high = max(candidates, key=_stride)
    return (low, high) if _stride(high) > _stride(low) else None


def _same_but_downsample(a: dict[str, Any], b: dict[str, Any]) -> bool:
    pa = {k: v for k, v in a["plan"].items() if k != "downsample"}
    pb = {k: v for k, v in b["plan"].items() if k != "downsample"}
    return pa == pb and a.get("head_kind", "classifier") == b.get("head_kind", "classifier")


# --- the claims ------------------------------------------------------------------------------------


def _compute(results: dict[str, Any]) -> list[Comparison]:
    out: list[Comparison] = []
    for task in results.get("tasks", ["classify"]):
        pair = stride_pair(_by_task(results, task))
        if pair:
            low, high = pair
            out += _compare(high, low, "macs", "lower")
            out += _compare(high, low, "peak_train_bytes", "lower")
    return out


def _detail(results: dict[str, Any]) -> list[Comparison]:
    out: list[Comparison] = []
    for task, metrics in (("segment", ("boundary_F1", "IoU_small")), ("detect", ("AP_small",))):
        pair = stride_pair(_by_task(results, task))
        if pair:
            low, high = pair
            for metric in metrics:
                out += _compare(high, low, metric, "lower")
    return out


def _invariance(results: dict[str, Any]) -> list[Comparison]:
    pair = stride_pair(_by_task(results, "classify"))
    if not pair:
        return []
    low, high = pair
    return _compare(high, low, "consistency", "higher")


def _pooling(results: dict[str, Any]) -> list[Comparison]:
    out: list[Comparison] = []
    for task in results.get("tasks", ["classify"]):
        variants = _by_task(results, task)
        strided = [v for v in variants if v["plan"].get("downsample") == "stride"]
        pooled = [v for v in variants if v["plan"].get("downsample") == "maxpool"]
        for a in strided:
            for b in pooled:
                if _same_but_downsample(a, b):
                    out += _compare(a, b, a.get("primary", "test_accuracy"), "higher")
    return out


def _pyramid(results: dict[str, Any]) -> list[Comparison]:
    variants = _by_task(results, "detect")
    pyramids = [v for v in variants if "/" in v.get("head_kind", "")]
    out: list[Comparison] = []
    for pyramid in pyramids:
        for single in _single_path(variants):
            out += _compare(pyramid, single, "AP", "higher")
    return out


def _encoder_decoder(results: dict[str, Any]) -> list[Comparison]:
    variants = _by_task(results, "segment")
    skips = [v for v in variants if v.get("head_kind") == "skip"]
    singles = _single_path(variants)
    if not skips or not singles:
        return []
    skip = max(skips, key=_stride)
    finest = min(singles, key=_stride)
    out = _compare(skip, finest, "macs", "lower") + _compare(skip, finest, "mIoU", "not lower")
    same_stride = [v for v in singles if _stride(v) == _stride(skip)]
    if same_stride:
        out += _compare(skip, same_stride[0], "boundary_F1", "higher")
    return out


CLAIMS: tuple[tuple[str, str, Callable[[dict[str, Any]], list[Comparison]]], ...] = (
    ("compute", "A larger stride lowers compute and memory",
     _compute),
    ("detail", "A larger stride loses spatial detail (boundaries, small objects)", _detail),
    ("invariance", "A larger stride improves translation invariance", _invariance),
    ("pooling", "Stride 2 as an alternative to pooling preserves more information", _pooling),
    ("pyramid", "Detection needs features at several strides (objects at several scales)",
     _pyramid),
    ("encoder-decoder", "Segmentation: downsample, then upsample back (cheaper, as accurate)",
     _encoder_decoder),
)


def evaluate_claims(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per claim: its text, the comparisons (described) and the computed verdict."""
    rows = []
    for key, text, pick in CLAIMS:
        comparisons = pick(results)
        result, depends_on = verdict(comparisons)
        rows.append({"key": key, "claim": text, "verdict": result, "depends_on": depends_on,
                     "measurements": [c.describe() for c in comparisons],
                     "outcomes": [c.outcome for c in comparisons]})
    return rows
