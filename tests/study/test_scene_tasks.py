"""The scene tasks' loss pieces against independent oracles."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.utils.class_weight import compute_class_weight

from stridelab.study.tasks.scene_tasks import IGNORE_LABEL, balanced_class_weights


def test_balanced_weights_match_scikit_learn_with_ignored_and_absent_labels() -> None:
    rng = np.random.default_rng(0)
    # background-dominated like the scenes: 0 is ~90 % of the pixels, label 4 never occurs
    labels = rng.choice([0, 1, 2, 3, 5], p=[0.9, 0.05, 0.03, 0.015, 0.005], size=(6, 16, 16))
    labels[:, :2] = IGNORE_LABEL
    weights = balanced_class_weights(torch.from_numpy(labels), 6)
    kept = labels[labels != IGNORE_LABEL]
    present = np.unique(kept)
    oracle = compute_class_weight("balanced", classes=present, y=kept)
    np.testing.assert_allclose(weights.numpy()[present], oracle, rtol=1e-6)
    assert weights[4] == 1.0 and weights.dtype == torch.float32
    # mean weight per labelled pixel is 1, and every present label carries the same total
    per_pixel = weights.numpy()[kept]
    assert per_pixel.mean() == pytest.approx(1.0, rel=1e-6)
    totals = [per_pixel[kept == c].sum() for c in present]
    np.testing.assert_allclose(totals, [len(kept) / len(present)] * len(present), rtol=1e-5)


def test_balanced_weights_make_an_all_background_guess_cost_as_much_as_any_label() -> None:
    """With balanced weights, the weighted cross-entropy of a uniform prediction is the same
    whichever labels the image holds: the background no longer dominates (torch oracle)."""
    labels = torch.zeros(1, 10, 10, dtype=torch.int64)
    labels[0, :1, :2] = 1  # 2 % of the pixels
    weights = balanced_class_weights(labels, 2)
    always_background = torch.tensor([4.0, -4.0])[None, :, None, None].expand(1, 2, 10, 10)
    unweighted = F.cross_entropy(always_background, labels)
    weighted = F.cross_entropy(always_background, labels, weight=weights)
    assert float(unweighted) < 0.2  # plain CE barely notices the missed digit
    assert float(weighted) == pytest.approx((float(F.softplus(torch.tensor(-8.0)))
                                             + float(F.softplus(torch.tensor(8.0)))) / 2, rel=1e-5)


def test_balanced_weights_reject_labels_out_of_range() -> None:
    with pytest.raises(ValueError, match="labels must lie in"):
        balanced_class_weights(torch.tensor([0, 1, 3]), 3)
