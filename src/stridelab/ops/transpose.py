"""Transposed convolution: the input gradient of a convolution, used as a layer.

``conv_transpose(x, w)`` is exactly ``conv_backward``'s ``grad_x`` for the convolution that maps
an input of size ``arith.transposed_output_size(...)`` to ``x``'s size with the same kernel,
stride, padding and dilation (PyTorch's meaning of ``padding``; ``output_padding`` adds that many
positions at the end). Weight layout is PyTorch's ``(C_in, C_out/groups, *k)``. Each input value
is multiplied by the kernel and added into a strided window of the output: no zeros are inserted
between input values and nothing is multiplied by them.
"""

from __future__ import annotations

import numpy as np

from stridelab.arith import PaddingSpec
from stridelab.ops import _kernels
from stridelab.ops._checks import (
    check_bias,
    check_bool,
    check_grad,
    check_groups,
    check_input,
    check_weight,
)
from stridelab.ops._geometry import ConvGeometry, transposed_geometry
from stridelab.ops.conv import _add_bias, bias_grad

IntOrTuple = int | tuple[int, ...]


def _prepare(
    x: object, weight: object, stride: IntOrTuple, padding: PaddingSpec,
    output_padding: IntOrTuple, dilation: IntOrTuple, groups: int,
) -> tuple[np.ndarray, np.ndarray, ConvGeometry]:
    xa = check_input("x", x)
    g = check_groups(groups)
    w = check_weight(xa, weight, g, transposed=True)
    geom = transposed_geometry(xa.shape, w.shape, stride, padding, output_padding, dilation, g)
    return xa, w, geom


def conv_transpose(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, stride: IntOrTuple = 1,
    padding: PaddingSpec = 0, output_padding: IntOrTuple = 0, dilation: IntOrTuple = 1,
    groups: int = 1,
) -> np.ndarray:
    """Transposed convolution of ``x`` ``(N, C_in, *S)`` with ``weight`` ``(C_in, C_out/g, *k)``.

    Output size per axis: ``(i - 1) * s - p_b - p_a + d * (k - 1) + 1 + output_padding``
    (``arith.transposed_output_size``); ``"same"`` / ``"same_lower"`` give ``i * s`` (ONNX).
    """
    xa, w, geom = _prepare(x, weight, stride, padding, output_padding, dilation, groups)
    b = check_bias(bias, geom.in_channels, xa.dtype)
    y, _ = _kernels.backward(xa, None, w, geom, need_x=True, need_w=False)
    assert y is not None
    return _add_bias(y, b)


def conv_transpose_backward(
    grad_out: np.ndarray, x: np.ndarray, weight: np.ndarray, stride: IntOrTuple = 1,
    padding: PaddingSpec = 0, output_padding: IntOrTuple = 0, dilation: IntOrTuple = 1,
    groups: int = 1, bias: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Gradients of :func:`conv_transpose`: ``(grad_x, grad_weight, grad_bias)``.

    ``grad_x`` is the forward convolution of ``grad_out``; ``grad_weight`` is the convolution
    weight gradient with the roles of input and output gradient swapped.
    """
    xa, w, geom = _prepare(x, weight, stride, padding, output_padding, dilation, groups)
    g = check_grad("grad_out", grad_out, geom.input_shape(), xa.dtype)
    with_bias = check_bool("bias", bias)
    grad_x = _kernels.forward(g, w, geom)
    _, grad_w = _kernels.backward(xa, g, w, geom, need_x=False, need_w=True)
    assert grad_w is not None
    return grad_x, grad_w, bias_grad(g) if with_bias else None
