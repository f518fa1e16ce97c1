"""Convolution (cross-correlation, as in PyTorch) in NumPy: forward and backward, 1-D to 3-D.

Definition, per output channel ``co`` in group ``g`` and output position ``u`` (per axis)::

    y[n, co, u] = bias[co] + sum_{ci in g, t} x_pad[n, ci, u * s + t * d] * w[co, ci, t]

where ``x_pad`` is ``x`` with ``(before, after)`` zero padding per axis: the kernel moves by the
stride ``s``, multiplies element-wise and sums. Sizes come from :mod:`stridelab.arith`
(``padding_pairs``, ``conv_output_size``). Arrays are channels-first ``(N, C, *spatial)``; the
result dtype is the input dtype (float32 or float64), never upcast.
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
from stridelab.ops._geometry import ConvGeometry, conv_geometry
from stridelab.ops._parallel import check_threads, thread_scope

IntOrTuple = int | tuple[int, ...]


def _add_bias(y: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    if bias is not None:
        y += bias.reshape((1, -1) + (1,) * (y.ndim - 2))
    return y


def bias_grad(grad_out: np.ndarray) -> np.ndarray:
    """Gradient of a per-channel bias: the output gradient summed over batch and space."""
    axes = (0, *range(2, grad_out.ndim))
    total: np.ndarray = grad_out.sum(axis=axes)
    return total


def prepare_conv(
    x: object, weight: object, stride: IntOrTuple, padding: PaddingSpec, dilation: IntOrTuple,
    groups: int,
) -> tuple[np.ndarray, np.ndarray, ConvGeometry]:
    """Validate ``conv`` arguments and resolve the geometry (shared by forward and backward)."""
    xa = check_input("x", x)
    g = check_groups(groups)
    w = check_weight(xa, weight, g)
    geom = conv_geometry(xa.shape, w.shape, stride, padding, dilation, g)
    return xa, w, geom


def conv(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, stride: IntOrTuple = 1,
    padding: PaddingSpec = 0, dilation: IntOrTuple = 1, groups: int = 1, *,
    threads: int | None = None,
) -> np.ndarray:
    """N-D convolution of ``x`` ``(N, C_in, *S)`` with ``weight`` ``(C_out, C_in/groups, *k)``.

    ``padding``: int, per-axis ints, per-axis ``(before, after)`` pairs, ``"valid"``, ``"same"``
    (TF / ONNX SAME_UPPER, odd pixel after) or ``"same_lower"``; any stride is allowed with the
    string forms. Returns ``(N, C_out, *out)`` with ``out = arith.conv_output_size(...)``.
    The work is ``N * prod(out) * C_out * C_in/groups * prod(k)`` MACs: a stride of ``s`` costs
    1/prod(s) of the stride-1 convolution.

    ``threads``: threads for this call (None: ``STRIDELAB_NUM_THREADS``, else what NumPy's BLAS
    is allowed; see :mod:`stridelab.ops`). The result does not depend on it, bit for bit.
    """
    xa, w, geom = prepare_conv(x, weight, stride, padding, dilation, groups)
    b = check_bias(bias, geom.out_channels, xa.dtype)
    with thread_scope(check_threads("threads", threads)):
        return _add_bias(_kernels.forward(xa, w, geom), b)


def conv_backward(
    grad_out: np.ndarray, x: np.ndarray, weight: np.ndarray, stride: IntOrTuple = 1,
    padding: PaddingSpec = 0, dilation: IntOrTuple = 1, groups: int = 1, bias: bool = True, *,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Gradients of :func:`conv`: ``(grad_x, grad_weight, grad_bias)``.

    ``grad_out`` has the forward output's shape. ``grad_bias`` is None when ``bias`` is False.
    ``grad_x`` is a transposed convolution computed without multiplying inserted zeros: the
    output gradient times the weight, added into strided windows of the input gradient.
    ``threads`` as in :func:`conv`.
    """
    xa, w, geom = prepare_conv(x, weight, stride, padding, dilation, groups)
    g = check_grad("grad_out", grad_out, geom.output_shape(), xa.dtype)
    with_bias = check_bool("bias", bias)
    with thread_scope(check_threads("threads", threads)):
        grad_x, grad_w = _kernels.backward(g, xa, w, geom, need_x=True, need_w=True)
    assert grad_x is not None and grad_w is not None
    return grad_x, grad_w, bias_grad(g) if with_bias else None
