"""Space-to-depth, and a strided convolution rewritten as space-to-depth + a stride-1 convolution.

Per axis, a convolution with kernel ``k`` and stride ``s`` reads ``y[u] = sum_t w[t] x[u*s + t]``
(``x`` already padded). Writing ``t = q*s + r`` with ``q < k' = ceil(k / s)`` and ``r < s`` gives
``y[u] = sum_q sum_r w[q*s + r] z_r[u + q]`` where ``z_r[v] = x[v*s + r]``: the rearranged input
``z`` (space-to-depth with block ``s``, ``s*s`` times the channels in 2-D) convolved at stride 1
with a ``k' x k'`` kernel whose taps past ``k`` are zero. Outputs are identical up to float
rounding, for any input size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from stridelab.arith import conv_output_size, effective_kernel, padding_pairs, same_padding
from stridelab.nn.layers import PaddingResolver


def _block_pair(block: int | Sequence[int]) -> tuple[int, int]:
    values = (block, block) if isinstance(block, int) else tuple(block)
    if len(values) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1
                                   for v in values):
        raise ValueError(f"block must be an int >= 1 or a pair of them, got {block!r}")
    return (int(values[0]), int(values[1]))


def space_to_depth(x: Tensor, block: tuple[int, int]) -> Tensor:
    """``(N, C, H, W) -> (N, C*bh*bw, H/bh, W/bw)``; channel ``c*bh*bw + r*bw + q`` holds pixel
    ``(y*bh + r, x*bw + q)`` of channel ``c`` (torch's pixel_unshuffle order). H, W must divide."""
    bh, bw = block
    n, c, h, w = x.shape
    x = x.reshape(n, c, h // bh, bh, w // bw, bw).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(n, c * bh * bw, h // bh, w // bw)


class SpaceToDepth(torch.nn.Module):
    """Rearrange ``block x block`` patches into channels: ``C -> C * block**2``, ``H -> ceil(H / b)``.

    An input size that is not a multiple of the block is zero-padded at the end (bottom / right)
    first. Like a conv with kernel = stride = block: ``kernel_size`` and ``stride`` say so.
    """

    def __init__(self, block: int | tuple[int, int]) -> None:
        super().__init__()
        self.block = _block_pair(block)
        self.kernel_size = self.block
        self.stride = self.block

    def extra_repr(self) -> str:
        return f"block={self.block}"

    def padding_for(self, input_size: Sequence[int]) -> tuple[tuple[int, int], ...]:
        """``(0, after)`` per axis: zeros appended to reach a multiple of the block."""
        size = (int(input_size[-2]), int(input_size[-1]))
        pairs = same_padding(size, self.block, self.block)
        return tuple((0, p[0] + p[1]) for p in pairs if isinstance(p, tuple))

    def forward(self, x: Tensor) -> Tensor:
        (_, bottom), (_, right) = self.padding_for(tuple(x.shape[-2:]))
        if bottom or right:
            x = F.pad(x, [0, right, 0, bottom])
        return space_to_depth(x, self.block)


class SpaceToDepthConv(torch.nn.Module):
    """A stride-s 2-D convolution computed as pad/crop -> :class:`SpaceToDepth` -> stride-1 conv.

    Build it with :func:`space_to_depth_conv`. ``padding`` keeps the original convolution's spec
    (resolved per input size, as in :class:`stridelab.nn.Conv2d`); ``self.conv`` is a plain
    stride-1, unpadded :class:`torch.nn.Conv2d` with ``C*s*s`` input channels and a
    ``ceil(k / s)`` kernel.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, int],
                 stride: tuple[int, int], padding: Any, bias: bool = True,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = kernel_size, stride
        self._resolver = PaddingResolver(padding, kernel_size, stride, (1, 1), fold=False)
        self.padding = self._resolver.torch_padding
        taps = tuple(-(-k // s) for k, s in zip(kernel_size, stride))
        self.space_to_depth = SpaceToDepth(stride)
        self.conv = torch.nn.Conv2d(in_channels * stride[0] * stride[1], out_channels,
                                    (taps[0], taps[1]),
                                    bias=bias, device=device, dtype=dtype)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")

    def padding_for(self, input_size: Sequence[int]) -> tuple[tuple[int, int], ...]:
        return self._resolver.pairs(input_size)

    @torch.no_grad()
    def load_from(self, weight: Tensor, bias: Tensor | None) -> None:
        """Set the stride-1 kernel from an original ``(O, C, kh, kw)`` kernel (zeros past ``k``)."""
        (sh, sw), (th, tw) = self.stride, self.conv.kernel_size
        out_ch, in_ch, kh, kw = weight.shape
        padded = F.pad(weight, [0, tw * sw - kw, 0, th * sh - kh])
        padded = padded.reshape(out_ch, in_ch, th, sh, tw, sw).permute(0, 1, 3, 5, 2, 4)
        self.conv.weight.copy_(padded.reshape(out_ch, in_ch * sh * sw, th, tw))
        if bias is not None and self.conv.bias is not None:
            self.conv.bias.copy_(bias)

    def forward(self, x: Tensor) -> Tensor:
        size = (int(x.shape[-2]), int(x.shape[-1]))
        pairs = self._resolver.pairs(size)
        out = conv_output_size(size, self.kernel_size, self.stride, pairs)
        assert isinstance(out, tuple)
        taps = self.conv.kernel_size
        pads: list[int] = []
        for axis in (1, 0):  # F.pad order: width first
            i, (before, _), s = size[axis], pairs[axis], self.stride[axis]
            needed = (out[axis] + taps[axis] - 1) * s  # padded length the stride-1 conv reads
            after = needed - i - before
            if after < 0:  # trailing pixels no window reaches: crop them
                x = x.narrow(axis + 2, 0, i + after)
                after = 0
            pads += [before, after]
        if any(pads):
            x = F.pad(x, pads)
        result: Tensor = self.conv(self.space_to_depth(x))
        return result


def space_to_depth_conv(conv: torch.nn.Conv2d) -> SpaceToDepthConv:
    """Rewrite a strided ``Conv2d`` (torch's or stridelab's) as space-to-depth + stride-1 conv.

    Supports any kernel, stride, dilation and padding spec with ``groups=1`` and
    ``padding_mode="zeros"``; raises ValueError naming the field otherwise. A dilated kernel is
    first spread into a dense ``k_eff = d * (k - 1) + 1`` kernel with zeros between the taps (so
    ``kernel_size`` of the result is ``k_eff``). The result shares no storage with ``conv``.
    """
    if not isinstance(conv, torch.nn.Conv2d):
        raise TypeError(f"conv must be a torch.nn.Conv2d, got {type(conv).__name__}")
    for name, value, allowed in (("groups", conv.groups, 1),
                                 ("padding_mode", conv.padding_mode, "zeros")):
        if value != allowed:
            raise ValueError(f"space_to_depth_conv needs conv.{name} == {allowed!r}, got {value!r}")
    weight = conv.weight.detach()
    dilation = (int(conv.dilation[0]), int(conv.dilation[1]))
    if dilation != (1, 1):
        size = effective_kernel(tuple(conv.kernel_size), dilation)
        assert isinstance(size, tuple)
        dense = weight.new_zeros(*weight.shape[:2], *size)
        dense[:, :, ::dilation[0], ::dilation[1]] = weight
        weight = dense
    kernel = (int(weight.shape[2]), int(weight.shape[3]))
    stride = (int(conv.stride[0]), int(conv.stride[1]))
    spec: Any = conv.padding
    if not isinstance(spec, str):  # numeric specs do not depend on the kernel: keep them
        spec = padding_pairs(spec, None, tuple(conv.kernel_size), stride, dilation)
    result = SpaceToDepthConv(conv.in_channels, conv.out_channels, kernel, stride, spec,
                              bias=conv.bias is not None, device=conv.weight.device,
                              dtype=conv.weight.dtype)
    result.load_from(weight, None if conv.bias is None else conv.bias.detach())
    return result
