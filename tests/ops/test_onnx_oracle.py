"""stridelab.ops against onnxruntime on random single-node ONNX models.

Oracle: onnxruntime's CPU kernels for Conv, ConvTranspose (incl. 'same' with output_padding and
``output_shape``), MaxPool (values and indices, both storage orders, integer input), AveragePool
(count_include_pad, ceil_mode, dilation, any padding) and the global pools. The node is translated
to stridelab with the same code as the conformance suite (tests/ops/_onnx_nodes.py).
Configurations onnxruntime refuses are not drawn: ``auto_pad`` with dilation, and 'same' with an
effective kernel smaller than the stride (ONNX's total is negative there and onnxruntime crops).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from stridelab import arith, ops
from tests._budget import budget
from tests.ops._onnx_nodes import expected_shape, run_node

OPSET = 19  # AveragePool dilations since 19
AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")
_OPTIONS = ort.SessionOptions()
_OPTIONS.intra_op_num_threads = _OPTIONS.inter_op_num_threads = 1


def run_onnxruntime(node: onnx.NodeProto, inputs: list[np.ndarray]) -> list[np.ndarray]:
    names = [name for name in node.input if name]
    elem = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.uint8): TensorProto.UINT8,
            np.dtype(np.int8): TensorProto.INT8}
    graph = helper.make_graph(
        [node], "oracle",
        [helper.make_tensor_value_info(n, elem[a.dtype], a.shape) for n, a in zip(names, inputs)],
        [helper.make_tensor_value_info(n, elem[inputs[0].dtype] if k == 0 else TensorProto.INT64,
                                       None) for k, n in enumerate(node.output)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 9
    session = ort.InferenceSession(model.SerializeToString(), _OPTIONS,
                                   providers=["CPUExecutionProvider"])
    return list(session.run(None, dict(zip(names, inputs))))


def _compare(node: onnx.NodeProto, inputs: list[np.ndarray]) -> None:
    expected = run_onnxruntime(node, inputs)
    got = run_node(node, inputs)
    assert expected_shape(node, inputs) == expected[0].shape
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.shape == e.shape, (g.shape, e.shape)
        if np.issubdtype(e.dtype, np.integer):
            np.testing.assert_array_equal(g, e)
        else:
            np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)


@st.composite
def window(draw: Any, transposed: bool = False, pool: bool = False) -> dict[str, Any]:
    """One axis-count, sizes, kernel, stride, dilation and padding that onnxruntime accepts."""
    ndim = draw(st.integers(1, 2))
    kernel = [draw(st.integers(1, 4)) for _ in range(ndim)]
    stride = [draw(st.integers(1, 3)) for _ in range(ndim)]
    auto = draw(st.sampled_from(AUTO_PADS))
    dilation = [1] * ndim if auto != "NOTSET" else [draw(st.integers(1, 2)) for _ in range(ndim)]
    if auto.startswith("SAME"):
        assume(all(k >= s for k, s in zip(kernel, stride)))
    size = [draw(st.integers(1, 9)) for _ in range(ndim)]
    limit = [k - 1 for k in kernel]  # onnxruntime: pads < kernel
    pads = [draw(st.integers(0, max(0, m))) for m in limit * 2]
    attrs: dict[str, Any] = {"kernel_shape": kernel, "strides": stride, "auto_pad": auto}
    if auto == "NOTSET":
        attrs["pads"] = pads
    if not pool or any(d > 1 for d in dilation):
        attrs["dilations"] = dilation
    return {"ndim": ndim, "size": size, "attrs": attrs}


@settings(max_examples=budget(60))
@given(window(), st.integers(1, 2), st.booleans(), st.data())
def test_conv_vs_onnxruntime(spec: dict[str, Any], groups: int, bias: bool, data: Any) -> None:
    rng = np.random.default_rng(0)
    attrs, size = spec["attrs"], spec["size"]
    x = rng.standard_normal((1, 2 * groups, *size)).astype(np.float32)
    w = rng.standard_normal((2 * groups, 2, *attrs["kernel_shape"])).astype(np.float32)
    inputs = [x, w] + ([rng.standard_normal(2 * groups).astype(np.float32)] if bias else [])
    try:
        expected_shape(helper.make_node("Conv", ["x", "w"], ["y"], group=groups, **attrs),
                       inputs)
    except ValueError:
        assume(False)  # kernel larger than the padded input: no output
    names = ["x", "w", "b"][:len(inputs)]
    _compare(helper.make_node("Conv", names, ["y"], group=groups, **attrs), inputs)


@settings(max_examples=budget(60))
@given(window(transposed=True), st.integers(1, 2), st.data())
def test_conv_transpose_vs_onnxruntime(spec: dict[str, Any], groups: int, data: Any) -> None:
    rng = np.random.default_rng(1)
    attrs, size, ndim = dict(spec["attrs"]), spec["size"], spec["ndim"]
    attrs["output_padding"] = [data.draw(st.integers(0, s - 1)) if s > 1 else 0
                               for s in attrs["strides"]]
    if data.draw(st.booleans()) and attrs["auto_pad"] == "NOTSET":
        natural = arith.transposed_output_size(
            tuple(size), tuple(attrs["kernel_shape"]), tuple(attrs["strides"]), 0,
            tuple(attrs["dilations"]), tuple(attrs["output_padding"]))
        natural = natural if isinstance(natural, tuple) else (natural,)
        # onnxruntime refuses a negative total padding (an output_shape past the natural size)
        attrs["output_shape"] = [data.draw(st.integers(max(1, n - 3), n)) for n in natural]
        attrs.pop("pads", None)
    x = rng.standard_normal((1, 2 * groups, *size)).astype(np.float32)
    w = rng.standard_normal((2 * groups, 3, *attrs["kernel_shape"])).astype(np.float32)
    b = rng.standard_normal(3 * groups).astype(np.float32)
    node = helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], group=groups, **attrs)
    try:
        shape = expected_shape(node, [x, w, b])
    except ValueError:
        assume(False)
    assume(min(shape[2:]) >= 1 and ndim >= 1)
    _compare(node, [x, w, b])


def test_conv_transpose_same_with_output_padding_every_1d_case() -> None:
    """The issue's grid: 'same' / 'same_lower' with output_padding > 0 (was shifted by one)."""
    rng = np.random.default_rng(2)
    checked = 0
    for size, k, s, auto in itertools.product(range(1, 8), range(1, 6), range(2, 5),
                                              ("SAME_UPPER", "SAME_LOWER")):
        if k < s:
            continue
        for op in range(1, s):
            x = rng.standard_normal((1, 1, size)).astype(np.float32)
            w = rng.standard_normal((1, 1, k)).astype(np.float32)
            node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], kernel_shape=[k],
                                    strides=[s], auto_pad=auto, output_padding=[op])
            _compare(node, [x, w])
            checked += 1
    assert checked == 224


@settings(max_examples=budget(80))
@given(window(pool=True), st.sampled_from(["max", "avg", "max_indices", "max_uint8"]),
       st.booleans(), st.booleans(), st.integers(0, 1))
def test_pool_vs_onnxruntime(spec: dict[str, Any], mode: str, ceil: bool, include: bool,
                             storage_order: int) -> None:
    rng = np.random.default_rng(3)
    attrs, size = dict(spec["attrs"]), spec["size"]
    attrs["ceil_mode"] = int(ceil)
    if mode == "max_uint8":
        x = rng.integers(0, 255, (2, 3, *size), dtype=np.uint8)
    else:
        x = rng.standard_normal((2, 3, *size)).astype(np.float32)
    outputs = ["y"]
    if mode == "avg":
        op_type = "AveragePool"
        attrs["count_include_pad"] = int(include)
    else:
        op_type = "MaxPool"
        if mode == "max_indices":
            outputs.append("i")
            attrs["storage_order"] = storage_order
    node = helper.make_node(op_type, ["x"], outputs, **attrs)
    try:
        shape = expected_shape(node, [x])
    except ValueError:
        assume(False)
    assume(min(shape[2:]) >= 1)
    _compare(node, [x])


@pytest.mark.parametrize("op_type", ["GlobalAveragePool", "GlobalMaxPool"])
@pytest.mark.parametrize("shape", [(2, 3, 5), (1, 2, 4, 7), (1, 1, 3, 2, 4)])
def test_global_pools_vs_onnxruntime(op_type: str, shape: tuple[int, ...]) -> None:
    x = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    _compare(helper.make_node(op_type, ["x"], ["y"]), [x])


def test_max_pool_integer_input_and_indices() -> None:
    x = np.arange(24, dtype=np.int8).reshape(1, 2, 3, 4)[:, :, ::-1].copy()
    values, flat = ops.max_pool(x, 2, 1, return_indices=True, convention="onnx")
    _, plane = ops.max_pool(x.astype(np.float32), 2, 1, return_indices=True)
    assert values.dtype == np.int8
    assert (flat - plane == np.arange(2).reshape(1, 2, 1, 1) * 12).all()


def test_pool_padding_rule_names_the_option() -> None:
    x = np.zeros((1, 1, 5), dtype=np.float32)
    with pytest.raises(ValueError, match="convention='onnx'"):
        ops.max_pool(x, 3, 1, 2)
    with pytest.raises(ValueError, match="convention"):
        ops.avg_pool(x, 3, 1, 1, convention="tensorflow")
    with pytest.raises(ValueError, match="storage_order"):
        ops.max_pool(x, 3, 1, 1, storage_order=2)
    assert ops.max_pool(x, 3, 1, 2, convention="onnx").shape == (1, 1, 7)


@pytest.mark.parametrize("ceil", [False, True])
@pytest.mark.parametrize("include", [False, True])
def test_dilated_pool_backward_is_the_adjoint(ceil: bool, include: bool) -> None:
    """<pool(x), g> == <x, pool_backward(g)> for avg pooling (linear), with dilation and ONNX
    padding; max pooling's backward with flat ONNX indices equals the per-plane one."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 9, 8))
    args = dict(kernel=(3, 2), stride=(2, 3), padding=((2, 3), (1, 0)), ceil_mode=ceil,
                dilation=(2, 1), convention="onnx")
    y = ops.avg_pool(x, count_include_pad=include, **args)
    g = rng.standard_normal(y.shape)
    gx = ops.avg_pool_backward(g, x, count_include_pad=include, **args)
    finite = np.isfinite(y)
    assert np.isclose((y[finite] * g[finite]).sum(), (x * gx).sum())
    _, flat = ops.max_pool(x, return_indices=True, **args)
    g = rng.standard_normal(flat.shape)
    by_flat = ops.max_pool_backward(g, x, indices=flat, **args)
    assert np.allclose(by_flat, ops.max_pool_backward(g, x, **args))
