"""'same' padding: ceil(i / s) outputs, TF's window placement, SAME_UPPER vs SAME_LOWER, onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from stridelab import arith
from tests._budget import budget


def tf_total_padding(size: int, k_eff: int, stride: int) -> int:
    """TensorFlow's documented rule (nn.convolution docs), written independently of arith."""
    if size % stride == 0:
        return max(k_eff - stride, 0)
    return max(k_eff - size % stride, 0)


def window_starts(size: int, kernel: int, stride: int, dilation: int,
                  before: int, after: int) -> list[int]:
    """Start of each window, read off a real conv: a ramp input and a one-hot first tap."""
    ramp = torch.arange(1, size + 1, dtype=torch.float64).reshape(1, 1, size)
    tap = torch.zeros((1, 1, kernel), dtype=torch.float64)
    tap[0, 0, 0] = 1.0
    out = F.conv1d(F.pad(ramp, [before, after]), tap, stride=stride, dilation=dilation)
    # value v > 0 means the window starts at input v - 1; 0 means it starts in the left padding.
    return [int(v) - 1 if v > 0 else -1 for v in out.flatten().tolist()]


@settings(max_examples=budget(400))
@given(size=st.integers(1, 60), kernel=st.integers(1, 7), stride=st.integers(1, 5),
       dilation=st.integers(1, 3))
def test_same_matches_tensorflow(size: int, kernel: int, stride: int, dilation: int) -> None:
    k_eff = dilation * (kernel - 1) + 1
    total = tf_total_padding(size, k_eff, stride)
    tf_before, tf_after = total // 2, total - total // 2
    upper = arith.same_padding(size, kernel, stride, dilation, mode="upper")
    lower = arith.same_padding(size, kernel, stride, dilation, mode="lower")
    assert upper == (tf_before, tf_after)
    assert lower == (tf_after, tf_before)
    assert (upper != lower) == (total % 2 == 1)
    expected_out = -(-size // stride)
    assert arith.conv_output_size(size, kernel, stride, "same", dilation) == expected_out
    assert arith.conv_output_size(size, kernel, stride, "same_lower", dilation) == expected_out
    starts = window_starts(size, kernel, stride, dilation, *upper)
    tf_starts = [u * stride - tf_before for u in range(expected_out)]
    assert starts == [s if s >= 0 else -1 for s in tf_starts]
    # 'same' can still drop pixels when k_eff < s (then no padding is added): count them from
    # the last window torch actually reads.
    last_read = tf_starts[-1] + k_eff - 1
    assert arith.dropped_pixels(size, kernel, stride, "same", dilation) == max(size - 1 - last_read, 0)


def test_same_padding_unknown_size() -> None:
    assert arith.same_padding(None, 3) == (1, 1)
    assert arith.same_padding(None, 4) == (1, 2)
    assert arith.same_padding(None, 4, mode="lower") == (2, 1)
    assert arith.same_padding(None, 1, stride=2) == (0, 0)
    with pytest.raises(ValueError, match="depends on the input size"):
        arith.same_padding(None, 3, stride=2)


def test_porting_hazard_example() -> None:
    """i=224, k=3, s=2: TF pads (0, 1) while PyTorch's symmetric p=1 pads (1, 1)."""
    assert arith.same_padding(224, 3, 2) == (0, 1)
    assert arith.conv_output_size(224, 3, 2, "same") == arith.conv_output_size(224, 3, 2, 1)


def _ort_conv(x: np.ndarray, w: np.ndarray, stride: list[int], dilation: list[int],
              auto_pad: str) -> np.ndarray:
    node = helper.make_node("Conv", ["x", "w"], ["y"], auto_pad=auto_pad, strides=stride,
                            dilations=dilation, kernel_shape=list(w.shape[2:]))
    graph = helper.make_graph(
        [node], "same",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape)),
         helper.make_tensor_value_info("w", TensorProto.FLOAT, list(w.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", "c", "h", "w"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x, "w": w})[0]  # type: ignore[no-any-return]


# onnxruntime refuses dilation with auto_pad ("Dilation not supported for SAME_UPPER/LOWER"), so
# dilation is covered by the TensorFlow test above and ORT checks dilation 1.
CASES = [(h, w, k, s, 1) for h in (5, 6, 7, 8) for w in (9, 10) for k in (1, 2, 3, 4, 5)
         for s in (1, 2, 3, 4)]


@pytest.mark.parametrize("mode,auto_pad", [("same", "SAME_UPPER"), ("same_lower", "SAME_LOWER")])
def test_onnxruntime_auto_pad_agrees(mode: str, auto_pad: str) -> None:
    rng = np.random.default_rng(0)
    for h, w, k, s, d in CASES:
        if any((-(-i // s) - 1) * s + k - i < 0 for i in (h, w)):
            continue  # negative ONNX total: see test_onnxruntime_crops_when_total_is_negative
        x = rng.standard_normal((1, 2, h, w)).astype(np.float32)
        weight = rng.standard_normal((3, 2, k, k)).astype(np.float32)
        pads = arith.padding_pairs(mode, (h, w), k, s, d)
        flat = [pads[1][0], pads[1][1], pads[0][0], pads[0][1]]
        expected = F.conv2d(F.pad(torch.from_numpy(x), flat), torch.from_numpy(weight),
                            stride=s, dilation=d).numpy()
        got = _ort_conv(x, weight, [s, s], [d, d], auto_pad)
        assert got.shape == expected.shape, (h, w, k, s, d)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_onnxruntime_crops_when_total_is_negative() -> None:
    """Where k_eff < s and the unclamped total (o - 1) * s + k_eff - i is negative, TF clamps it to
    0 and so does stridelab; the ONNX formula has no clamp and onnxruntime's SAME_UPPER crops the
    input instead (windows start at row 1, not 0). This pins the divergence we document."""
    x = np.arange(8 * 9, dtype=np.float32).reshape(1, 1, 8, 9)
    w = np.ones((1, 1, 1, 1), np.float32)
    ort_rows = _ort_conv(x, w, [4, 4], [1, 1], "SAME_UPPER")[0, 0, :, 0]
    assert arith.same_padding((8, 9), 1, 4) == ((0, 0), (0, 0))
    assert ort_rows.tolist() == [9.0, 45.0]  # rows 1 and 5: cropped by one row
