"""stridelab.ops: convolution, transposed convolution and pooling in NumPy (no torch).

Channels-first arrays ``(N, C, *spatial)`` with 1, 2 or 3 spatial axes; float32 or float64 (max
pooling also any integer dtype), and the result has the input's dtype. Every size and padding is
resolved by :mod:`stridelab.arith`. PyTorch's conventions are the default; pooling takes
``convention="onnx"`` (any padding, flat indices, ``storage_order``) and ``conv_transpose`` ONNX's
``output_shape``; the ONNX backend node tests for these operators all pass (README).
Each forward function has a ``*_backward`` that returns the gradients PyTorch's autograd gives.

Speed: strided convolutions only visit output positions (cost 1/prod(stride) of stride 1). The
patch matrix is built and multiplied in cache-sized pieces (about 1.5 per-core L2 caches each,
gathered into per-thread buffers that are reused across pieces and calls), so NumPy's BLAS sets
the pace (see docs/ops-benchmark.md, which also measures that GEMM floor).

Threads: ``conv(..., threads=n)`` / ``conv_backward(..., threads=n)``; else the environment
variable ``STRIDELAB_NUM_THREADS``; else as many as NumPy's BLAS is allowed (threadpoolctl, so
``threadpool_limits`` and ``OPENBLAS_NUM_THREADS`` are respected), at most the usable cores. The
pieces are spread over the threads, each running single-threaded BLAS (NumPy's BLAS is held to
one thread while they run, and restored after). The pieces do not depend on the thread count,
so results are bit-identical for every ``threads``; concurrent calls from several threads are
safe. With ``threads=1`` every BLAS call of that call is single-threaded.

Layout: results are ``(N, C, *spatial)`` arrays. Their memory is channels-last (a transposed view,
like ``torch.channels_last``) because that is how the engine computes, except for 1x1
convolutions (no padding, one group) of a C-contiguous input, which are ``W @ X`` products per
image (strided: ``W @`` the subsample) and come back in C order. Feed results back in as they
are, or call ``np.ascontiguousarray`` if C order is needed.
"""

from stridelab.ops.conv import conv, conv_backward
from stridelab.ops.pool import avg_pool, avg_pool_backward, max_pool, max_pool_backward
from stridelab.ops.transpose import conv_transpose, conv_transpose_backward

__all__ = [
    "avg_pool", "avg_pool_backward", "conv", "conv_backward", "conv_transpose",
    "conv_transpose_backward", "max_pool", "max_pool_backward",
]
