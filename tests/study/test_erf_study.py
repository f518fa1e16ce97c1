"""The study's effective-field measurement and its place in the report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import stridelab
from stridelab.study.erf import (
    SAMPLES,
    effective_field_entry,
    markdown_lines,
    measure_effective_field,
    summary_rows,
)
from stridelab.study.report import write_report
from stridelab.study.results import mark_pareto
from stridelab.study.variants import base_plan, builtin_variant
from tests.study.fixtures import fixed_results


def _models(name: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    variant = builtin_variant(name, base_plan(depth=8, width=4))
    torch.manual_seed(0)
    initial = variant.build(num_classes=10, in_channels=1)
    trained = variant.build(num_classes=10, in_channels=1)  # stands in for a trained copy
    return initial, trained


def test_entry_matches_effective_field_and_the_theory() -> None:
    images = torch.randn(SAMPLES + 4, 1, 24, 24)
    initial, trained = _models("strided")
    entry = effective_field_entry(initial, trained, images)
    assert set(entry) == {"init", "trained"}
    direct = stridelab.effective_field(initial, (1, 24, 24), inputs=images[:SAMPLES])
    init = entry["init"]
    assert init["layer"] == direct.layer and init["samples"] == SAMPLES
    assert init["extent95"] == pytest.approx(list(direct.extent(0.95)))
    assert init["std"] == pytest.approx(list(direct.std))
    report = stridelab.inspect(initial, (1, 24, 24))
    assert init["field"] == report.field_at(init["layer"]).to_dict()
    heat = np.asarray(init["map"])
    assert heat.shape == (24, 24) and heat.sum() == pytest.approx(1.0, abs=1e-4)
    # the trained model's field is measured with the same (shared) capture: same as direct
    trained_direct = stridelab.effective_field(trained, (1, 24, 24), inputs=images[:SAMPLES])
    assert entry["trained"]["extent95"] == pytest.approx(list(trained_direct.extent(0.95)))
    assert np.asarray(entry["trained"]["map"]) == pytest.approx(trained_direct.map, abs=1e-6)
    assert initial.training  # the train/eval flag is restored
    with pytest.raises(ValueError, match="images must be"):
        measure_effective_field(initial, torch.zeros(3, 24, 24))


def test_report_shows_theory_beside_effective_field(tmp_path: Path) -> None:
    results = fixed_results()
    images = torch.randn(SAMPLES, 1, 16, 16)
    for variant, name in zip(results["variants"][:2], ("strided", "aggressive")):
        entry = effective_field_entry(*_models(name), images)
        for index, seed in enumerate(variant["seeds"]):
            scaled = {**entry["trained"], "extent95": [e + index for e in
                                                       entry["trained"]["extent95"]]}
            seed["effective_field"] = {"init": entry["init"], "trained": scaled}
    mark_pareto(results)
    rows = summary_rows(results)
    assert [r[0] for r in rows] == [v["name"] for v in results["variants"][:2]]
    first = results["variants"][0]["seeds"]
    mean = np.mean([s["effective_field"]["trained"]["extent95"] for s in first], axis=0)
    assert rows[0][5] in (f"{mean[0]:.1f}", f"{mean[0]:.1f} x {mean[1]:.1f}")
    lines = "\n".join(markdown_lines(results))
    assert "Effective receptive field" in lines and "theoretical RF" in lines
    paths = write_report(results, tmp_path)
    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert lines in markdown and "![Effective receptive field per variant" in markdown
    assert "Effective receptive field (Luo et al. 2016)</h2>" in paths["html"].read_text()
    with Image.open(tmp_path / "effective_fields.png") as picture:
        assert picture.height > 500  # one row per measured variant, two of them
        assert np.asarray(picture.convert("L"), dtype=np.float64).std() > 10
    assert markdown_lines(fixed_results()) == []  # old results: no section, no plot


def test_study_without_effective_field_skips_it_and_says_so(tmp_path: Path) -> None:
    from stridelab.study.config import StudyConfig
    from stridelab.study.runner import run_study

    config = StudyConfig(name="no-erf", runs_dir=str(tmp_path), dataset="scenes", canvas=32,
                         task="segment", variants="os32-strided", train_limit=16, seeds=1,
                         epochs=1, batch_size=16, depth=8, width=4, latency_repeats=1,
                         effective_field=False, device="cpu")
    results = run_study(config)
    assert results is not None
    seed = results["variants"][0]["seeds"][0]
    assert "effective_field" not in seed and "mIoU" in seed
    report = (tmp_path / "no-erf" / "report.md").read_text()
    assert "Effective receptive field" not in report and "| n/a |" in report
    assert not (tmp_path / "no-erf" / "effective_fields.png").exists()
