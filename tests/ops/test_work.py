"""The work done is the strided work: BLAS multiply-adds equal the convolution's MACs.

No timing: every matrix product the engine issues is recorded and its multiply-adds counted.
Forward must cost exactly ``N * prod(out) * C_out * C_in/g * prod(k)`` MACs (so stride ``s``
costs 1/prod(s) of stride 1: nothing dense is computed and subsampled), and the backward pass
exactly twice that (grad_weight + grad_x; no multiplication by inserted zeros).
"""

from __future__ import annotations

from collections.abc import Iterator
from math import prod

import numpy as np
import pytest

from stridelab import arith, ops

LAYERS = [  # (C_in, C_out, kernel, stride, padding, size, groups): ResNet-like, scaled down
    (3, 8, 7, 2, 3, 24, 1),
    (8, 8, 3, 2, 1, 12, 1),
    (8, 16, 1, 2, 0, 12, 1),
    (8, 8, 3, 3, 1, 13, 2),
    (6, 6, 3, (2, 1), 0, 11, 1),
]


@pytest.fixture
def macs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    counted: list[int] = []
    real = np.matmul

    def counting(a, b, *args, **kwargs):  # type: ignore[no-untyped-def]
        a_, b_ = np.asarray(a), np.asarray(b)
        batch = prod(np.broadcast_shapes(a_.shape[:-2], b_.shape[:-2]))
        counted.append(batch * a_.shape[-2] * a_.shape[-1] * b_.shape[-1])
        return real(a, b, *args, **kwargs)

    monkeypatch.setattr(np, "matmul", counting)
    yield counted


@pytest.mark.parametrize("layer", LAYERS)
def test_blas_work_equals_strided_macs(layer: tuple, macs: list[int]) -> None:  # type: ignore[type-arg]
    cin, cout, k, stride, padding, size, groups = layer
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, cin, size, size)).astype(np.float32)
    w = rng.standard_normal((cout, cin // groups, k, k)).astype(np.float32)
    out = arith.conv_output_size((size, size), (k, k), stride, padding)
    assert isinstance(out, tuple)
    expected = 2 * prod(out) * cout * (cin // groups) * k * k
    y = ops.conv(x, w, stride=stride, padding=padding, groups=groups)
    assert sum(macs) == expected
    macs.clear()
    ops.conv_backward(np.ones_like(y), x, w, stride=stride, padding=padding, groups=groups)
    assert sum(macs) == 2 * expected
