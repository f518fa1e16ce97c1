"""Run one ONNX node (Conv, ConvTranspose, MaxPool, AveragePool, Global*Pool) with stridelab.ops.

The translation is attribute for attribute, with ONNX's defaults (strides 1, count_include_pad 0,
storage_order 0) and ``convention="onnx"`` for pooling. :func:`expected_shape` gives the output
size from :mod:`stridelab.arith` alone, for the arith half of the conformance suite.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper

from stridelab import arith, ops

OP_TYPES = ("Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool",
            "GlobalMaxPool")
AUTO_PAD = {"SAME_UPPER": "same", "SAME_LOWER": "same_lower", "VALID": "valid"}


def attributes(node: onnx.NodeProto) -> dict[str, Any]:
    values = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in values.items()}


def padding_of(attrs: dict[str, Any], ndim: int) -> Any:
    """ONNX ``auto_pad`` / ``pads`` (all begins, then all ends) as a stridelab padding spec."""
    auto = attrs.get("auto_pad", "NOTSET")
    if auto in AUTO_PAD:
        return AUTO_PAD[auto]
    pads = list(attrs.get("pads", [0] * 2 * ndim))
    return tuple((pads[axis], pads[axis + ndim]) for axis in range(ndim))


def _geometry(attrs: dict[str, Any], x: np.ndarray, kernel: Sequence[int]) -> dict[str, Any]:
    ndim = x.ndim - 2
    return {"stride": tuple(attrs.get("strides", [1] * ndim)),
            "dilation": tuple(attrs.get("dilations", [1] * ndim)),
            "padding": padding_of(attrs, ndim), "kernel": tuple(kernel)}


def run_node(node: onnx.NodeProto, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The node's outputs computed by stridelab.ops (one array per ONNX output)."""
    attrs = attributes(node)
    x = inputs[0]
    op = node.op_type
    if op in ("GlobalAveragePool", "GlobalMaxPool"):
        kernel = tuple(x.shape[2:])
        if op == "GlobalMaxPool":
            return [np.asarray(ops.max_pool(x, kernel, convention="onnx"))]
        return [ops.avg_pool(x, kernel, convention="onnx")]
    if op in ("Conv", "ConvTranspose"):
        weight = inputs[1]
        bias = inputs[2] if len(inputs) > 2 else None
        geo = _geometry(attrs, x, weight.shape[2:])
        group = int(attrs.get("group", 1))
        if op == "Conv":
            return [ops.conv(x, weight, bias, geo["stride"], geo["padding"], geo["dilation"],
                             group)]
        ndim = x.ndim - 2
        output_shape = attrs.get("output_shape")
        padding = geo["padding"]
        if output_shape is not None and not isinstance(padding, str):
            padding = 0  # ONNX: with output_shape, pads are ignored
        return [ops.conv_transpose(
            x, weight, bias, geo["stride"], padding,
            tuple(attrs.get("output_padding", [0] * ndim)), geo["dilation"], group,
            output_shape=None if output_shape is None else tuple(output_shape[-ndim:]))]
    geo = _geometry(attrs, x, attrs["kernel_shape"])
    ceil_mode = bool(attrs.get("ceil_mode", 0))
    if op == "MaxPool":
        want_indices = len([name for name in node.output if name]) > 1
        result = ops.max_pool(x, geo["kernel"], geo["stride"], geo["padding"], geo["dilation"],
                              ceil_mode, return_indices=want_indices, convention="onnx",
                              storage_order=int(attrs.get("storage_order", 0)))
        return list(result) if isinstance(result, tuple) else [result]
    if op == "AveragePool":
        return [ops.avg_pool(x, geo["kernel"], geo["stride"], geo["padding"], ceil_mode,
                             bool(attrs.get("count_include_pad", 0)), None, geo["dilation"],
                             convention="onnx")]
    raise ValueError(f"unsupported op {op}")


def expected_shape(node: onnx.NodeProto, inputs: Sequence[np.ndarray]) -> tuple[int, ...]:
    """The first output's shape from stridelab.arith alone (no array is computed)."""
    attrs = attributes(node)
    x = inputs[0]
    size = tuple(x.shape[2:])
    op = node.op_type
    if op.startswith("Global"):
        return (*x.shape[:2], *(1,) * len(size))
    if op in ("Conv", "ConvTranspose"):
        weight = inputs[1]
        geo = _geometry(attrs, x, weight.shape[2:])
        if op == "Conv":
            out = arith.conv_output_size(size, geo["kernel"], geo["stride"], geo["padding"],
                                         geo["dilation"])
            return (x.shape[0], weight.shape[0], *_tuple(out))
        channels = weight.shape[1] * int(attrs.get("group", 1))
        if "output_shape" in attrs:
            return (x.shape[0], channels, *attrs["output_shape"][-len(size):])
        out = arith.transposed_output_size(size, geo["kernel"], geo["stride"], geo["padding"],
                                           geo["dilation"],
                                           tuple(attrs.get("output_padding", [0] * len(size))))
        return (x.shape[0], channels, *_tuple(out))
    geo = _geometry(attrs, x, attrs["kernel_shape"])
    out = arith.pool_output_size(size, geo["kernel"], geo["stride"], geo["padding"],
                                 geo["dilation"], bool(attrs.get("ceil_mode", 0)),
                                 convention="onnx")
    return (*x.shape[:2], *_tuple(out))


def _tuple(value: int | tuple[int, ...]) -> tuple[int, ...]:
    return value if isinstance(value, tuple) else (value,)
