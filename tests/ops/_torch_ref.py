"""PyTorch reference values (outputs and autograd gradients) for the property tests."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from tests.ops._configs import ConvCase, PoolCase, TransposeCase

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


Fn = TypeVar("Fn", bound=Callable[..., tuple[np.ndarray, ...]])


def pytest_warns_ignored(func: Fn) -> Fn:
    """PyTorch warns that padding='same' with an even kernel copies the input; that is fine."""
    def wrapper(*args: object) -> tuple[np.ndarray, ...]:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Using padding='same'")
            return func(*args)
    return wrapper  # type: ignore[return-value]


def assert_close(actual: np.ndarray, expected: np.ndarray, rtol: float, what: str) -> None:
    """``|actual - expected| <= rtol * max|expected|`` everywhere, same shape and dtype."""
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    scale = max(float(np.max(np.abs(expected), initial=0.0)), 1e-30)
    err = float(np.max(np.abs(actual - expected), initial=0.0))
    assert err <= rtol * scale, f"{what}: max error {err:.3g} > {rtol:g} * {scale:.3g}"


def _leaf(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(a, requires_grad=True)


def _torch_padding(case: ConvCase, xt: torch.Tensor) -> tuple[torch.Tensor, object]:
    """Symmetric padding goes to the conv; asymmetric through F.pad (as users do in PyTorch)."""
    if case.padding == "same" and all(s == 1 for s in case.stride):
        return xt, "same"  # PyTorch's own 'same' (stride 1 only): an independent check
    if case.symmetric:
        return xt, tuple(p for p, _ in case.pads)
    flat = [v for pair in reversed(case.pads) for v in pair]
    return F.pad(xt, flat), 0


@pytest_warns_ignored
def conv(case: ConvCase, x: np.ndarray, w: np.ndarray, b: np.ndarray, g: np.ndarray | None
         ) -> tuple[np.ndarray, ...]:
    xt, wt, bt = _leaf(x), _leaf(w), _leaf(b)
    xin, padding = _torch_padding(case, xt)
    y = CONV[case.ndim](xin, wt, bt, case.stride, padding, case.dilation, case.groups)
    if g is None:
        return (y.detach().numpy(),)
    y.backward(torch.tensor(g))
    assert xt.grad is not None and wt.grad is not None and bt.grad is not None
    return y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()


def conv_transpose(case: TransposeCase, x: np.ndarray, w: np.ndarray, b: np.ndarray,
                   g: np.ndarray | None) -> tuple[np.ndarray, ...]:
    xt, wt, bt = _leaf(x), _leaf(w), _leaf(b)
    y = CONV_T[len(case.size)](xt, wt, bt, case.stride, case.padding, case.output_padding,
                               case.groups, case.dilation)
    if g is None:
        return (y.detach().numpy(),)
    y.backward(torch.tensor(g))
    assert xt.grad is not None and wt.grad is not None and bt.grad is not None
    return y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()


def max_pool(case: PoolCase, x: np.ndarray, g: np.ndarray | None) -> tuple[np.ndarray, ...]:
    xt = _leaf(x)
    y, idx = MAX_POOL[case.ndim](xt, case.kernel, case.stride, case.padding, case.dilation,
                                 ceil_mode=case.ceil_mode, return_indices=True)
    if g is None:
        return y.detach().numpy(), idx.numpy()
    y.backward(torch.tensor(g))
    assert xt.grad is not None
    return y.detach().numpy(), idx.numpy(), xt.grad.numpy()


def avg_pool(case: PoolCase, x: np.ndarray, include_pad: bool, g: np.ndarray | None
             ) -> tuple[np.ndarray, ...]:
    xt = _leaf(x)
    y = AVG_POOL[case.ndim](xt, case.kernel, case.stride, case.padding, case.ceil_mode,
                            include_pad)
    if g is None:
        return (y.detach().numpy(),)
    y.backward(torch.tensor(g))
    assert xt.grad is not None
    return y.detach().numpy(), xt.grad.numpy()
