"""Output sizes against the shapes torch.nn.functional really produces (>= 20k configs in CI).

Each hypothesis example checks a batch of configurations, so ``budget(N) * BATCH`` configs run.
Errors must agree too: arith raises exactly when torch refuses the configuration.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from stridelab import arith
from tests._budget import budget

BATCH = 8
CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
MAX_SIZE = {1: 40, 2: 16, 3: 7}


@st.composite
def axes(draw: st.DrawFn, ndim: int, max_kernel: int = 5) -> dict[str, tuple[int, ...]]:
    def tup(lo: int, hi: int) -> tuple[int, ...]:
        return tuple(draw(st.integers(lo, hi)) for _ in range(ndim))
    return {
        "size": tup(1, MAX_SIZE[ndim]), "kernel": tup(1, max_kernel), "stride": tup(1, 5),
        "dilation": tup(1, 3), "before": tup(0, 4), "after": tup(0, 4),
    }


def _torch_shape(fn, *args, **kwargs) -> tuple[int, ...] | None:  # type: ignore[no-untyped-def]
    try:
        return tuple(fn(*args, **kwargs).shape[2:])
    except RuntimeError:
        return None


def _arith(fn, *args, **kwargs) -> tuple[int, ...] | None:  # type: ignore[no-untyped-def]
    try:
        return fn(*args, **kwargs)  # type: ignore[no-any-return]
    except ValueError:
        return None


def _pad_arg(before: tuple[int, ...], after: tuple[int, ...]) -> list[int]:
    """F.pad wants (last-axis before, last-axis after, previous axis ...)."""
    flat: list[int] = []
    for b, a in zip(reversed(before), reversed(after)):
        flat += [b, a]
    return flat


@pytest.mark.parametrize("ndim", [1, 2, 3])
@settings(max_examples=budget(350))
@given(data=st.data())
def test_conv_output_size_matches_torch(ndim: int, data: st.DataObject) -> None:
    for _ in range(BATCH):
        c = data.draw(axes(ndim))
        x = torch.zeros((1, 1, *c["size"]))
        w = torch.zeros((1, 1, *c["kernel"]))
        padded = F.pad(x, _pad_arg(c["before"], c["after"]))
        expected = _torch_shape(CONV[ndim], padded, w, stride=c["stride"], dilation=c["dilation"])
        pads = tuple(zip(c["before"], c["after"]))
        got = _arith(arith.conv_output_size, c["size"], c["kernel"], c["stride"], pads,
                     c["dilation"])
        assert got == expected, c


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("ceil_mode", [False, True])
@settings(max_examples=budget(200))
@given(data=st.data())
def test_pool_output_size_matches_torch(ndim: int, ceil_mode: bool, data: st.DataObject) -> None:
    for _ in range(BATCH):
        c = data.draw(axes(ndim))
        avg = data.draw(st.booleans())
        x = torch.zeros((1, 1, *c["size"]))
        pad = tuple(min(b, 3) for b in c["before"])
        if avg:  # avg_pool has no dilation
            dilation: tuple[int, ...] = (1,) * ndim
            if ndim == 3 and any(i < k for i, k in zip(c["size"], c["kernel"])):
                # avg_pool3d alone refuses an unpadded input smaller than the kernel ("input
                # image smaller than kernel size"), unlike avg_pool2d and max_pool3d; the shape
                # rule is the same, so max_pool3d is the oracle there.
                expected = _torch_shape(MAX_POOL[3], x, c["kernel"], c["stride"], pad, 1,
                                        ceil_mode)
            else:
                expected = _torch_shape(AVG_POOL[ndim], x, c["kernel"], c["stride"], pad,
                                        ceil_mode)
        else:
            dilation = c["dilation"]
            expected = _torch_shape(MAX_POOL[ndim], x, c["kernel"], c["stride"], pad, dilation,
                                    ceil_mode)
        got = _arith(arith.pool_output_size, c["size"], c["kernel"], c["stride"], pad, dilation,
                     ceil_mode)
        assert got == expected, (c, pad, avg)


@pytest.mark.parametrize("ndim", [1, 2, 3])
@settings(max_examples=budget(300))
@given(data=st.data())
def test_transposed_output_size_matches_torch(ndim: int, data: st.DataObject) -> None:
    for _ in range(BATCH):
        c = data.draw(axes(ndim))
        size = tuple(min(v, 8) for v in c["size"])
        out_pad = tuple(data.draw(st.integers(0, 4)) for _ in range(ndim))
        x = torch.zeros((1, 1, *size))
        w = torch.zeros((1, 1, *c["kernel"]))
        expected = _torch_shape(CONV_T[ndim], x, w, stride=c["stride"], padding=c["before"],
                                output_padding=out_pad, dilation=c["dilation"])
        if expected is not None and 0 in expected:
            # torch's transposed-conv check rejects only outputs that are < 1 on EVERY axis, so
            # (0, 4) comes back as an empty tensor; an empty axis is no output size: a refusal.
            expected = None
        got = _arith(arith.transposed_output_size, size, c["kernel"], c["stride"], c["before"],
                     c["dilation"], out_pad)
        assert got == expected, (c, out_pad)


@settings(max_examples=budget(300))
@given(data=st.data())
def test_output_padding_for_inverts_the_conv(data: st.DataObject) -> None:
    """A transposed conv with the computed output_padding maps the conv's output back to its input."""
    for _ in range(BATCH):
        c = data.draw(axes(2))
        pad = tuple(min(b, k - 1) for b, k in zip(c["before"], c["kernel"]))
        conv_out = _arith(arith.conv_output_size, c["size"], c["kernel"], c["stride"], pad,
                          c["dilation"])
        if conv_out is None:
            continue
        op = arith.output_padding_for(conv_out, c["size"], c["kernel"], c["stride"], pad,
                                      c["dilation"])
        y = torch.zeros((1, 1, *conv_out))
        w = torch.zeros((1, 1, *c["kernel"]))
        back = F.conv_transpose2d(y, w, stride=c["stride"], padding=pad, output_padding=op,
                                  dilation=c["dilation"])
        assert tuple(back.shape[2:]) == c["size"]
