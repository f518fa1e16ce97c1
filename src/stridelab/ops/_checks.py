"""Argument validation for :mod:`stridelab.ops`: arrays, dtypes, layouts and channel counts.

Every error names the argument and the shapes involved, and is a ``TypeError`` (wrong kind of
object or dtype) or a ``ValueError`` (wrong shape or value).
"""

from __future__ import annotations

import numpy as np

from stridelab.arith import check_int, per_axis

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
LAYOUTS = {3: "(N, C, L)", 4: "(N, C, H, W)", 5: "(N, C, D, H, W)"}


def check_array(name: str, value: object) -> np.ndarray:
    """``value`` as-is if it is a float32/float64 ndarray; TypeError otherwise."""
    if not isinstance(value, np.ndarray):
        raise TypeError(
            f"{name} must be a numpy.ndarray of float32 or float64, got {type(value).__name__}"
        )
    if value.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{name} must have dtype float32 or float64, got {value.dtype} (shape {value.shape})"
        )
    return value


def check_input(name: str, x: object) -> np.ndarray:
    """A batched channels-first input: 3-D, 4-D or 5-D ``(N, C, *spatial)``."""
    arr = check_array(name, x)
    if arr.ndim not in LAYOUTS:
        raise ValueError(
            f"{name} must be 3-D (N, C, L), 4-D (N, C, H, W) or 5-D (N, C, D, H, W); "
            f"got {arr.ndim}-D shape {arr.shape}"
        )
    if 0 in arr.shape:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    return arr


def check_pool_input(name: str, x: object, allow_int: bool) -> np.ndarray:
    """Like :func:`check_input`; with ``allow_int`` also any integer dtype (max pooling)."""
    if allow_int and isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.integer):
        if x.ndim not in LAYOUTS or 0 in x.shape:
            return check_input(name, x.astype(np.float64))  # raises the shape message
        return x
    return check_input(name, x)


def check_same_dtype(names: tuple[str, ...], arrays: tuple[np.ndarray, ...]) -> None:
    """All arrays share one dtype (no silent upcasts)."""
    dtypes = {a.dtype for a in arrays}
    if len(dtypes) > 1:
        desc = ", ".join(f"{n} {a.dtype} {a.shape}" for n, a in zip(names, arrays))
        raise TypeError(f"dtypes must match (no silent upcast): got {desc}")


def check_groups(groups: object) -> int:
    return check_int("groups", groups, 1)


def check_weight(x: np.ndarray, weight: object, groups: int, transposed: bool = False) -> np.ndarray:
    """Weight ``(C_out, C_in/groups, *k)`` (conv) or ``(C_in, C_out/groups, *k)`` (transposed)."""
    w = check_array("weight", weight)
    layout = "(C_in, C_out/groups, *kernel)" if transposed else "(C_out, C_in/groups, *kernel)"
    if w.ndim != x.ndim:
        raise ValueError(
            f"weight must be {x.ndim}-D {layout} to match x of shape {x.shape}; "
            f"got {w.ndim}-D shape {w.shape}"
        )
    if 0 in w.shape:
        raise ValueError(f"weight must not be empty, got shape {w.shape}")
    channels = x.shape[1]
    if channels % groups:
        raise ValueError(
            f"x channels ({channels}, x shape {x.shape}) must be divisible by groups={groups}"
        )
    if transposed:
        if w.shape[0] != channels:
            raise ValueError(
                f"weight.shape[0] must equal the channels of x for a transposed conv: weight "
                f"{w.shape} {layout}, x {x.shape}"
            )
    else:
        if w.shape[0] % groups:
            raise ValueError(
                f"weight.shape[0] (output channels, weight {w.shape}) must be divisible by "
                f"groups={groups}"
            )
        if w.shape[1] * groups != channels:
            raise ValueError(
                f"channel mismatch: x has {channels} channels (shape {x.shape}) but weight "
                f"{w.shape} {layout} with groups={groups} expects {w.shape[1] * groups}"
            )
    check_same_dtype(("x", "weight"), (x, w))
    return w


def check_bias(bias: object, channels: int, dtype: np.dtype) -> np.ndarray | None:
    if bias is None:
        return None
    b = check_array("bias", bias)
    if b.shape != (channels,):
        raise ValueError(f"bias must have shape ({channels},) (one per output channel), got {b.shape}")
    if b.dtype != dtype:
        raise TypeError(f"bias dtype {b.dtype} must match x dtype {dtype} (no silent upcast)")
    return b


def check_grad(name: str, grad: object, expected: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A gradient with exactly the forward output's shape and the input's dtype."""
    g = check_array(name, grad)
    if g.shape != tuple(expected):
        raise ValueError(f"{name} must have the forward output's shape {tuple(expected)}, got {g.shape}")
    if g.dtype != dtype:
        raise TypeError(f"{name} dtype {g.dtype} must match x dtype {dtype} (no silent upcast)")
    return g


def check_bool(name: str, value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


spatial_tuple = per_axis  # one int per spatial axis; messages name the argument
