"""Pools with explicit asymmetric padding in ceil mode against onnxruntime's MaxPool / AveragePool.

PyTorch cannot see padding applied beforehand with F.pad, so its ceil-mode rule (drop a last window
that starts in the padding) needs the exact size from stridelab.arith; ONNX takes the pads
natively and is the oracle here.
"""

from __future__ import annotations

import itertools

import numpy as np
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

from stridelab import nn as snn


def _onnx_pool(op: str, x: np.ndarray, kernel: int, stride: int,
               pads: tuple[int, int, int, int]) -> np.ndarray:
    attrs = {"kernel_shape": [kernel, kernel], "strides": [stride, stride], "pads": list(pads),
             "ceil_mode": 1}
    if op == "AveragePool":
        attrs["count_include_pad"] = 0
    node = helper.make_node(op, ["x"], ["y"], **attrs)
    graph = helper.make_graph([node], "pool",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"x": x})[0])


CASES = [(k, s, after, size) for k, s, after, size in
         itertools.product((2, 3), (2, 3), (0, 1), (5, 7, 8, 9)) if after <= k // 2]


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize(("kernel", "stride", "after", "size"), CASES)
def test_ceil_mode_with_explicit_padding_matches_onnxruntime(op: str, kernel: int, stride: int,
                                                             after: int, size: int) -> None:
    x = np.random.default_rng(size * 31 + kernel).standard_normal((1, 2, size, size + 1))
    x = x.astype(np.float32)
    padding = ((0, after), (1 if kernel > 2 else 0, after))
    if op == "MaxPool":
        layer: torch.nn.Module = snn.MaxPool2d(kernel, stride, padding=padding, ceil_mode=True)
    else:
        layer = snn.AvgPool2d(kernel, stride, padding=padding, ceil_mode=True,
                              count_include_pad=False)
    got = layer(torch.from_numpy(x)).numpy()
    pads = (padding[0][0], padding[1][0], padding[0][1], padding[1][1])
    expected = _onnx_pool(op, x, kernel, stride, pads)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
