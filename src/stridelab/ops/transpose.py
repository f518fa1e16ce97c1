"""Transposed convolution: the input gradient of a convolution, used as a layer.

``conv_transpose(x, w)`` is exactly ``conv_backward``'s ``grad_x`` for the convolution that maps
an input of size ``arith.transposed_output_size(...)`` to ``x``'s size with the same kernel,
stride, padding and dilation (PyTorch's meaning of ``padding``; ``output_padding`` adds that many
positions at the end). Weight layout is PyTorch's ``(C_in, C_out/groups, *k)``. Each input value
is multiplied by the kernel and added into a strided window of the output: no zeros are inserted
between input values and nothing is multiplied by them.

'same' / 'same_lower' padding and ONNX's ``output_shape`` follow ONNX ConvTranspose: the padding
is :func:`stridelab.arith.transposed_padding` (its total includes ``output_padding``). When that
padding is negative (an ``output_shape`` larger than the natural size) the extra output positions
hold only the bias.
"""

from __future__ import annotations

import numpy as np

from stridelab import arith
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


Extra = tuple[tuple[int, int], ...]  # output positions beyond the computed ones, per axis


def _prepare(
    x: object, weight: object, stride: IntOrTuple, padding: PaddingSpec,
    output_padding: IntOrTuple, dilation: IntOrTuple, groups: int,
    output_shape: IntOrTuple | None,
) -> tuple[np.ndarray, np.ndarray, ConvGeometry, Extra]:
    xa = check_input("x", x)
    g = check_groups(groups)
    w = check_weight(xa, weight, g, transposed=True)
    extra: Extra = ((0, 0),) * (xa.ndim - 2)
    if isinstance(padding, str) or output_shape is not None:
        try:
            pairs = arith.transposed_padding(tuple(xa.shape[2:]), tuple(w.shape[2:]), stride,
                                             padding, dilation, output_padding, output_shape)
        except ValueError as err:
            raise ValueError(f"{err} (x shape {xa.shape}, weight shape {w.shape})") from None
        padding = tuple((max(b, 0), max(a, 0)) for b, a in pairs)
        extra = tuple((max(-b, 0), max(-a, 0)) for b, a in pairs)
    geom = transposed_geometry(xa.shape, w.shape, stride, padding, output_padding, dilation, g)
    return xa, w, geom, extra


def conv_transpose(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, stride: IntOrTuple = 1,
    padding: PaddingSpec = 0, output_padding: IntOrTuple = 0, dilation: IntOrTuple = 1,
    groups: int = 1, output_shape: IntOrTuple | None = None,
) -> np.ndarray:
    """Transposed convolution of ``x`` ``(N, C_in, *S)`` with ``weight`` ``(C_in, C_out/g, *k)``.

    Output size per axis: ``(i - 1) * s - p_b - p_a + d * (k - 1) + 1 + output_padding``
    (``arith.transposed_output_size``); ``"same"`` / ``"same_lower"`` give ``i * s`` (ONNX);
    ``output_shape`` (spatial sizes, ONNX's attribute) sets it directly and overrides numeric
    ``padding``, with ONNX's split of the total padding (see ``arith.transposed_padding``).
    """
    xa, w, geom, extra = _prepare(x, weight, stride, padding, output_padding, dilation, groups,
                                  output_shape)
    b = check_bias(bias, geom.in_channels, xa.dtype)
    y, _ = _kernels.backward(xa, None, w, geom, need_x=True, need_w=False)
    assert y is not None
    if any(e != (0, 0) for e in extra):
        y = np.pad(y, ((0, 0), (0, 0), *extra))
    return _add_bias(y, b)


def conv_transpose_backward(
    grad_out: np.ndarray, x: np.ndarray, weight: np.ndarray, stride: IntOrTuple = 1,
    padding: PaddingSpec = 0, output_padding: IntOrTuple = 0, dilation: IntOrTuple = 1,
    groups: int = 1, bias: bool = True, output_shape: IntOrTuple | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Gradients of :func:`conv_transpose`: ``(grad_x, grad_weight, grad_bias)``.

    ``grad_x`` is the forward convolution of ``grad_out``; ``grad_weight`` is the convolution
    weight gradient with the roles of input and output gradient swapped.
    """
    xa, w, geom, extra = _prepare(x, weight, stride, padding, output_padding, dilation, groups,
                                  output_shape)
    full = tuple(size + b + a for size, (b, a) in zip(geom.in_size, extra))
    g_full = check_grad("grad_out", grad_out, (*geom.input_shape()[:2], *full), xa.dtype)
    crop = (slice(None), slice(None), *(slice(b, b + size) for size, (b, _) in
                                        zip(geom.in_size, extra)))
    g = g_full[crop]
    with_bias = check_bool("bias", bias)
    grad_x = _kernels.forward(g, w, geom)
    _, grad_w = _kernels.backward(xa, g, w, geom, need_x=False, need_w=True)
    assert grad_w is not None
    return grad_x, grad_w, bias_grad(g_full) if with_bias else None
