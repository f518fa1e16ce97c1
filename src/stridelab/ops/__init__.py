"""stridelab.ops: convolution, transposed convolution and pooling in NumPy (no torch).

Channels-first arrays ``(N, C, *spatial)`` with 1, 2 or 3 spatial axes; float32 or float64, and
the result has the input's dtype. Every size and padding is resolved by :mod:`stridelab.arith`.
Each forward function has a ``*_backward`` that returns the gradients PyTorch's autograd gives.

Speed: strided convolutions only visit output positions (cost 1/prod(stride) of stride 1), and
the heavy lifting is one BLAS matrix product per batch chunk. NumPy's bundled OpenBLAS may pick
AVX2 kernels on AMD CPUs that have AVX-512; setting ``OPENBLAS_CORETYPE=SkylakeX`` in the
environment *before* NumPy is imported lets it use AVX-512 (see docs/ops-benchmark.md).
"""

from stridelab.ops.conv import conv, conv_backward
from stridelab.ops.pool import avg_pool, avg_pool_backward, max_pool, max_pool_backward
from stridelab.ops.transpose import conv_transpose, conv_transpose_backward

__all__ = [
    "avg_pool", "avg_pool_backward", "conv", "conv_backward", "conv_transpose",
    "conv_transpose_backward", "max_pool", "max_pool_backward",
]
