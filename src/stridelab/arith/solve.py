"""The inverse problem: which (kernel, stride, padding, dilation) turn one size into another."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from stridelab.arith._check import PaddingPair, check_int, per_axis
from stridelab.arith.sizes import conv_output_size, dropped_pixels, spatial_ndim


@dataclass(frozen=True, order=False)
class Solution:
    """A convolution reaching the target size; ``dropped`` counts real input pixels never read."""

    kernel: int
    stride: int
    padding: PaddingPair
    dilation: int
    output: int
    symmetric: bool
    dropped: int

    def sort_key(self) -> tuple[int, int, int, int, int, int]:
        """Best first: no dropped pixels, symmetric padding, smallest kernel, then the rest."""
        return (self.dropped > 0, not self.symmetric, self.kernel, self.stride,
                self.padding[0] + self.padding[1], self.dilation)

    def to_dict(self) -> dict[str, object]:
        return {"kernel": self.kernel, "stride": self.stride, "padding": list(self.padding),
                "dilation": self.dilation, "output": self.output, "symmetric": self.symmetric,
                "dropped": self.dropped}


def _check_choices(name: str, values: Iterable[int]) -> tuple[int, ...]:
    items = tuple(values)
    if not items:
        raise ValueError(f"{name} must list at least one int >= 1")
    return tuple(check_int(f"{name} entry", v, 1) for v in items)


def _solve_axis(size: int, target: int, kernels: tuple[int, ...], strides: tuple[int, ...],
                dilations: tuple[int, ...], max_padding: int | None) -> list[Solution]:
    found: list[Solution] = []
    for kernel in kernels:
        for dilation in dilations:
            k_eff = dilation * (kernel - 1) + 1
            limit = k_eff - 1 if max_padding is None else max_padding
            for stride in strides:
                for total in range(0, 2 * limit + 1):
                    pad = (total // 2, total - total // 2)  # odd pixel after, as TF 'SAME'
                    if pad[1] > limit or size + total < k_eff:
                        continue
                    if conv_output_size(size, kernel, stride, pad, dilation) != target:
                        continue
                    dropped = dropped_pixels(size, kernel, stride, pad, dilation)
                    assert isinstance(dropped, int)
                    found.append(Solution(kernel, stride, pad, dilation, target,
                                          pad[0] == pad[1], dropped))
    return sorted(found, key=Solution.sort_key)


def solve(
    size: int | Sequence[int],
    target: int | Sequence[int],
    kernels: Iterable[int] = (1, 2, 3, 5, 7),
    strides: Iterable[int] = (1, 2, 3, 4),
    dilations: Iterable[int] = (1,),
    max_padding: int | None = None,
) -> list[Solution] | tuple[list[Solution], ...]:
    """Every (kernel, stride, padding, dilation) whose convolution maps ``size`` to ``target``.

    Padding runs over every total from 0 to ``2 * max_padding`` (default ``k_eff - 1`` per side:
    more would create windows made only of padding); an odd total is split TF-style, the odd pixel
    after. Results are sorted best first: no dropped pixels, symmetric padding, smallest kernel,
    smallest stride, least padding. A tuple ``size`` solves each axis independently.
    """
    ndim = spatial_ndim(size, target)
    sizes = per_axis("size", size, ndim, 1)
    targets = per_axis("target", target, ndim, 1)
    ks = _check_choices("kernels", kernels)
    ss = _check_choices("strides", strides)
    ds = _check_choices("dilations", dilations)
    if max_padding is not None:
        check_int("max_padding", max_padding, 0)
    answers = tuple(_solve_axis(i, o, ks, ss, ds, max_padding) for i, o in zip(sizes, targets))
    if ndim == 1 and not isinstance(size, (tuple, list)):
        return answers[0]
    return answers
