"""Hypothesis strategies for random but valid convolution / pooling configurations.

Sizes are small (a few pixels, a few channels) so that thousands of configurations run in
seconds; every corner the issue names is reachable: stride > kernel (gaps), dilation with
stride, groups and depthwise, 1x1 stride 2, kernel == padded input, batch 1, odd sizes,
asymmetric and 'same' padding.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

from stridelab import arith
from stridelab.arith import PaddingSpec

Pairs = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class ConvCase:
    batch: int
    in_channels: int
    out_channels: int
    groups: int
    size: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: PaddingSpec  # what the user passes: int, per-axis ints, pairs or a string
    pads: Pairs  # the same, resolved by arith

    @property
    def ndim(self) -> int:
        return len(self.size)

    @property
    def symmetric(self) -> bool:
        return all(a == b for a, b in self.pads)


@st.composite
def conv_cases(draw: st.DrawFn, ndims: tuple[int, ...] = (1, 2, 2, 3), max_size: int = 9
               ) -> ConvCase:
    nd = draw(st.sampled_from(ndims))
    kind = draw(st.sampled_from(["dense", "dense", "grouped", "depthwise"]))
    groups = 1 if kind == "dense" else draw(st.integers(2, 3))
    cig = 1 if kind == "depthwise" else draw(st.integers(1, 3))
    cog = draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    pointwise = draw(st.integers(0, 5)) == 0
    if pointwise:
        kernel = (1,) * nd
    stride = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    mode = draw(st.sampled_from(["int", "axes", "pairs", "same", "same_lower", "valid"]))
    k_eff = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    padding: PaddingSpec
    if mode == "int":
        padding = draw(st.integers(0, 2))
    elif mode == "axes":
        padding = tuple(draw(st.integers(0, 3)) for _ in range(nd))
    elif mode == "pairs":
        padding = tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(nd))
    else:
        padding = mode
    size = []
    for axis in range(nd):
        extra = draw(st.integers(0, max_size))
        if padding in ("same", "same_lower"):
            size.append(max(1, extra))
            continue
        pb, pa = arith.padding_pairs(padding, (1,) * nd, kernel, stride, dilation)[axis]
        size.append(max(1, k_eff[axis] - pb - pa + extra))  # extra = 0: kernel == padded input
    pads = arith.padding_pairs(padding, tuple(size), kernel, stride, dilation)
    return ConvCase(draw(st.integers(1, 3)), groups * cig, groups * cog, groups, tuple(size),
                    kernel, stride, dilation, padding, pads)


@dataclass(frozen=True)
class TransposeCase:
    batch: int
    in_channels: int
    out_channels: int
    groups: int
    size: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: tuple[int, ...]
    output_padding: tuple[int, ...]


@st.composite
def transpose_cases(draw: st.DrawFn, ndims: tuple[int, ...] = (1, 2, 2, 3)) -> TransposeCase:
    nd = draw(st.sampled_from(ndims))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cig, cog = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    size = tuple(draw(st.integers(1, 6)) for _ in range(nd))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    padding = []
    for i, k, s, d, op in zip(size, kernel, stride, dilation, output_padding):
        full = (i - 1) * s + d * (k - 1) + 1 + op
        padding.append(draw(st.integers(0, min(3, (full - 1) // 2))))
    return TransposeCase(draw(st.integers(1, 3)), groups * cig, groups * cog, groups, size, kernel,
                         stride, dilation, tuple(padding), output_padding)


@dataclass(frozen=True)
class PoolCase:
    batch: int
    channels: int
    size: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...] | None
    dilation: tuple[int, ...]
    padding: tuple[int, ...]
    ceil_mode: bool

    @property
    def ndim(self) -> int:
        return len(self.size)


@st.composite
def pool_cases(draw: st.DrawFn, ndims: tuple[int, ...] = (1, 2, 2, 3), dilated: bool = True
               ) -> PoolCase:
    nd = draw(st.sampled_from(ndims))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    stride = None if draw(st.booleans()) else tuple(draw(st.integers(1, 4)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) if dilated else 1 for _ in range(nd))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)  # PyTorch: pad <= kernel / 2
    size = tuple(max(1, d * (k - 1) + 1 - 2 * p + draw(st.integers(0, 7)))
                 for k, d, p in zip(kernel, dilation, padding))
    return PoolCase(draw(st.integers(1, 2)), draw(st.integers(1, 3)), size, kernel, stride,
                    dilation, padding, draw(st.booleans()))
