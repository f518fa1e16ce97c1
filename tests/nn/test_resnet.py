"""ResNet family vs torchvision's documented architecture, counted and derived independently."""

from __future__ import annotations

import importlib.util
import pathlib
import warnings

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from stridelab.nn import cifar_resnet, resnet18, resnet34, resnet50, resnet101, resnet152

BUILDERS = {18: resnet18, 34: resnet34, 50: resnet50, 101: resnet101, 152: resnet152}
# torchvision's published parameter counts (1000 classes)
PARAMS = {18: 11_689_512, 34: 21_797_672, 50: 25_557_032, 101: 44_549_160, 152: 60_192_808}
# torchvision's documented layout: (block, blocks per stage)
LAYOUT = {18: ("basic", [2, 2, 2, 2]), 34: ("basic", [3, 4, 6, 3]),
          50: ("bottleneck", [3, 4, 6, 3]), 101: ("bottleneck", [3, 4, 23, 3]),
          152: ("bottleneck", [3, 8, 36, 3])}


def torchvision_shapes(depth: int, num_classes: int = 1000) -> dict[str, tuple[int, ...]]:
    """torchvision's state_dict names and shapes, generated from its documented structure."""
    block, counts = LAYOUT[depth]
    shapes: dict[str, tuple[int, ...]] = {}

    def bn(prefix: str, c: int) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{name}"] = (c,)
        shapes[f"{prefix}.num_batches_tracked"] = ()

    shapes["conv1.weight"] = (64, 3, 7, 7)
    bn("bn1", 64)
    inplanes = 64
    for stage, (n, planes) in enumerate(zip(counts, [64, 128, 256, 512]), start=1):
        stride = 1 if stage == 1 else 2
        for b in range(n):
            p = f"layer{stage}.{b}"
            if block == "basic":
                out = planes
                shapes[f"{p}.conv1.weight"] = (planes, inplanes, 3, 3)
                bn(f"{p}.bn1", planes)
                shapes[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
                bn(f"{p}.bn2", planes)
            else:
                out = planes * 4
                shapes[f"{p}.conv1.weight"] = (planes, inplanes, 1, 1)
                bn(f"{p}.bn1", planes)
                shapes[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
                bn(f"{p}.bn2", planes)
                shapes[f"{p}.conv3.weight"] = (out, planes, 1, 1)
                bn(f"{p}.bn3", out)
            if b == 0 and (stride != 1 or inplanes != out):
                shapes[f"{p}.downsample.0.weight"] = (out, inplanes, 1, 1)
                bn(f"{p}.downsample.1", out)
            inplanes = out
    shapes["fc.weight"] = (num_classes, inplanes)
    shapes["fc.bias"] = (num_classes,)
    return shapes


@pytest.mark.parametrize("depth", sorted(BUILDERS))
def test_torchvision_architecture(depth: int) -> None:
    with torch.device("meta"):
        model = BUILDERS[depth]()
    assert sum(p.numel() for p in model.parameters()) == PARAMS[depth]
    expected = torchvision_shapes(depth)
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert list(got) == list(expected)  # same keys in the same order
    assert got == expected
    params_from_shapes = sum(
        torch.Size(s).numel() for k, s in expected.items()
        if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert params_from_shapes == PARAMS[depth]


def test_resnet50_macs_at_224() -> None:
    with torch.device("meta"):
        model = resnet50()
        x = torch.empty(1, 3, 224, 224)
    with FlopCounterMode(display=False) as counter:
        model(x)
    assert counter.get_total_flops() // 2 == 4_089_184_256


def _load_plain() -> object:
    path = pathlib.Path(__file__).parents[2] / "benchmarks" / "plain_resnet.py"
    spec = importlib.util.spec_from_file_location("plain_resnet", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("depth", [18, 50])
def test_same_logits_as_plain_resnet(depth: int) -> None:
    """A checkpoint with torchvision's names loads strictly and gives the same logits."""
    plain = _load_plain()
    torch.manual_seed(0)
    ours = BUILDERS[depth](num_classes=7).eval()
    other = getattr(plain, f"plain_resnet{depth}")(num_classes=7).eval()
    other.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(2, 3, 45, 38)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), other(x), atol=1e-5, rtol=1e-4)


def cifar_params(depth: int, shortcut: str, num_classes: int = 10) -> int:
    """He et al. 2016 CIFAR net counted by hand: convs 3x3 without bias, BN 2C, option B adds a
    1x1 conv + BN at the two widening blocks."""
    n = (depth - 2) // 6
    total = 3 * 16 * 9 + 2 * 16  # stem conv + BN
    in_ch = 16
    for width in (16, 32, 64):
        for _ in range(n):
            total += in_ch * width * 9 + width * width * 9 + 4 * width
            if in_ch != width and shortcut == "B":
                total += in_ch * width + 2 * width
            in_ch = width
    return total + 64 * num_classes + num_classes


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110])
def test_cifar_resnet_counts(depth: int) -> None:
    with torch.device("meta"):
        model_a = cifar_resnet(depth)
        model_b = cifar_resnet(depth, shortcut="B")
    assert sum(p.numel() for p in model_a.parameters()) == cifar_params(depth, "A")
    assert sum(p.numel() for p in model_b.parameters()) == cifar_params(depth, "B")
    n_layers = sum(1 for m in model_a.modules() if isinstance(m, (torch.nn.Conv2d,
                                                                   torch.nn.Linear)))
    assert n_layers == depth  # 6n + 2 weighted layers


def test_cifar_resnet20_numbers() -> None:
    assert cifar_params(20, "A") == 269_722  # "0.27M" in He et al. 2016, Table 6
    assert cifar_params(20, "B") == 272_474
    model = cifar_resnet(20)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert [tuple(v.shape[1:]) for v in model.stage_outputs(torch.randn(1, 3, 32, 32))] == [
        (16, 32, 32), (16, 32, 32), (32, 16, 16), (64, 8, 8)]


@pytest.mark.parametrize("dynamo", [False, True])
def test_onnx_resnet18_same_padding(tmp_path: pathlib.Path, dynamo: bool) -> None:
    """Exported once with dynamic height and width; equal to PyTorch at every size tried."""
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = resnet18(num_classes=10, padding="same").eval()
    x = torch.randn(1, 3, 67, 64)
    path = tmp_path / "resnet18_same.onnx"
    if dynamo:
        dims = {2: torch.export.Dim("h", min=1, max=4096), 3: torch.export.Dim("w", min=1, max=4096)}
        dynamic: dict[str, object] = {"dynamic_shapes": (dims,)}
    else:
        dynamic = {"dynamic_axes": {"x": {2: "h", 3: "w"}}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), dynamo=dynamo, input_names=["x"], **dynamic)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for h, w in [(67, 64), (32, 32), (33, 31), (64, 17), (1, 1), (45, 70), (97, 50), (2, 40)]:
        x = torch.randn(1, 3, h, w)
        (got,) = session.run(None, {"x": x.numpy()})
        with torch.no_grad():
            diff = (torch.from_numpy(got) - model(x)).abs().max().item()
        assert diff <= 1e-4, (h, w, diff)
