"""Model specs (``stridelab.inspect.load_model``): built-ins, user code, registries, errors.

The shared venv has neither timm nor torchvision: their absence and their name lookup are tested
with a stand-in module; the real registries are tested in the zoo venv (skipped elsewhere).
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import torch

import stridelab.inspect
from stridelab.cli import main
from stridelab.inspect import LoadedModel, load_model
from stridelab.nn import presets
from tests.inspect import models


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("name", "size"), [("resnet18", (3, 224, 224)),
                                            ("cifar_resnet20", (3, 32, 32))])
def test_builtin_names_build_the_preset(name: str, size: tuple[int, ...]) -> None:
    loaded = load_model(name, allow_code=False)
    assert isinstance(loaded, LoadedModel)
    assert (loaded.spec, loaded.input_size) == (name, size)
    reference = presets[name]()
    assert type(loaded.model) is type(reference)
    assert _count(loaded.model) == _count(reference)


def test_module_spec_and_file_spec(tmp_path: Path) -> None:
    loaded = load_model("tests.inspect.models:UNet")
    assert isinstance(loaded.model, models.UNet) and loaded.input_size is None
    path = tmp_path / "user_net.py"
    path.write_text("from torch import nn\n"
                    "def build():\n    return nn.Conv2d(3, 5, 3)\n"
                    "instance = nn.Conv2d(2, 4, 1)\n")
    built = load_model(f"{path}:build").model
    assert isinstance(built, torch.nn.Conv2d) and built.out_channels == 5
    assert load_model(f"{path}:instance").model.out_channels == 4


@pytest.mark.parametrize("spec", ["tests.inspect.models:UNet", "some/file.py:build"])
def test_code_specs_are_refused_without_allow_code(spec: str) -> None:
    with pytest.raises(ValueError, match="command line only"):
        load_model(spec, allow_code=False)


@pytest.mark.parametrize(("spec", "message"), [
    ("resnet5O", "did you mean resnet50"),
    ("cifar_resnet21", "did you mean .*cifar_resnet20"),
    ("tests.inspect.models:nope", "no attribute"),
    ("missing_file.py:x", "does not exist"),
    ("timm:hf-hub:timm/resnet50.a1_in1k", "hub names download"),
])
def test_bad_specs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        load_model(spec)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("package", ["timm", "torchvision"])
def test_missing_package_is_one_line(monkeypatch: pytest.MonkeyPatch, package: str) -> None:
    monkeypatch.setitem(sys.modules, package, None)  # makes `import package` raise ImportError
    with pytest.raises(ValueError, match=f"^{package} is not installed: pip install {package}$"):
        load_model(f"{package}:resnet50")
    assert main(["inspect", f"{package}:resnet50"]) == 2


def _fake_timm(calls: list[tuple[str, dict[str, Any]]]) -> types.ModuleType:
    """A stand-in for timm with two architectures; records how create_model is called."""
    fake = types.ModuleType("timm")
    names = ["convnext_tiny", "convnext_small"]
    fake.list_models = lambda: list(names)  # type: ignore[attr-defined]
    fake.is_model = lambda name: name in names  # type: ignore[attr-defined]

    def create_model(name: str, **kwargs: Any) -> torch.nn.Module:
        calls.append((name, kwargs))
        model = torch.nn.Conv2d(3, 8, 4, stride=4)
        size = (3, 384, 384) if name.endswith("_384") else (3, 224, 224)
        model.pretrained_cfg = {"input_size": size}  # type: ignore[assignment]
        return model

    fake.create_model = create_model  # type: ignore[attr-defined]
    return fake


def test_timm_names_never_ask_for_weights_and_suggest(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setitem(sys.modules, "timm", _fake_timm(calls))
    loaded = load_model("timm:convnext_tiny", allow_code=False)
    assert loaded.input_size == (3, 224, 224)
    assert load_model("timm:convnext_tiny.in22k_384").input_size == (3, 384, 384)
    assert calls == [("convnext_tiny", {"pretrained": False}),
                     ("convnext_tiny.in22k_384", {"pretrained": False})]
    with pytest.raises(ValueError, match=r"unknown timm model 'convnext_tinny'; did you mean "
                                         r"convnext_tiny"):
        load_model("timm:convnext_tinny")


def test_inspect_accepts_a_spec_and_uses_its_size(monkeypatch: pytest.MonkeyPatch) -> None:
    report = stridelab.inspect("cifar_resnet20")
    direct = stridelab.inspect(presets["cifar_resnet20"](), (3, 32, 32))
    assert report.input_size == (3, 32, 32)
    assert [r.macs for r in report.layers] == [r.macs for r in direct.layers]
    assert stridelab.inspect(torch.nn.Conv2d(3, 4, 3)).input_size == (3, 224, 224)
    monkeypatch.setitem(sys.modules, "timm", _fake_timm([]))
    assert stridelab.inspect("timm:convnext_small").layers[0].output_shape == (1, 8, 56, 56)
    assert stridelab.inspect("timm:convnext_small", (3, 64, 64)).layers[0].output_shape == (
        1, 8, 16, 16)


def test_cli_input_defaults_to_the_model_size(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "cifar_resnet20", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["input_size"] == [3, 32, 32]
    assert main(["inspect", "resnet5O"]) == 2
    assert "did you mean resnet50" in capsys.readouterr().err


# -- the real registries (zoo venv only) -------------------------------------------------------

@pytest.fixture
def no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"tried to download {args}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)


@pytest.mark.usefixtures("no_downloads")
def test_real_timm_names() -> None:
    timm = pytest.importorskip("timm")
    loaded = load_model("timm:convnext_tiny")
    reference = timm.create_model("convnext_tiny", pretrained=False)
    assert loaded.input_size == (3, 224, 224)
    assert _count(loaded.model) == _count(reference)
    assert load_model("timm:convnext_tiny.fb_in22k_ft_in1k_384").input_size == (3, 384, 384)
    with pytest.raises(ValueError, match="did you mean convnext_tiny"):
        load_model("timm:convnext_tinny")
    assert stridelab.inspect("timm:resnet18").input_size == (3, 224, 224)


@pytest.mark.usefixtures("no_downloads")
@pytest.mark.parametrize(("name", "size"), [
    ("resnet18", (3, 224, 224)), ("inception_v3", (3, 299, 299)),
    ("efficientnet_b3", (3, 300, 300)), ("vit_b_32", (3, 224, 224)),
    ("r3d_18", (3, 16, 112, 112)), ("mvit_v2_s", (3, 16, 224, 224)),
    ("lraspp_mobilenet_v3_large", (3, 520, 520)), ("fasterrcnn_resnet50_fpn", (3, 800, 800)),
    ("ssd300_vgg16", (3, 300, 300)), ("raft_small", None),
])
def test_real_torchvision_names(name: str, size: tuple[int, ...] | None) -> None:
    pytest.importorskip("torchvision")
    from torchvision import models as tv_models

    loaded = load_model(f"torchvision:{name}")
    assert loaded.input_size == size
    published = tv_models.get_model_weights(name).DEFAULT.meta["num_params"]
    if name != "fasterrcnn_resnet50_fpn":  # without backbone weights, BN is trainable: more params
        assert _count(loaded.model) == published  # torchvision's own count for these weights


def test_real_torchvision_unknown_name() -> None:
    pytest.importorskip("torchvision")
    with pytest.raises(ValueError, match="did you mean resnet50"):
        load_model("torchvision:resnet05")


def test_real_cli_without_input(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("timm")
    assert main(["inspect", "timm:convnext_tiny", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["input_size"] == [3, 224, 224]
