"""The inspector on stridelab.nn models (ResNets and the segmentation model)."""

from __future__ import annotations

import pytest

from stridelab.arith import ReceptiveField
from stridelab.inspect import inspect
from tests.inspect import models
from tests.inspect.test_costs_api import flop_counter_macs
from tests.inspect.test_fields import _resnet_path, hand_field

nn_models = pytest.importorskip("stridelab.nn")


@pytest.mark.parametrize("name,blocks,bottleneck", [("resnet18", [2, 2, 2, 2], False),
                                                    ("resnet50", [3, 4, 6, 3], True)])
def test_nn_resnets_match_hand_fields_and_flop_counter(name: str, blocks: list[int],
                                                       bottleneck: bool) -> None:
    model = getattr(nn_models, name)()
    report = inspect(model)
    r, s, p = hand_field(_resnet_path(blocks, bottleneck))
    heads = [rec for rec in report.layers if rec.spatial and rec.output_shape[2:] == (7, 7)]
    assert heads[-1].receptive_field == ReceptiveField((r, r), (s, s), (p, p))
    assert not [d for d in report.diagnostics if d.code in ("misaligned", "unknown-op")]
    local = inspect(getattr(models, name)())
    assert report.macs == local.macs and report.params == local.params
    assert inspect(model, (3, 64, 64)).macs == flop_counter_macs(model, (3, 64, 64))


def test_segmentation_model() -> None:
    model = nn_models.presets["fcn_resnet18"]()
    report = inspect(model, (3, 128, 128))
    out = report.layers[-1]
    assert out.output_shape[2:] == (128, 128)
    assert report.field.stride == (1, 1)
    assert report.macs == flop_counter_macs(model, (3, 128, 128))
    assert not [d for d in report.diagnostics if d.code in ("unknown-op", "untracked")]


def test_resnet_d_shortcut_is_reported_misaligned() -> None:
    report = inspect(nn_models.presets["resnet50_d"]())
    found = [d for d in report.diagnostics if d.code == "misaligned"]
    assert len(found) == 3 and all("centre" in d.message for d in found)
