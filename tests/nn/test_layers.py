"""Conv / pool padding against independent oracles: TF's 'SAME' formula written out here, torch."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from stridelab.nn import (
    AvgPool2d,
    BlurPool2d,
    Conv1d,
    Conv2d,
    Conv3d,
    MaxPool2d,
    space_to_depth_conv,
)
from tests._budget import budget
from tests.nn.test_onnx_dynamic import assert_static_graph


def tf_same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's documented SAME rule (oracle, written independently of stridelab.arith)."""
    k_eff = (kernel - 1) * dilation + 1
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + k_eff - size, 0)
    return total // 2, total - total // 2


def reference_conv2d(x: torch.Tensor, conv: torch.nn.Conv2d, pads_hw: list[tuple[int, int]]
                     ) -> torch.Tensor:
    (top, bottom), (left, right) = pads_hw
    padded = F.pad(x, [left, right, top, bottom])
    return F.conv2d(padded, conv.weight, conv.bias, conv.stride, 0, conv.dilation, conv.groups)


@settings(max_examples=budget(40))
@given(h=st.integers(1, 13), w=st.integers(1, 13), k=st.integers(1, 5), s=st.integers(1, 4),
       d=st.integers(1, 2), lower=st.booleans())
def test_same_matches_tf_formula(h: int, w: int, k: int, s: int, d: int, lower: bool) -> None:
    torch.manual_seed(0)
    conv = Conv2d(2, 3, k, stride=s, padding="same_lower" if lower else "same", dilation=d)
    x = torch.randn(1, 2, h, w)
    pads = [tf_same_pads(h, k, s, d), tf_same_pads(w, k, s, d)]
    if lower:
        pads = [(a, b) for b, a in pads]
    expected = reference_conv2d(x, conv, pads)
    got = conv(x)
    assert got.shape[-2:] == (math.ceil(h / s), math.ceil(w / s))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert conv.padding_for((h, w)) == tuple(pads)


@pytest.mark.parametrize("stride", [1, 2, 3, 4])
@pytest.mark.parametrize("size", [7, 8, 224, 225])
def test_same_stride_grid(stride: int, size: int) -> None:
    conv = Conv2d(3, 4, 3, stride=stride, padding="same")
    x = torch.randn(1, 3, size, size)
    pad = tf_same_pads(size, 3, stride)
    torch.testing.assert_close(conv(x), reference_conv2d(x, conv, [pad, pad]))


def test_porting_hazard_even_input_stride2() -> None:
    """224, k=3, s=2: TF pads (0, 1), torch's symmetric 1 pads (1, 1): same size, other values."""
    conv = Conv2d(1, 1, 3, stride=2, padding="same")
    assert conv.padding_for((224, 224)) == ((0, 1), (0, 1))
    sym = torch.nn.Conv2d(1, 1, 3, stride=2, padding=1)
    sym.load_state_dict(conv.state_dict())
    x = torch.randn(1, 1, 224, 224)
    assert conv(x).shape == sym(x).shape
    assert not torch.allclose(conv(x), sym(x))


def test_subclass_and_state_dict_unchanged() -> None:
    ours = Conv2d(3, 8, 3, stride=2, padding="same")
    ref = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
    assert isinstance(ours, torch.nn.Conv2d)
    assert list(ours.state_dict()) == list(ref.state_dict())
    ref.load_state_dict(ours.state_dict(), strict=True)
    assert isinstance(Conv1d(1, 1, 3), torch.nn.Conv1d)
    assert isinstance(Conv3d(1, 1, 3), torch.nn.Conv3d)
    assert isinstance(MaxPool2d(3), torch.nn.MaxPool2d)
    assert isinstance(AvgPool2d(3), torch.nn.AvgPool2d)


def test_symmetric_int_padding_is_torch() -> None:
    ours = Conv2d(3, 8, 3, stride=2, padding=1)
    ref = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 9, 10)
    assert ours.padding == (1, 1)
    torch.testing.assert_close(ours(x), ref(x))


def test_asymmetric_pairs_and_modes() -> None:
    conv = Conv2d(2, 3, 3, padding=((0, 2), (1, 0)))
    x = torch.randn(1, 2, 6, 5)
    expected = F.conv2d(F.pad(x, [1, 0, 0, 2]), conv.weight, conv.bias)
    torch.testing.assert_close(conv(x), expected)
    reflect = Conv2d(2, 3, 3, padding=((1, 2), (2, 1)), padding_mode="reflect")
    expected = F.conv2d(F.pad(x, [2, 1, 1, 2], mode="reflect"), reflect.weight, reflect.bias)
    torch.testing.assert_close(reflect(x), expected)


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_conv1d_and_conv3d_same(stride: int) -> None:
    c1 = Conv1d(2, 2, 4, stride=stride, padding="same")
    x1 = torch.randn(1, 2, 11)
    b, a = tf_same_pads(11, 4, stride)
    torch.testing.assert_close(c1(x1), F.conv1d(F.pad(x1, [b, a]), c1.weight, c1.bias, stride))
    c3 = Conv3d(1, 2, (3, 2, 4), stride=stride, padding="same")
    x3 = torch.randn(1, 1, 5, 6, 7)
    pads = [tf_same_pads(n, k, stride) for n, k in zip((5, 6, 7), (3, 2, 4))]
    flat = [v for pair in reversed(pads) for v in pair]
    torch.testing.assert_close(c3(x3), F.conv3d(F.pad(x3, flat), c3.weight, c3.bias, stride))


@settings(max_examples=budget(25))
@given(h=st.integers(1, 12), w=st.integers(1, 12), k=st.integers(1, 4), s=st.integers(1, 4))
def test_pools_same(h: int, w: int, k: int, s: int) -> None:
    x = torch.randn(1, 2, h, w)
    (t, b), (lft, r) = tf_same_pads(h, k, s), tf_same_pads(w, k, s)
    got = MaxPool2d(k, s, padding="same")(x)
    expected = F.max_pool2d(F.pad(x, [lft, r, t, b], value=-math.inf), k, s)
    torch.testing.assert_close(got, expected)
    # TF 'SAME' average: mean over the real pixels each window covers.
    got = AvgPool2d(k, s, padding="same", count_include_pad=False)(x)
    sums = F.avg_pool2d(F.pad(x, [lft, r, t, b]), k, s) * k * k
    counts = F.avg_pool2d(F.pad(torch.ones(1, 1, h, w), [lft, r, t, b]), k, s) * k * k
    torch.testing.assert_close(got, sums / counts)
    got = AvgPool2d(k, s, padding="same")(x)
    torch.testing.assert_close(got, F.avg_pool2d(F.pad(x, [lft, r, t, b]), k, s))


def test_bad_padding_names_parameter() -> None:
    with pytest.raises(ValueError, match="padding"):
        Conv2d(1, 1, 3, padding="full")
    with pytest.raises((ValueError, TypeError), match="padding"):
        Conv2d(1, 1, 3, padding=-1)
    with pytest.raises(ValueError, match="return_indices"):
        MaxPool2d(2, 2, padding="same", return_indices=True)


@pytest.mark.parametrize("dynamo", [False, True])
def test_onnx_export_same_stride2(tmp_path: object, dynamo: bool) -> None:
    ort = pytest.importorskip("onnxruntime")
    import pathlib

    model = torch.nn.Sequential(Conv2d(3, 4, 3, stride=2, padding="same"),
                                MaxPool2d(3, 2, padding="same"), BlurPool2d(4),
                                space_to_depth_conv(Conv2d(4, 4, 3, stride=3, padding=0)),
                                AvgPool2d(2, 2, padding="same_lower", count_include_pad=False))
    x = torch.randn(1, 3, 55, 61)
    path = pathlib.Path(str(tmp_path)) / "m.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes that the 'same' padding is traced per size
        torch.onnx.export(model, (x,), str(path), dynamo=dynamo)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    assert abs(torch.from_numpy(got) - model(x)).max().item() <= 1e-4
    if dynamo:  # a fixed-size export folds the 'same' padding to plain pads (legacy: in
        assert_static_graph(path)  # test_onnx_dynamic; here space_to_depth hides its sizes)
