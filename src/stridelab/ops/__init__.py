"""stridelab.ops: convolution, transposed convolution and pooling in NumPy (no torch).

Channels-first arrays ``(N, C, *spatial)`` with 1, 2 or 3 spatial axes; float32 or float64 (max
pooling also any integer dtype), and the result has the input's dtype. Every size and padding is
resolved by :mod:`stridelab.arith`. PyTorch's conventions are the default; pooling takes
``convention="onnx"`` (any padding, flat indices, ``storage_order``) and ``conv_transpose`` ONNX's
``output_shape``; the ONNX backend node tests for these operators all pass (README).
Each forward function has a ``*_backward`` that returns the gradients PyTorch's autograd gives.

Speed: strided convolutions only visit output positions (cost 1/prod(stride) of stride 1), and
the heavy lifting is one BLAS matrix product per batch chunk, so NumPy's BLAS sets the pace
(see docs/ops-benchmark.md).

Layout: results are ``(N, C, *spatial)`` arrays. Their memory is channels-last (a transposed view,
like ``torch.channels_last``) because that is how the engine computes, except for 1x1 convolutions
of a C-contiguous input, which are one batched ``W @ X`` product and come back in C order. Feed
results back in as they are, or call ``np.ascontiguousarray`` if C order is needed.
"""

from stridelab.ops.conv import conv, conv_backward
from stridelab.ops.pool import avg_pool, avg_pool_backward, max_pool, max_pool_backward
from stridelab.ops.transpose import conv_transpose, conv_transpose_backward

__all__ = [
    "avg_pool", "avg_pool_backward", "conv", "conv_backward", "conv_transpose",
    "conv_transpose_backward", "max_pool", "max_pool_backward",
]
