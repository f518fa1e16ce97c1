"""The claims table: the verdict rule on hand-made numbers, its symmetry, and the claims picked
from a results structure."""

from __future__ import annotations

import copy
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stridelab.study.claims import (
    AGAINST,
    AS_CLAIMED,
    NO_DIFFERENCE,
    Comparison,
    Stat,
    compare,
    evaluate_claims,
    threshold,
    verdict,
)
from tests.study.fixtures import fixed_results, fixed_scene_results


@pytest.mark.parametrize(("a", "sa", "b", "sb", "expect", "outcome"), [
    # 2 * sqrt(0.01^2 + 0.01^2) = 0.0283: a gap of 0.03 counts, 0.02 does not
    (0.80, 0.01, 0.77, 0.01, "higher", AS_CLAIMED),
    (0.80, 0.01, 0.78, 0.01, "higher", NO_DIFFERENCE),
    (0.77, 0.01, 0.80, 0.01, "higher", AGAINST),
    (0.77, 0.01, 0.80, 0.01, "lower", AS_CLAIMED),
    (0.80, 0.01, 0.77, 0.01, "lower", AGAINST),
    # not lower: only a significant drop is against
    (0.78, 0.01, 0.80, 0.01, "not lower", AS_CLAIMED),
    (0.70, 0.01, 0.80, 0.01, "not lower", AGAINST),
    (0.90, 0.01, 0.80, 0.01, "not lower", AS_CLAIMED),
    # exact numbers (std 0): the 1 % floor; 100 vs 99.5 is noise, 100 vs 98 is not
    (99.5, 0.0, 100.0, 0.0, "lower", NO_DIFFERENCE),
    (98.0, 0.0, 100.0, 0.0, "lower", AS_CLAIMED),
])
def test_compare_hand_made(a: float, sa: float, b: float, sb: float, expect: str,
                           outcome: str) -> None:
    assert compare(a, sa, b, sb, expect) == outcome


def test_threshold_formula() -> None:
    assert threshold(0.5, 0.03, 0.4, 0.04) == pytest.approx(2 * 0.05)
    assert threshold(1000.0, 0.0, 900.0, 0.0) == pytest.approx(10.0)
    with pytest.raises(ValueError, match="expect"):
        compare(1.0, 0.0, 0.0, 0.0, "bigger")


finite = st.floats(-100, 100, allow_nan=False)
spread = st.floats(0, 10, allow_nan=False)


@given(finite, spread, finite, spread)
def test_higher_and_lower_are_mirror_images(a: float, sa: float, b: float, sb: float) -> None:
    assert compare(a, sa, b, sb, "higher") == compare(b, sb, a, sa, "lower")
    up = compare(a, sa, b, sb, "higher")
    assert (up == NO_DIFFERENCE) == (abs(a - b) <= threshold(a, sa, b, sb))
    # "not lower" is against exactly when "higher" is
    assert (compare(a, sa, b, sb, "not lower") == AGAINST) == (up == AGAINST)


def _comparison(outcome: str) -> Comparison:
    values = {AS_CLAIMED: (2.0, 1.0), AGAINST: (1.0, 2.0), NO_DIFFERENCE: (1.0, 1.0)}[outcome]
    return Comparison("m", Stat("a", values[0]), Stat("b", values[1]), "higher")


@pytest.mark.parametrize(("outcomes", "expected"), [
    ([AS_CLAIMED, AS_CLAIMED], "supported"),
    ([AGAINST], "contradicted"),
    ([NO_DIFFERENCE, NO_DIFFERENCE], "inconclusive"),
    ([AS_CLAIMED, NO_DIFFERENCE], "depends"),
    ([AS_CLAIMED, AGAINST], "depends"),
    ([], "not measured"),
])
def test_verdict_rule(outcomes: list[str], expected: str) -> None:
    comparisons = [_comparison(o) for o in outcomes]
    assert [c.outcome for c in comparisons] == outcomes
    found, depends_on = verdict(comparisons)
    assert found == expected
    if expected == "depends":
        assert "a vs b" in depends_on


def test_digits_claims_pick_the_right_variants() -> None:
    rows = {row["key"]: row for row in evaluate_claims(fixed_results())}
    # compute: aggressive (stride 16) vs no-downsampling (stride 1): 2.5 M vs 120 M MACs
    assert rows["compute"]["verdict"] == "supported"
    assert rows["compute"]["measurements"][0].startswith("classify macs: aggressive")
    # invariance: consistency 0.79 +- 0.014 (aggressive) vs 0.9725 +- 0.0035: against
    assert rows["invariance"]["verdict"] == "contradicted"
    # no maxpool variant, no segmentation / detection in this run
    for key in ("pooling", "detail", "pyramid", "encoder-decoder"):
        assert rows[key]["verdict"] == "not measured"


def test_scene_claims_follow_the_numbers() -> None:
    results = fixed_scene_results()
    rows = {row["key"]: row for row in evaluate_claims(results)}
    assert rows["detail"]["verdict"] == "supported"  # os32 boundary F1 / small IoU / AP_small lower
    assert rows["pyramid"]["verdict"] == "depends"  # fpn beats os32 but not os8 (within noise)
    assert "fpn vs os8-dilated: no difference" in rows["pyramid"]["depends_on"]
    assert rows["pooling"]["verdict"] == "inconclusive"
    assert rows["encoder-decoder"]["verdict"] == "supported"
    # flip one number: the verdict follows
    flipped = copy.deepcopy(results)
    for variant in flipped["variants"]:
        if variant["task"] == "segment" and variant["name"] == "os32-strided-bilinear":
            variant["summary"]["boundary_F1"]["mean"] = 0.95
    assert {r["key"]: r for r in evaluate_claims(flipped)}["detail"]["verdict"] == "depends"


def test_missing_bucket_is_not_compared() -> None:
    results = fixed_scene_results()
    for variant in results["variants"]:
        if variant["task"] == "detect":
            variant["summary"]["AP_small"]["mean"] = math.nan
    rows = {row["key"]: row for row in evaluate_claims(results)}
    assert not any("AP_small" in m for m in rows["detail"]["measurements"])
