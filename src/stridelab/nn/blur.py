"""BlurPool: low-pass filter, then subsample (Zhang, ICML 2019, "Making Convolutional Networks
Shift-Invariant Again").

The filter is the outer product of a binomial row (1 2 1 for ``filter_size=3``, 1 4 6 4 1 for 5),
normalised to sum 1, applied depthwise (one copy per channel) as a single strided convolution.
Padding: ``(filter_size - 1) // 2`` before and the rest after on each axis (the stride-1 'same'
split from :func:`stridelab.arith.same_padding`), so the output is ``ceil(i / stride)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from stridelab.arith import PaddingPair, same_padding

PAD_MODES = ("reflect", "replicate", "zeros")


def binomial_filter(filter_size: int) -> list[float]:
    """Row ``filter_size - 1`` of Pascal's triangle, normalised to sum 1."""
    row = [math.comb(filter_size - 1, k) for k in range(filter_size)]
    total = sum(row)
    return [v / total for v in row]


class BlurPool2d(torch.nn.Module):
    """Depthwise binomial blur with stride: ``channels`` in and out, ``ceil(i / stride)`` outputs.

    ``pad_mode="reflect"`` (Zhang's choice) falls back to ``"replicate"`` on an axis too short to
    reflect (size <= padding), so any input size works. The filter is a non-persistent buffer:
    it is not in ``state_dict``.
    """

    filter: Tensor

    def __init__(self, channels: int, stride: int = 2, filter_size: int = 3,
                 pad_mode: str = "reflect") -> None:
        super().__init__()
        for name, value, minimum in (("channels", channels, 1), ("stride", stride, 1),
                                     ("filter_size", filter_size, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ValueError(f"BlurPool2d {name} must be an int >= {minimum}, got {value!r}")
        if pad_mode not in PAD_MODES:
            raise ValueError(f"BlurPool2d pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
        self.channels, self.filter_size, self.pad_mode = channels, filter_size, pad_mode
        self.kernel_size = (filter_size, filter_size)
        self.stride = (stride, stride)
        pair = same_padding(None, filter_size, 1)
        assert isinstance(pair[0], int)
        self.padding: tuple[PaddingPair, PaddingPair] = (pair, pair)
        row = torch.tensor(binomial_filter(filter_size))
        weight = (row[:, None] * row[None, :]).expand(channels, 1, filter_size, filter_size)
        self.register_buffer("filter", weight.contiguous(), persistent=False)

    def extra_repr(self) -> str:
        return (f"{self.channels}, stride={self.stride[0]}, filter_size={self.filter_size}, "
                f"pad_mode={self.pad_mode!r}")

    def forward(self, x: Tensor) -> Tensor:
        (top, bottom), (left, right) = self.padding
        pads = [left, right, top, bottom]
        if any(pads):
            mode = "constant" if self.pad_mode == "zeros" else self.pad_mode
            if mode == "reflect" and min(x.shape[-2:]) <= max(pads):
                mode = "replicate"
            x = F.pad(x, pads, mode=mode)
        weight = self.filter.to(dtype=x.dtype)
        return F.conv2d(x, weight, None, self.stride, 0, 1, self.channels)
