"""Shapes of one convolution, resolved once with :mod:`stridelab.arith` and shared by every path.

Conventions: arrays are channels-first ``(N, C, *spatial)``; ``pads`` holds one ``(before, after)``
pair per spatial axis; sizes are in input elements.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from stridelab import arith
from stridelab.arith import PaddingSpec
from stridelab.ops._checks import spatial_tuple


@dataclass(frozen=True)
class ConvGeometry:
    """Everything about one convolution except the numbers in the arrays."""

    batch: int
    in_channels: int
    out_channels: int
    groups: int
    in_size: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]
    out_size: tuple[int, ...]

    @property
    def ndim(self) -> int:
        return len(self.in_size)

    @property
    def taps(self) -> int:
        return prod(self.kernel)

    @property
    def out_positions(self) -> int:
        return prod(self.out_size)

    @property
    def in_per_group(self) -> int:
        return self.in_channels // self.groups

    @property
    def out_per_group(self) -> int:
        return self.out_channels // self.groups

    @property
    def padded_extent(self) -> tuple[int, ...]:
        """Padded input length each axis actually reads: ``(o - 1) * s + k_eff``."""
        return tuple((o - 1) * s + d * (k - 1) + 1 for o, s, k, d in
                     zip(self.out_size, self.stride, self.kernel, self.dilation))

    @property
    def is_pointwise(self) -> bool:
        """A 1x1 kernel without padding: a subsample followed by one matrix product."""
        return all(k == 1 for k in self.kernel) and all(p == (0, 0) for p in self.pads)

    @property
    def is_depthwise(self) -> bool:
        return self.groups > 1 and self.in_per_group == 1

    def output_shape(self) -> tuple[int, ...]:
        return (self.batch, self.out_channels, *self.out_size)

    def input_shape(self) -> tuple[int, ...]:
        return (self.batch, self.in_channels, *self.in_size)

    def macs(self) -> int:
        """Multiply-accumulates: ``N * prod(o) * C_out * (C_in / groups) * prod(k)``."""
        return self.batch * self.out_positions * self.out_channels * self.in_per_group * self.taps


def resolve_padding(
    padding: PaddingSpec, in_size: tuple[int, ...], kernel: tuple[int, ...],
    stride: tuple[int, ...], dilation: tuple[int, ...],
) -> tuple[tuple[int, int], ...]:
    """Any padding spec (int, per-axis, pairs, 'valid', 'same', 'same_lower') via arith."""
    return arith.padding_pairs(padding, in_size, kernel, stride, dilation)


def conv_geometry(
    x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: object, padding: PaddingSpec,
    dilation: object, groups: int,
) -> ConvGeometry:
    """Geometry of ``conv(x, w)``; raises ValueError naming the shapes when nothing fits."""
    ndim = len(x_shape) - 2
    in_size = tuple(x_shape[2:])
    kernel = tuple(w_shape[2:])
    strides = spatial_tuple("stride", stride, ndim, 1)
    dilations = spatial_tuple("dilation", dilation, ndim, 1)
    pads = resolve_padding(padding, in_size, kernel, strides, dilations)
    try:
        out = arith.conv_output_size(in_size, kernel, strides, pads, dilations)
    except ValueError as err:
        raise ValueError(f"{err} (x shape {tuple(x_shape)}, weight shape {tuple(w_shape)})") from None
    assert isinstance(out, tuple)
    return ConvGeometry(x_shape[0], x_shape[1], w_shape[0], groups, in_size, kernel, strides,
                        dilations, pads, out)


def transposed_geometry(
    x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: object, padding: PaddingSpec,
    output_padding: object, dilation: object, groups: int,
) -> ConvGeometry:
    """Geometry of the convolution whose input gradient is ``conv_transpose(x, w)``.

    The transposed conv maps ``x`` (the conv's *output*, ``C_in`` channels) to the conv's input
    of size ``arith.transposed_output_size(...)`` with ``C_out = w.shape[1] * groups`` channels.
    String padding ('same', 'same_lower') follows ONNX ConvTranspose: output ``i * s``, with the
    conv padding that maps it back to ``i`` (``arith.padding_pairs`` on the output size).
    """
    ndim = len(x_shape) - 2
    in_size = tuple(x_shape[2:])
    kernel = tuple(w_shape[2:])
    strides = spatial_tuple("stride", stride, ndim, 1)
    dilations = spatial_tuple("dilation", dilation, ndim, 1)
    out_pad = spatial_tuple("output_padding", output_padding, ndim, 0)
    try:
        size = arith.transposed_output_size(in_size, kernel, strides, padding, dilations, out_pad)
        assert isinstance(size, tuple)
        if isinstance(padding, str):
            pads = resolve_padding(padding, size, kernel, strides, dilations)
        else:
            pads = resolve_padding(padding, in_size, kernel, strides, dilations)
    except ValueError as err:
        raise ValueError(f"{err} (x shape {tuple(x_shape)}, weight shape {tuple(w_shape)})") from None
    return ConvGeometry(x_shape[0], w_shape[1] * groups, x_shape[1], groups, size, kernel,
                        strides, dilations, pads, in_size)
