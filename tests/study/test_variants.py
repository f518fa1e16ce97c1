"""Variants: built-in stride plans and user plan files (JSON and TOML)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from stridelab.study.variants import BUILTIN_VARIANTS, base_plan, resolve_variants


def test_builtin_variants_downsample_as_named() -> None:
    variants = resolve_variants(",".join(BUILTIN_VARIANTS), depth=8, width=8,
                                input_size=(32, 32))
    assert [v.name for v in variants] == list(BUILTIN_VARIANTS)
    final = {}
    for variant in variants:
        model = variant.build(num_classes=10, in_channels=1).eval()
        with torch.no_grad():
            maps = model.stage_outputs(torch.zeros(1, 1, 32, 32))
        # Oracle: the real tensors. The plan's arithmetic must agree with them.
        assert [tuple(m.shape[1:]) for m in maps] == variant.plan.output_sizes((1, 32, 32))
        final[variant.name] = maps[-1].shape[-1]
    assert final == {"strided": 8, "maxpool": 8, "avgpool": 8, "blurpool": 8,
                     "space-to-depth": 8, "aggressive": 2, "no-downsampling": 32}
    downsample = {v.name: v.plan.downsample for v in variants}
    assert downsample["blurpool"] == "blurpool" and downsample["space-to-depth"] == "space_to_depth"


def test_width_scales_every_stage() -> None:
    plan = base_plan(depth=14, width=8)
    assert [s.width for s in plan.stages] == [8, 16, 32] and plan.stem_width == 8
    assert [s.blocks for s in plan.stages] == [2, 2, 2]


def test_json_plan_file_overrides_a_base(tmp_path: Path) -> None:
    path = tmp_path / "late.json"
    path.write_text(json.dumps({"name": "late-blur", "base": "strided", "downsample": "blurpool",
                                "stages": [{"blocks": 1, "width": 8, "stride": 1},
                                           {"blocks": 1, "width": 16, "stride": 1},
                                           {"blocks": 1, "width": 32, "stride": 4}]}))
    (variant,) = resolve_variants(str(path), depth=8, width=8, input_size=(32, 32))
    assert variant.name == "late-blur" and variant.source == str(path)
    assert variant.plan.downsample == "blurpool"
    assert variant.plan.output_sizes((1, 32, 32))[-1] == (32, 8, 8)


def test_toml_plan_file_with_several_variants(tmp_path: Path) -> None:
    path = tmp_path / "plans.toml"
    path.write_text('[variants.wide-pool]\nbase = "maxpool"\nstem_width = 8\n\n'
                    '[variants.s4]\nstages = [{blocks = 1, width = 8, stride = 4},'
                    ' {blocks = 1, width = 16}, {blocks = 1, width = 32}]\n')
    variants = resolve_variants(f"strided,{path}", depth=8, width=8, input_size=(32, 32))
    assert [v.name for v in variants] == ["strided", "wide-pool", "s4"]
    assert variants[1].plan.downsample == "maxpool"
    assert variants[2].plan.output_sizes(32)[-1] == (32, 8, 8)


@pytest.mark.parametrize(("content", "fragment"), [
    ('{"downsample": "teleport"}', "downsample"),
    ('{"stages": "many"}', "stages"),
    ('{"colour": "red"}', "colour"),
    ('{"base": "wavelet"}', "wavelet"),
    ("[1, 2]", "table/object"),
    ("{not json", "cannot parse"),
])
def test_bad_plan_files_name_the_file(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=fragment) as info:
        resolve_variants(str(path), depth=8, width=8)
    assert "bad.json" in str(info.value)


def test_bad_variant_lists() -> None:
    with pytest.raises(ValueError, match="variant"):
        resolve_variants("strided,,blurpool")
    with pytest.raises(ValueError, match="repeated strided"):
        resolve_variants("strided,strided")
    with pytest.raises(FileNotFoundError, match="nope.toml"):
        resolve_variants("nope.toml")
    with pytest.raises(ValueError, match="input_size"):
        resolve_variants("aggressive", input_size=(8, 8), depth=8, width=4)
