"""'same' convs and pools exported with dynamic height / width equal PyTorch at every input size.

Oracle: the eager PyTorch module; the exported graph runs in onnxruntime. Each model is exported
once per exporter (legacy ``dynamo=False`` with ``dynamic_axes``; dynamo with ``dynamic_shapes``)
and then run at many sizes, so the cost is a few exports, not one per size.
"""

from __future__ import annotations

import itertools
import os
import pathlib
import warnings
from collections.abc import Iterator, Sequence

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from stridelab.nn import AvgPool2d, Conv1d, Conv2d, Conv3d, MaxPool2d

EXPORTERS = [pytest.param(False, id="legacy"), pytest.param(True, id="dynamo")]


def _export(model: torch.nn.Module, examples: Sequence[torch.Tensor], path: pathlib.Path,
            dynamo: bool, dynamic: bool = True) -> ort.InferenceSession:
    names = [f"x{n}" for n in range(len(examples))]
    kwargs: dict[str, object] = {}
    if dynamic and dynamo:
        kwargs["dynamic_shapes"] = tuple(
            {axis: torch.export.Dim(f"{name}_{axis}", min=1, max=4096)
             for axis in range(2, x.ndim)} for name, x in zip(names, examples))
    elif dynamic:
        kwargs["dynamic_axes"] = {name: {axis: f"{name}_{axis}" for axis in range(2, x.ndim)}
                                  for name, x in zip(names, examples)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, tuple(examples), str(path), dynamo=dynamo, input_names=names,
                          **kwargs)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _run(session: ort.InferenceSession, inputs: Sequence[torch.Tensor]) -> list[np.ndarray]:
    feed = {arg.name: x.numpy() for arg, x in zip(session.get_inputs(), inputs)}
    return list(session.run(None, feed))


def _compare(model: torch.nn.Module, session: ort.InferenceSession,
             inputs: Sequence[torch.Tensor], label: str) -> None:
    with torch.no_grad():
        expected = model(*inputs)
    expected = expected if isinstance(expected, (tuple, list)) else (expected,)
    got = _run(session, inputs)
    assert len(got) == len(expected)
    for branch, (g, e) in enumerate(zip(got, expected)):
        assert g.shape == tuple(e.shape), f"{label} branch {branch}: {g.shape} != {tuple(e.shape)}"
        np.testing.assert_allclose(g, e.numpy(), rtol=1e-4, atol=1e-4,
                                   err_msg=f"{label} branch {branch}")


def _permuted(size: int, limit: int, factor: int) -> int:
    """A second axis that also runs through 1..limit, paired differently with the first."""
    return (size * factor) % limit + 1


class Stride2Same(torch.nn.Module):
    """The issue's model: 'same' convs and pools at stride 2 and 3, native and in-graph paths."""

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            Conv2d(3, 4, 3, stride=2, padding="same"),                    # auto_pad
            MaxPool2d(3, 2, padding="same"),                              # auto_pad
            Conv2d(4, 4, 3, stride=2, padding="same_lower", dilation=2),  # in-graph (dilation)
            AvgPool2d(2, 2, padding="same_lower", count_include_pad=False),  # auto_pad
            Conv2d(4, 4, 2, stride=3, padding="same"),                    # in-graph (k < s)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _modes(count: int) -> list[str]:
    return ["same" if n % 2 == 0 else "same_lower" for n in range(count)]


def _single_layers_2d() -> list[torch.nn.Module]:
    """Every kernel / stride / dilation / mode combination that changes the export path."""
    layers: list[torch.nn.Module] = []
    convs = list(itertools.product((2, 3, 5), (2, 3, 4), (1, 2)))
    for (k, s, d), pad in zip(convs, _modes(len(convs))):
        layers.append(Conv2d(1, 2, k, stride=s, padding=pad, dilation=d))
    layers.append(Conv2d(1, 2, (3, 5), stride=(2, 3), padding="same", dilation=(1, 2)))
    layers.append(Conv2d(2, 2, (4, 2), stride=(3, 2), padding="same_lower", groups=2))
    pools = list(itertools.product((2, 3), (2, 3), (1, 2), (False, True)))
    for (k, s, d, ceil), pad in zip(pools, _modes(len(pools))):
        layers.append(MaxPool2d(k, s, padding=pad, dilation=d, ceil_mode=ceil))
    pools = list(itertools.product((2, 3, 5), (2, 3), (True, False), (False, True)))
    for (k, s, include, ceil), pad in zip(pools, _modes(len(pools) + 1)[1:]):
        layers.append(AvgPool2d(k, s, padding=pad, count_include_pad=include, ceil_mode=ceil))
    layers.append(AvgPool2d(3, 2, padding="same", divisor_override=4))
    return layers


class Branches(torch.nn.Module):
    """The stride-2 model plus every single layer on its own input, so one export covers all."""

    def __init__(self, groups: Sequence[Sequence[torch.nn.Module]]) -> None:
        super().__init__()
        self.groups = torch.nn.ModuleList(torch.nn.ModuleList(group) for group in groups)

    def forward(self, x0: torch.Tensor, x1: torch.Tensor, x2: torch.Tensor, x3: torch.Tensor,
                x4: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs: list[torch.Tensor] = []
        for group, x in zip(self.groups, (x0, x1, x2, x3, x4)):
            for layer in group:
                outputs.append(layer(x[:, :_in_channels(layer)]))
        return tuple(outputs)


def _in_channels(layer: torch.nn.Module) -> int:
    return int(getattr(layer, "in_channels", 3 if isinstance(layer, Stride2Same) else 1))


def _branches(every: int = 1) -> Branches:
    """All single layers, or every ``every``-th of each group (the stride-2 model always)."""
    torch.manual_seed(1)
    convs = list(itertools.product((2, 3, 6), (2, 5), (1, 3)))
    layers_1d: list[torch.nn.Module] = [
        Conv1d(1, 2, k, stride=s, padding=pad, dilation=d)
        for (k, s, d), pad in zip(convs, _modes(len(convs)))]
    layers_3d: list[torch.nn.Module] = [
        Conv3d(1, 2, 3, stride=2, padding="same"),
        Conv3d(1, 2, (2, 3, 1), stride=(1, 2, 3), padding="same_lower", dilation=(1, 1, 2)),
    ]
    # Reflect / replicate / circular padding need an input longer than the padding.
    layers_padded: list[torch.nn.Module] = [
        Conv2d(1, 2, k, stride=s, padding=pad, padding_mode=mode)
        for k, s, pad, mode in [(3, 2, "same", "reflect"), (4, 3, "same_lower", "reflect"),
                                (4, 2, "same", "replicate"), (3, 3, "same_lower", "circular")]]
    groups = [[Stride2Same()], layers_1d[::every], _single_layers_2d()[::every], layers_3d,
              layers_padded[::every]]
    return Branches(groups).eval()


Exported = tuple[Branches, ort.InferenceSession, pathlib.Path]
EXAMPLES = [(1, 3, 33, 31), (1, 2, 17), (1, 2, 17, 14), (1, 1, 7, 6, 5), (1, 1, 13, 12)]


@pytest.fixture(scope="module", params=EXPORTERS)
def exported(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exported]:
    """One export per exporter with every spatial axis dynamic (dynamo: ``Dim(min=1)``).

    The dynamo exporter is slow on large graphs (~10x the legacy one), so ``make test`` gives it
    every 12th single layer of each group (all of them under ``STRIDELAB_FUZZ``); the legacy
    exporter gets all ~80.
    """
    dynamo = request.param
    model = _branches(12 if dynamo and not os.environ.get("STRIDELAB_FUZZ") else 1)
    path = tmp_path_factory.mktemp("onnx") / "branches.onnx"
    examples = [torch.randn(shape) for shape in EXAMPLES]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # ~80 tiny layers per size: threads only add overhead
    try:
        yield model, _export(model, examples, path, dynamo=dynamo), path
    finally:
        torch.set_num_threads(threads)


def _inputs(stride2: tuple[int, int], n: int) -> list[torch.Tensor]:
    """Inputs of size ~n for the single layers, ``stride2`` for the stride-2 model."""
    return [torch.randn(1, 3, *stride2), torch.randn(1, 2, n),
            torch.randn(1, 2, n, _permuted(n, 29, 11)),
            torch.randn(1, 1, (n - 1) % 9 + 1, _permuted(n, 9, 4), _permuted(n, 9, 7)),
            torch.randn(1, 1, (n - 1) % 29 + 6, _permuted(n, 29, 13) + 5)]


def test_every_size_1_to_97_and_single_layers(exported: Exported) -> None:
    """Height and width each run through every size 1..97 (w = 37 h mod 97 + 1 pairs them
    differently); the single layers see 1..29 on every axis (1..9 in 3-D; 6..34 with reflect /
    replicate / circular padding)."""
    model, session, _ = exported
    torch.manual_seed(2)
    for h in range(1, 98):
        w = _permuted(h, 97, 37)
        _compare(model, session, _inputs((h, w), h), f"{h}x{w}")


def test_graph_uses_auto_pad_where_onnxruntime_allows_it(exported: Exported) -> None:
    model, _, path = exported
    graph = onnx.load(str(path)).graph
    auto = [node.op_type for node in graph.node
            if any(a.name == "auto_pad" and a.s.startswith(b"SAME") for a in node.attribute)]
    native = [m for group in model.groups for m in group.modules()
              if isinstance(m, (Conv1d, Conv2d, Conv3d, MaxPool2d, AvgPool2d))
              and m._resolver.static_pairs is None
              and m._resolver.export_window("X", _native_ok(m)).native]  # type: ignore[union-attr]
    assert len(auto) == len(native) > 3


def _native_ok(layer: torch.nn.Module) -> bool:
    if isinstance(layer, MaxPool2d):
        return not layer.ceil_mode
    if isinstance(layer, AvgPool2d):
        return not layer.ceil_mode and layer.divisor_override is None
    return getattr(layer, "padding_mode", "zeros") == "zeros"


def test_legacy_static_export_folds_to_plain_pads(tmp_path: pathlib.Path) -> None:
    """Without dynamic axes the sizes are known and the graph has plain ``pads`` (the dynamo
    exporter's static case is checked in test_layers.test_onnx_export_same_stride2)."""
    torch.manual_seed(0)
    model = Stride2Same().eval()
    x = torch.randn(1, 3, 33, 30)
    session = _export(model, [x], tmp_path / "static.onnx", dynamo=False, dynamic=False)
    assert_static_graph(tmp_path / "static.onnx", frozenset({"Shape", "Gather", "Mod", "Div"}))
    _compare(model, session, [x], "static")


def assert_static_graph(path: pathlib.Path,
                        forbidden: frozenset[str] = frozenset({"Mod"})) -> None:
    """No ``auto_pad`` and none of the in-graph formula's ops (``Mod`` is its signature)."""
    graph = onnx.load(str(path)).graph
    ops = {node.op_type for node in graph.node}
    assert not ops & forbidden, ops
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.name == "auto_pad":
                assert not attribute.s.startswith(b"SAME"), node


def test_export_refuses_the_one_inexact_avg_pool_with_a_named_fix(tmp_path: pathlib.Path) -> None:
    """'same' + divisor_override + ceil_mode has no exact ONNX form: a ValueError names the fix."""
    layer = AvgPool2d(3, 2, padding="same", ceil_mode=True, divisor_override=4).eval()
    with pytest.raises(Exception, match="ceil_mode=False or divisor_override=None"):
        torch.onnx.export(layer, (torch.zeros(1, 1, 9, 9),), str(tmp_path / "m.onnx"),
                          dynamo=False, input_names=["x"],
                          dynamic_axes={"x": {2: "h", 3: "w"}})
