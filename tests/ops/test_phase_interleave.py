"""Few-channel strided backward: the stride phases are interleaved into grad_x by the workers.

``GradBuffer.finish`` writes each image's finished input gradient (phases interleaved, padding
cropped) on the thread that owns the image, right after its last addition. Oracle: PyTorch
autograd at float64 1e-10, with pieces of one output row or less (many pieces and units per
thread), any padding (asymmetric, 'same', larger than the stride), dilation, 1-D to 3-D, batch 1;
every image must have been finished by a worker, and thread counts must not change a bit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stridelab import ops
from stridelab.ops import _chunks
from stridelab.ops._gradbuffer import GradBuffer
from tests._budget import budget
from tests.ops import _torch_ref as ref
from tests.ops._configs import ConvCase, conv_cases


@contextmanager
def _finish_recorded(patch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """Per interleaving buffer, whether every image was finished before ``to_input``."""
    seen: list[bool] = []
    real = GradBuffer.to_input

    def checked(self: GradBuffer) -> np.ndarray:
        if self.interleaves:
            seen.append(self.finished is not None and bool(self.finished.all()))
        return real(self)

    patch.setattr(GradBuffer, "to_input", checked)
    yield seen


def _few_channel_strided(case: ConvCase) -> bool:
    return case.groups == 1 and case.in_channels < 16 and any(s > 1 for s in case.stride) \
        and any(k > 1 for k in case.kernel)


@settings(max_examples=budget(40), deadline=None)
@given(case=conv_cases().filter(_few_channel_strided), seed=st.integers(0, 2**31),
       piece_bytes=st.sampled_from([1, 200, 1 << 20]), threads=st.integers(1, 3))
def test_interleaved_input_gradient_matches_torch(case: ConvCase, seed: int, piece_bytes: int,
                                                  threads: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((case.batch, case.in_channels, *case.size))
    w = rng.standard_normal((case.out_channels, case.in_channels, *case.kernel))
    args = (case.stride, case.padding, case.dilation, case.groups)
    g = rng.standard_normal(ops.conv(x, w, None, *args).shape)
    expected = ref.conv(case, x, w, np.zeros(case.out_channels), g)
    with pytest.MonkeyPatch.context() as patch, _finish_recorded(patch) as seen:
        patch.setattr(_chunks, "column_bytes", lambda backward=False: piece_bytes)
        gx, gw, _ = ops.conv_backward(g, x, w, *args, bias=False, threads=threads)
    ref.assert_close(gx, expected[1], 1e-10, f"grad_x {case}")
    ref.assert_close(gw, expected[2], 1e-10, f"grad_weight {case}")
    assert seen == [True], "the workers did not finish every image"


@pytest.mark.parametrize("shape, k, s, p", [((5, 3, 29, 23), 7, 2, 3), ((1, 2, 17, 16), 3, 3, 2),
                                            ((4, 3, 9, 10, 11), 3, 2, 1)])
def test_interleaved_input_gradient_bits_do_not_depend_on_threads(
        shape: tuple[int, ...], k: int, s: int, p: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stem-like (3 channels, 7x7 stride 2, padding 3) and others, float32, several pieces per
    image: 1, 2 and 3 threads give the same bits, and the workers finished every image."""
    monkeypatch.setattr(_chunks, "column_bytes", lambda backward=False: 4096)
    rng = np.random.default_rng(8)
    x = rng.standard_normal(shape).astype(np.float32)
    nd = len(shape) - 2
    w = rng.standard_normal((6, shape[1], *(k,) * nd)).astype(np.float32)
    g = rng.standard_normal(ops.conv(x, w, stride=s, padding=p).shape).astype(np.float32)
    with _finish_recorded(monkeypatch) as seen:
        one = ops.conv_backward(g, x, w, stride=s, padding=p, bias=False, threads=1)
        for threads in (2, 3):
            other = ops.conv_backward(g, x, w, stride=s, padding=p, bias=False, threads=threads)
            for a, b in zip(one[:2], other[:2]):
                assert a is not None and b is not None and np.array_equal(a, b)
    assert seen == [True] * 3
