"""Convolution and pooling layers whose padding may be ``"same"``, ``"same_lower"``, ``"valid"`` or
asymmetric ``(before, after)`` per axis, for any stride.

The classes subclass torch's own (``isinstance(m, torch.nn.Conv2d)`` holds, ``state_dict`` keys are
unchanged). ``m.padding`` keeps the padding *spec* in the form :func:`stridelab.arith.padding_pairs`
accepts: a string (``"same"``, ``"same_lower"``, ``"valid"``), a tuple of ints (symmetric, torch's
convention) or a tuple of ``(before, after)`` pairs. ``m.padding_for(input_size)`` resolves it.

How padding is applied (``zeros`` mode): the symmetric part ``min(before, after)`` of each axis is
folded into the convolution, and only the excess is padded explicitly with ``F.pad``. The pairs are
computed once at construction when they do not depend on the input size (numbers, ``"valid"``,
``"same"`` at stride 1) and per input size at run time otherwise (``"same"`` with stride > 1, whose
padding depends on ``i % s``). Other ``padding_mode`` values pad everything explicitly with that mode.
'same' follows TF / ONNX SAME_UPPER (odd pixel after); 'same_lower' is ONNX SAME_LOWER.

ONNX export (``torch.onnx.export``, both exporters) stays exact at every input size when height
and width are dynamic: a size-dependent 'same' layer becomes the ONNX op with ``auto_pad`` where
onnxruntime computes PyTorch's result, else a ``Pad`` whose amounts the graph computes from the
input's shape with :func:`stridelab.arith.same_total_padding` (see :mod:`stridelab.nn._export`).
A fixed-size export still gets plain numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from stridelab.arith import PaddingPair, padding_pairs, pool_output_size
from stridelab.arith._check import check_padding_string
from stridelab.nn._export import SameWindow, exporting, native_same, same_pad

PaddingArg = int | str | Sequence[int] | Sequence[Sequence[int]]
PadSplit = tuple[tuple[int, ...], list[int] | None]
PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]


def split_padding(pairs: Sequence[PaddingPair], fold: bool,
                  limit: Sequence[int] | None = None) -> PadSplit:
    """Split per-axis ``(before, after)`` pairs into the part folded into the op and ``F.pad`` args.

    With ``fold`` the symmetric part ``min(before, after)`` goes to the op, at most ``limit`` per
    axis (torch's pools accept at most ``kernel // 2``); otherwise everything is explicit. The
    ``F.pad`` list is ordered last axis first, or ``None`` when nothing is explicit.
    """
    caps = limit if limit is not None else [max(p) for p in pairs]
    folded = tuple(min(b, a, cap) if fold else 0 for (b, a), cap in zip(pairs, caps))
    explicit: list[int] = []
    for (b, a), f in zip(reversed(tuple(pairs)), reversed(folded)):
        explicit += [b - f, a - f]
    return folded, (explicit if any(explicit) else None)


class PaddingResolver:
    """Turns a padding spec into (folded, explicit) padding, statically when it can."""

    def __init__(self, padding: PaddingArg, kernel: tuple[int, ...], stride: tuple[int, ...],
                 dilation: tuple[int, ...], fold: bool, pool: bool = False) -> None:
        self.spec: Any = check_padding_string(padding) if isinstance(padding, str) else padding
        self.kernel, self.stride, self.dilation, self.fold = kernel, stride, dilation, fold
        self.fold_limit = tuple(k // 2 for k in kernel) if pool else None
        self.ndim = len(kernel)
        try:
            static: tuple[PaddingPair, ...] | None = padding_pairs(
                self.spec, None, kernel, stride, dilation)
        except ValueError:
            if not isinstance(self.spec, str):
                raise
            static = None  # 'same' with stride > 1: depends on the input size
        self.static_pairs = static
        self.static_split = (None if static is None
                             else split_padding(static, fold, self.fold_limit))

    @property
    def torch_padding(self) -> Any:
        """The spec in torch's vocabulary where possible (ints for symmetric pairs)."""
        if self.static_pairs is not None and not isinstance(self.spec, str):
            if all(b == a for b, a in self.static_pairs):
                return tuple(b for b, _ in self.static_pairs)
            return self.static_pairs
        return self.spec

    def pairs(self, size: Sequence[int]) -> tuple[PaddingPair, ...]:
        if self.static_pairs is not None:
            return self.static_pairs
        return padding_pairs(self.spec, tuple(int(s) for s in size), self.kernel, self.stride,
                             self.dilation)

    def resolve(self, x: Tensor) -> PadSplit:
        if self.static_split is not None:
            return self.static_split
        return split_padding(self.pairs(tuple(x.shape[-self.ndim:])), self.fold, self.fold_limit)

    def export_window(self, op_type: str, native_ok: bool,
                      attrs: tuple[tuple[str, Any], ...] = ()) -> SameWindow | None:
        """How to export a size-dependent 'same' padding (``None`` when the padding is static).

        ``native_ok`` is the caller's part of the ``auto_pad`` condition (zero padding, no
        ``ceil_mode``...); the resolver adds dilation 1 and ``kernel >= stride`` on every axis.
        """
        if self.static_pairs is not None:
            return None
        native = (native_ok and all(d == 1 for d in self.dilation)
                  and all(k >= s for k, s in zip(self.kernel, self.stride)))
        return SameWindow(op_type, "upper" if self.spec == "same" else "lower", self.kernel,
                          self.stride, self.dilation, native, attrs)


class _PaddedConvMixin:
    """Shared forward for Conv1d/2d/3d: explicit pad of the excess, then the folded conv."""

    _resolver: PaddingResolver
    _functional: Callable[..., Tensor]
    padding_mode: PaddingMode
    stride: Any
    dilation: Any
    groups: int

    def _setup(self, padding: PaddingArg) -> None:
        kernel = tuple(self.kernel_size)  # type: ignore[attr-defined]
        self._resolver = PaddingResolver(padding, kernel, tuple(self.stride),
                                         tuple(self.dilation), fold=self.padding_mode == "zeros")
        self.padding = self._resolver.torch_padding

    def padding_for(self, input_size: Sequence[int]) -> tuple[PaddingPair, ...]:
        """``(before, after)`` per spatial axis for an input of spatial size ``input_size``."""
        return self._resolver.pairs(input_size)

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if exporting():
            window = self._resolver.export_window(
                "Conv", self.padding_mode == "zeros", (("group", self.groups),))
            if window is not None:
                return self._export_forward(input, weight, bias, window)
        return self._eager_forward(input, weight, bias)

    def _export_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None,
                        window: SameWindow) -> Tensor:
        """Exact at every input size in ONNX: ``auto_pad`` or in-graph padding (see _export)."""
        if window.native:
            return native_same(input, window, self._eager_forward, (weight, bias))
        mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
        padded = same_pad(input, window, mode)
        return type(self)._functional(padded, weight, bias, self.stride, 0, self.dilation,
                                      self.groups)

    def _eager_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        folded, explicit = self._resolver.resolve(input)
        if explicit is not None:
            mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
            input = F.pad(input, explicit, mode=mode)
        return type(self)._functional(input, weight, bias, self.stride, folded, self.dilation,
                                      self.groups)


class Conv1d(_PaddedConvMixin, torch.nn.Conv1d):
    """:class:`torch.nn.Conv1d` with 'same' / 'same_lower' / 'valid' / (before, after) padding."""

    _functional = staticmethod(F.conv1d)

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int],
                 stride: int | tuple[int] = 1, padding: PaddingArg = 0,
                 dilation: int | tuple[int] = 1, groups: int = 1, bias: bool = True,
                 padding_mode: PaddingMode = "zeros", device: Any = None, dtype: Any = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, 0, dilation, groups,
                         bias, padding_mode, device, dtype)
        self._setup(padding)


class Conv2d(_PaddedConvMixin, torch.nn.Conv2d):
    """:class:`torch.nn.Conv2d` with 'same' / 'same_lower' / 'valid' / (before, after) padding.

    Example: ``Conv2d(3, 8, 3, stride=2, padding="same")`` gives ``ceil(H / 2) x ceil(W / 2)``
    outputs, padding (0, 1) on an even axis and (1, 1) on an odd one (TF 'SAME').
    """

    _functional = staticmethod(F.conv2d)

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: PaddingArg = 0,
                 dilation: int | tuple[int, int] = 1, groups: int = 1, bias: bool = True,
                 padding_mode: PaddingMode = "zeros", device: Any = None, dtype: Any = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, 0, dilation, groups,
                         bias, padding_mode, device, dtype)
        self._setup(padding)


class Conv3d(_PaddedConvMixin, torch.nn.Conv3d):
    """:class:`torch.nn.Conv3d` with 'same' / 'same_lower' / 'valid' / (before, after) padding."""

    _functional = staticmethod(F.conv3d)

    def __init__(self, in_channels: int, out_channels: int,
                 kernel_size: int | tuple[int, int, int], stride: int | tuple[int, int, int] = 1,
                 padding: PaddingArg = 0, dilation: int | tuple[int, int, int] = 1,
                 groups: int = 1, bias: bool = True, padding_mode: PaddingMode = "zeros",
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, 0, dilation, groups,
                         bias, padding_mode, device, dtype)
        self._setup(padding)


def _pair(name: str, value: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(value, int):
        if isinstance(value, bool):
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
        return (value, value)
    items = tuple(value)
    if len(items) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return (int(items[0]), int(items[1]))


def _keep_ceil_windows(output: Tensor, input: Tensor, resolver: PaddingResolver,
                       dilation: Sequence[int], ceil_mode: bool) -> Tensor:
    """Drop a ceil-mode window that starts in the explicit right padding.

    PyTorch keeps the last ceil-mode window unless it starts in *its own* padding; padding
    applied beforehand with ``F.pad`` looks like data to it. The exact size is
    :func:`stridelab.arith.pool_output_size` on the real input (as ONNX computes it).
    """
    if not ceil_mode or exporting():
        return output
    spatial = tuple(int(s) for s in input.shape[-resolver.ndim:])
    size = pool_output_size(spatial, resolver.kernel, resolver.stride, resolver.pairs(spatial),
                            tuple(dilation), ceil_mode=True, convention="onnx")
    sizes = size if isinstance(size, tuple) else (size,)
    for axis, n in enumerate(sizes):
        output = output.narrow(output.ndim - len(sizes) + axis, 0, n)
    return output


class MaxPool2d(torch.nn.MaxPool2d):
    """:class:`torch.nn.MaxPool2d` accepting the same padding specs as :class:`Conv2d`.

    Explicit padding uses ``-inf``, so padded positions never win (TF 'SAME' max pooling).
    ``return_indices`` is only allowed when the padding is symmetric (indices refer to the input).
    """

    def __init__(self, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] | None = None, padding: PaddingArg = 0,
                 dilation: int | tuple[int, int] = 1, return_indices: bool = False,
                 ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, 0, dilation, return_indices, ceil_mode)
        kernel = _pair("kernel_size", kernel_size)
        strides = kernel if stride is None else _pair("stride", stride)
        self._resolver = PaddingResolver(padding, kernel, strides, _pair("dilation", dilation),
                                         fold=True, pool=True)
        self.padding = self._resolver.torch_padding
        split = self._resolver.static_split
        if return_indices and (split is None or split[1] is not None):
            raise ValueError("return_indices=True needs symmetric padding (int or per-axis ints); "
                             f"got padding={padding!r}")

    def padding_for(self, input_size: Sequence[int]) -> tuple[PaddingPair, ...]:
        """``(before, after)`` per spatial axis for an input of spatial size ``input_size``."""
        return self._resolver.pairs(input_size)

    def forward(self, input: Tensor) -> Any:
        if exporting():
            window = self._resolver.export_window("MaxPool", not self.ceil_mode)
            if window is not None:
                if window.native:
                    return native_same(input, window, self._eager_forward)
                padded = same_pad(input, window, "constant", float("-inf"))
                return F.max_pool2d(padded, self.kernel_size, self.stride, 0, self.dilation,
                                    ceil_mode=self.ceil_mode)
        return self._eager_forward(input)

    def _eager_forward(self, input: Tensor) -> Any:
        folded, explicit = self._resolver.resolve(input)
        if explicit is None:
            return F.max_pool2d(  # type: ignore[call-overload]
                input, self.kernel_size, self.stride, folded, self.dilation,
                ceil_mode=self.ceil_mode, return_indices=self.return_indices)
        padded = F.pad(input, explicit, mode="constant", value=float("-inf"))
        output = F.max_pool2d(padded, self.kernel_size, self.stride, folded, self.dilation,
                              ceil_mode=self.ceil_mode)
        return _keep_ceil_windows(output, input, self._resolver, _pair("dilation", self.dilation),
                                  self.ceil_mode)


class AvgPool2d(torch.nn.AvgPool2d):
    """:class:`torch.nn.AvgPool2d` accepting the same padding specs as :class:`Conv2d`.

    ``count_include_pad=False`` averages over real pixels only (TF 'SAME' average pooling), also
    for the explicitly padded part.
    """

    def __init__(self, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] | None = None, padding: PaddingArg = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None) -> None:
        super().__init__(kernel_size, stride, 0, ceil_mode, count_include_pad, divisor_override)
        kernel = _pair("kernel_size", kernel_size)
        strides = kernel if stride is None else _pair("stride", stride)
        self._resolver = PaddingResolver(padding, kernel, strides, (1, 1), fold=True, pool=True)
        self.padding = self._resolver.torch_padding

    def padding_for(self, input_size: Sequence[int]) -> tuple[PaddingPair, ...]:
        """``(before, after)`` per spatial axis for an input of spatial size ``input_size``."""
        return self._resolver.pairs(input_size)

    def _pool(self, x: Tensor, folded: tuple[int, ...], include: bool) -> Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, folded, self.ceil_mode, include,
                            self.divisor_override)

    def forward(self, input: Tensor) -> Tensor:
        if exporting():
            native_ok = not self.ceil_mode and self.divisor_override is None
            window = self._resolver.export_window(
                "AveragePool", native_ok, (("count_include_pad", int(self.count_include_pad)),))
            if window is not None:
                return self._export_forward(input, window)
        return self._eager_forward(input)

    def _export_forward(self, input: Tensor, window: SameWindow) -> Tensor:
        """Exact at every input size in ONNX: ``auto_pad`` or in-graph padding (see _export)."""
        if window.native:
            return native_same(input, window, self._eager_forward)
        padded = same_pad(input, window)
        if self.divisor_override is not None:
            return self._window_sum(padded) / self.divisor_override
        if self.count_include_pad:
            return self._pool(padded, (0, 0), True)
        ones = same_pad(torch.ones_like(input[:1, :1]), window)
        return self._pool(padded, (0, 0), True) / self._pool(ones, (0, 0), True)

    def _window_sum(self, padded: Tensor) -> Tensor:
        """Window sums of a padded input (every window full): mean times the window size. The
        legacy exporter drops ``divisor_override`` from ``AveragePool``, so it is applied here."""
        if self.ceil_mode:
            raise ValueError("AvgPool2d with padding='same', divisor_override and ceil_mode=True "
                             "cannot be exported exactly to ONNX: set ceil_mode=False or "
                             "divisor_override=None")
        kernel = self._resolver.kernel
        mean = F.avg_pool2d(padded, kernel, self.stride, 0, False, True, None)
        return mean * float(kernel[0] * kernel[1])

    def _eager_forward(self, input: Tensor) -> Tensor:
        folded, explicit = self._resolver.resolve(input)
        if explicit is None:
            return self._pool(input, folded, self.count_include_pad)
        padded = F.pad(input, explicit)
        if self.count_include_pad or self.divisor_override is not None:
            output = self._pool(padded, folded, True)
        else:
            # Average over real pixels: pool the data and a mask of ones the same way, then divide.
            ones = F.pad(torch.ones_like(input[:1, :1]), explicit)
            output = self._pool(padded, folded, True) / self._pool(ones, folded, True)
        return _keep_ceil_windows(output, input, self._resolver, (1, 1), self.ceil_mode)
