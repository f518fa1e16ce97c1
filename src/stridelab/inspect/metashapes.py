"""Results of common operators on meta tensors without running their meta kernels.

Many of PyTorch's meta kernels are Python reference implementations: on meta tensors a layer
norm costs about 3 ms, a batch norm, GELU or softmax about 2 ms, an ``addmm`` 1 ms, while the
result is fully determined by a few lines of shape logic. :func:`meta_result` gives that result
(empty meta tensors with the shapes, strides and dtypes the kernel would give) for the
operators below, and ``None`` for any case it does not cover exactly, where the caller runs the
kernel. The rules cover floating dtypes, and dense inputs only (contiguous, or channels-last
for 4-d tensors) where the output's layout follows the input's;
``tests/inspect/test_metashapes.py`` checks every rule against the real kernel over shapes,
layouts and dtypes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

_aten = torch.ops.aten
_LOW_PRECISION = (torch.float16, torch.bfloat16)
Rule = Callable[[tuple[Any, ...], dict[str, Any]], Any]


def _accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype statistics are kept in: float32 for half / bfloat16, else the input's."""
    return torch.float32 if dtype in _LOW_PRECISION else dtype


def _compact_strides(shape: Sequence[int], order: Sequence[int]) -> tuple[int, ...]:
    """Strides of a dense tensor of ``shape`` whose dimensions are laid out in ``order``
    (outermost first), as ``torch.empty`` gives them (a size-1 dimension counts as size 1)."""
    strides = [0] * len(shape)
    step = 1
    for dim in reversed(order):
        strides[dim] = step
        step *= max(shape[dim], 1)
    return tuple(strides)


def _layout(value: object) -> torch.memory_format | None:
    """The memory format of a floating meta tensor whose strides are exactly those of a fresh
    contiguous (or 4-d channels-last) tensor; None for any other tensor or layout."""
    if not (isinstance(value, torch.Tensor) and value.device.type == "meta"
            and value.dtype.is_floating_point and not value.requires_grad):
        return None
    shape, strides = tuple(value.shape), value.stride()
    if strides == _compact_strides(shape, range(len(shape))):
        return torch.contiguous_format
    if len(shape) == 4 and strides == _compact_strides(shape, (0, 2, 3, 1)):
        return torch.channels_last
    return None


def _dense_float(value: object) -> bool:
    return _layout(value) is not None


def _float(value: object) -> bool:
    """A floating meta tensor in any layout (for operators whose output is always contiguous),
    except one that PyTorch calls contiguous with odd strides on size-1 dimensions (kernels that
    call ``.contiguous()`` keep those strides)."""
    return (isinstance(value, torch.Tensor) and value.device.type == "meta"
            and value.dtype.is_floating_point and not value.requires_grad
            and (not value.is_contiguous() or _layout(value) is torch.contiguous_format))


def _like(t: torch.Tensor) -> torch.Tensor:
    """A fresh tensor of ``t``'s shape, dtype and memory format (``t`` passed :func:`_layout`)."""
    return torch.empty(tuple(t.shape), dtype=t.dtype, device="meta", memory_format=_layout(t)
                       or torch.contiguous_format)


def _contiguous(shape: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
    return torch.empty(tuple(shape), dtype=dtype, device="meta")


def _batch_norm_eval(x: Any, running_mean: Any, running_var: Any) -> Any:
    if not (_dense_float(x) and x.dim() >= 2 and isinstance(running_mean, torch.Tensor)
            and isinstance(running_var, torch.Tensor)):
        return None
    stats = _accumulation_dtype(x.dtype)
    channels = x.shape[1]
    return _like(x), _contiguous((channels,), stats), _contiguous((channels,), stats)


def _native_batch_norm(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``native_batch_norm(input, weight, bias, running_mean, running_var, training, ...)`` in
    eval mode: the output keeps the input's layout; per-channel saved statistics."""
    if kwargs or len(args) != 8 or args[5] is not False:
        return None
    return _batch_norm_eval(args[0], args[3], args[4])


def _batch_norm_no_training(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``_native_batch_norm_legit_no_training(input, weight, bias, running_mean, running_var,
    momentum, eps)``."""
    if kwargs or len(args) != 7:
        return None
    return _batch_norm_eval(args[0], args[3], args[4])


def _layer_norm(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``native_layer_norm(input, normalized_shape, weight, bias, eps)``: a contiguous output
    whatever the input's layout; mean and reciprocal std of shape ``input.shape[:-k] + (1,) * k``.
    """
    if kwargs or len(args) != 5 or not _float(args[0]):
        return None
    x, normalized = args[0], list(args[1])
    kept = x.dim() - len(normalized)
    if not normalized or kept < 0 or list(x.shape[kept:]) != normalized:
        return None
    stats_shape = (*x.shape[:kept], *([1] * len(normalized)))
    stats = _accumulation_dtype(x.dtype)
    return (_contiguous(x.shape, x.dtype), _contiguous(stats_shape, stats),
            _contiguous(stats_shape, stats))


def _group_norm(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``native_group_norm(input, weight, bias, N, C, HxW, group, eps)`` on a contiguous input:
    a contiguous output; statistics of shape (N, group) in the input's dtype. (On channels-last
    input the kernel's strides of size-1 dimensions differ: left to the kernel.)"""
    if kwargs or len(args) != 8 or _layout(args[0]) is not torch.contiguous_format:
        return None
    x, batch, groups = args[0], args[3], args[6]
    if not (isinstance(batch, int) and isinstance(groups, int) and x.dim() >= 2
            and batch == x.shape[0] and groups > 0):
        return None
    return _like(x), _contiguous((batch, groups), x.dtype), _contiguous((batch, groups), x.dtype)


def _softmax(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``_softmax`` / ``_log_softmax(self, dim, half_to_float)``: a contiguous output whatever the
    input's layout."""
    if kwargs or len(args) != 3 or not _float(args[0]):
        return None
    x, half_to_float = args[0], args[2]
    if half_to_float is True and x.dtype in _LOW_PRECISION:
        return _contiguous(x.shape, torch.float32)
    return _contiguous(x.shape, x.dtype) if half_to_float is False else None


def _safe_softmax(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``_safe_softmax(self, dim, dtype=None)``: a contiguous output."""
    dtype = kwargs.get("dtype", args[2] if len(args) > 2 else None)
    if set(kwargs) - {"dtype"} or dtype is not None or not _float(args[0]):
        return None
    return _contiguous(args[0].shape, args[0].dtype)


def _same_layout(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A one-input element-wise operator (activations): the output keeps the input's layout."""
    if len(args) < 1 or not _dense_float(args[0]):
        return None
    extra = [*args[1:], *kwargs.values()]
    if any(isinstance(value, torch.Tensor) for value in extra):
        return None
    return _like(args[0])


def _binary(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``add / sub / mul / div (Tensor)`` on two tensors of one shape, layout and dtype, or a
    tensor and a Python number: the output is laid out as the input."""
    if len(args) != 2 or set(kwargs) - {"alpha"} or not _dense_float(args[0]):
        return None
    first, second = args
    if isinstance(second, (int, float)) and not isinstance(second, bool):
        return _like(first)
    if (_dense_float(second) and second.shape == first.shape
            and second.stride() == first.stride() and second.dtype == first.dtype):
        return _like(first)
    return None


def _binary_inplace(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``add_ / sub_ / mul_ / div_`` and in-place activations on a dense tensor with a number or a
    tensor of the same shape and dtype: ``self``, unchanged in shape and layout."""
    if not args or set(kwargs) - {"alpha"} or not _dense_float(args[0]):
        return None
    for other in args[1:]:
        if isinstance(other, torch.Tensor):
            if not (other.device.type == "meta" and other.shape == args[0].shape
                    and other.dtype == args[0].dtype):
                return None
        elif not isinstance(other, (int, float)) or isinstance(other, bool):
            return None
    return args[0]


def _roll(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``roll(self, shifts, dims)``: a contiguous output whatever the input's layout."""
    if kwargs or not args or not _float(args[0]):
        return None
    return _contiguous(args[0].shape, args[0].dtype)


def _addmm(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``addmm(bias, mat1, mat2, beta=1, alpha=1)``: a contiguous (rows of mat1, columns of
    mat2) matrix, all three operands of one floating dtype."""
    if set(kwargs) - {"beta", "alpha"} or len(args) != 3:
        return None
    bias, left, right = args
    if not all(_float(t) for t in args):
        return None
    if not (left.dim() == 2 and right.dim() == 2 and left.shape[1] == right.shape[0]
            and bias.dim() <= 2 and left.dtype.is_floating_point
            and left.dtype == right.dtype == bias.dtype):
        return None
    rows, columns = left.shape[0], right.shape[1]
    for have, want in zip(reversed(tuple(bias.shape)), (columns, rows)):
        if have not in (1, want):  # the bias must broadcast to (rows, columns)
            return None
    return _contiguous((rows, columns), left.dtype)


_UNARY = ("gelu", "relu", "sigmoid", "silu", "hardswish", "hardsigmoid", "tanh", "mish",
          "elu", "leaky_relu", "hardtanh", "erf", "exp", "neg", "abs", "sqrt", "rsqrt")

RULES: dict[Any, Rule] = {
    _aten.native_batch_norm.default: _native_batch_norm,
    _aten._native_batch_norm_legit_no_training.default: _batch_norm_no_training,
    _aten.native_layer_norm.default: _layer_norm,
    _aten.native_group_norm.default: _group_norm,
    _aten._softmax.default: _softmax,
    _aten._log_softmax.default: _softmax,
    _aten._safe_softmax.default: _safe_softmax,
    _aten.roll.default: _roll,
    _aten.addmm.default: _addmm,
    **{getattr(_aten, name).Tensor: _binary for name in ("add", "sub", "mul", "div")},
    **{getattr(_aten, name).Scalar: _binary for name in ("add", "sub", "mul", "div")},
    **{getattr(_aten, name + "_").Tensor: _binary_inplace for name in ("add", "sub", "mul", "div")},
    **{getattr(_aten, name + "_").Scalar: _binary_inplace
       for name in ("add", "sub", "mul", "div")},
    **{getattr(_aten, name + "_").default: _binary_inplace
       for name in ("relu", "sigmoid", "silu", "hardswish", "hardsigmoid", "tanh", "mish")},
    **{getattr(_aten, name).default: _same_layout for name in _UNARY},
}


def meta_result(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """What ``func(*args, **kwargs)`` returns on meta tensors, or None where no rule applies
    (then run the kernel)."""
    rule = RULES.get(func)
    return rule(args, kwargs) if rule is not None else None
