"""Input gradients of the GEMM backward's many-channel path, from tap-major patch gradients.

Where a window's output rows are contiguous (stride 1 along the last axis) the patch gradients
are computed one product per tap (``(g, taps, rows, C_in/g)``) so that every addition into the
channels-last input gradient runs over whole rows; otherwise row-major as before. Oracles:
PyTorch autograd (float64 1e-10, float32) with pieces shrunk to a few output rows, every thread
count giving the same bits, and the per-tap weights following in-place changes of the weight.
"""

from __future__ import annotations

import numpy as np
import pytest

from stridelab import ops
from stridelab.ops import _chunks, _gemm
from tests.ops import _torch_ref as ref
from tests.ops._configs import ConvCase


def _case(batch: int, cin: int, size: tuple[int, ...], k: int, s: int | tuple[int, ...],
          pads: tuple[tuple[int, int], ...], groups: int = 1, dilation: int = 1) -> ConvCase:
    nd = len(size)
    stride = s if isinstance(s, tuple) else (s,) * nd
    return ConvCase(batch, cin, 24, groups, size, (k,) * nd, stride, (dilation,) * nd, pads,
                    pads)


CASES = [  # at least FEW_CHANNELS input channels: the channels-last path
    _case(1, 16, (13, 11), 3, 2, ((1, 1), (1, 1))),  # ResNet's 3x3 stride 2, odd sizes, batch 1
    _case(3, 16, (12, 12), 3, 2, ((1, 2), (0, 1))),  # asymmetric padding
    _case(2, 16, (14, 13), 4, 3, ((2, 0), (1, 3))),  # stride 3, rows no window reaches
    _case(2, 16, (8, 9), 3, 1, ((1, 1), (1, 1))),  # stride 1: tap-major
    _case(1, 16, (9, 8), 3, 1, ((0, 2), (1, 0))),  # stride 1, asymmetric, batch 1: tap-major
    _case(2, 16, (11, 9), 3, (2, 1), ((1, 1), (1, 1))),  # stride 1 on the last axis: tap-major
    _case(2, 16, (9, 11), 3, (1, 2), ((1, 1), (1, 1))),  # strided last axis: row-major
    _case(2, 32, (9, 9), 3, 1, ((1, 1), (1, 1)), groups=2),  # grouped, tap-major
    _case(2, 16, (10, 11), 3, 1, ((2, 2), (1, 3)), dilation=2),  # dilated, tap-major
    _case(2, 16, (7, 6, 7), 3, 2, ((1, 1), (0, 1), (1, 0))),  # 3-D
    _case(2, 32, (11, 9), 3, 2, ((1, 1), (1, 1)), groups=2),  # grouped
    _case(2, 16, (12, 12), 2, 3, ((1, 1), (1, 1))),  # kernel < stride: gaps
    _case(2, 16, (12, 12), 3, 2, ((2, 2), (2, 2)), dilation=2),  # dilated
]


def _grads(case: ConvCase, dtype: type, seed: int, threads: int | None = None
           ) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((case.batch, case.in_channels, *case.size)).astype(dtype)
    w = rng.standard_normal((case.out_channels, case.in_channels // case.groups,
                             *case.kernel)).astype(dtype)
    b = rng.standard_normal(case.out_channels).astype(dtype)
    y = ops.conv(x, w, b, case.stride, case.padding, case.dilation, case.groups)
    g = rng.standard_normal(y.shape).astype(dtype)
    gx, gw, _ = ops.conv_backward(g, x, w, case.stride, case.padding, case.dilation, case.groups,
                                  threads=threads)
    return x, w, b, g, gx, gw


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"k{c.kernel[0]}s{c.stride}d"
                         f"{c.dilation[0]}g{c.groups}-{c.size}-{c.pads}")
@pytest.mark.parametrize("budget_bytes", [256, None], ids=["row-pieces", "default-pieces"])
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-10), (np.float32, 2e-5)])
def test_input_gradient_matches_torch(monkeypatch: pytest.MonkeyPatch, case: ConvCase,
                                      budget_bytes: int | None, dtype: type, rtol: float) -> None:
    assert case.in_channels >= _gemm.FEW_CHANNELS
    if budget_bytes is not None:  # bands of one output row or less: many band boundaries
        monkeypatch.setattr(_chunks, "column_bytes", lambda backward=False: budget_bytes)
    x, w, b, g, gx, gw = _grads(case, dtype, 11)
    _, ex, ew, _ = ref.conv(case, x, w, b, g)
    ref.assert_close(gx, ex, rtol, f"grad_x {case}")
    ref.assert_close(gw, ew, rtol, f"grad_weight {case}")


def test_same_bits_for_every_thread_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_chunks, "column_bytes", lambda backward=False: 2048)
    for stride in (1, 2):
        case = _case(5, 16, (15, 13), 3, stride, ((1, 1), (1, 1)))
        one = _grads(case, np.float32, 3, threads=1)
        for threads in (2, 3):
            for a, e in zip(_grads(case, np.float32, 3, threads=threads)[4:], one[4:]):
                assert np.array_equal(a, e)


def test_tap_weights_follow_the_weight_array() -> None:
    """The per-tap weight matrices are cached per weight array and rebuilt after an in-place
    change: the second backward sees the new weight (checked against torch)."""
    case = _case(2, 16, (9, 9), 3, 1, ((1, 1), (1, 1)))
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 16, 9, 9))
    w = rng.standard_normal((24, 16, 3, 3))
    g = rng.standard_normal((2, 24, 9, 9))
    for _ in range(2):
        gx, _, _ = ops.conv_backward(g, x, w, 1, 1)
        ref.assert_close(gx, ref.conv(case, x, w, np.zeros(24), g)[1], 1e-10, "grad_x")
        w *= -0.5  # in place: same array, new bytes
