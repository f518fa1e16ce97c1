"""The GEMM floor of a stridelab.ops call: its matrix products alone, at this machine's rate.

``record`` runs the call once with ``np.matmul`` wrapped, noting the shape and memory order of
every product. ``replay`` times exactly those products (same shapes, same transposes, operands
and results reused per thread as the engine reuses its buffers) the way the engine runs them:
a call that issues several products splits them over the engine's threads, each with
single-threaded BLAS; a call that issues one product leaves the threading to the BLAS. Gathering,
col2im additions and layout copies are left out, so ``replay`` time / torch time is the best
ratio any implementation built on this NumPy's GEMM can reach (the floor), and stridelab time /
replay time is what the engine loses on top of its GEMMs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from stridelab.ops._parallel import BLAS, run_workers, shared_counter


@dataclass(frozen=True)
class Product:
    """One ``np.matmul`` call: ``batch`` products ``a @ b``; ``*_t``: a transposed view."""

    batch: int
    a: tuple[int, int]
    b: tuple[int, int]
    a_t: bool
    b_t: bool
    dtype: str

    @property
    def flops(self) -> int:
        return 2 * self.batch * self.a[0] * self.a[1] * self.b[1]


def _transposed(m: np.ndarray) -> bool:
    return m.ndim == 2 and not m.flags.c_contiguous and m.flags.f_contiguous


@contextmanager
def _recording(products: list[Product]) -> Iterator[None]:
    real = np.matmul
    lock = threading.Lock()

    def counting(a, b, *args, **kwargs):  # type: ignore[no-untyped-def]
        a_, b_ = np.asarray(a), np.asarray(b)
        lead = np.broadcast_shapes(a_.shape[:-2], b_.shape[:-2])
        p = Product(int(np.prod(lead)) if lead else 1, (a_.shape[-2], a_.shape[-1]),
                    (b_.shape[-2], b_.shape[-1]), _transposed(a_), _transposed(b_), a_.dtype.str)
        with lock:
            products.append(p)
        return real(a, b, *args, **kwargs)

    np.matmul = counting  # type: ignore[assignment]
    try:
        yield
    finally:
        np.matmul = real  # type: ignore[assignment]


def record(call: Callable[[], object]) -> list[Product]:
    products: list[Product] = []
    with _recording(products):
        call()
    return products


def _operands(p: Product, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lead = (p.batch,) if p.batch > 1 else ()

    def make(shape: tuple[int, int], transposed: bool) -> np.ndarray:
        if transposed:
            return np.swapaxes(rng.standard_normal((*lead, *shape[::-1])).astype(p.dtype), -1, -2)
        return rng.standard_normal((*lead, *shape)).astype(p.dtype)
    out = np.empty((*lead, p.a[0], p.b[1]), dtype=p.dtype)
    return make(p.a, p.a_t), make(p.b, p.b_t), out


def replay(products: list[Product], threads: int) -> Callable[[], None]:
    """A function that runs ``products`` as the engine does (see the module docstring)."""
    rng = np.random.default_rng(0)
    if len(products) == 1:
        a, b, out = _operands(products[0], rng)

        def single() -> None:
            np.matmul(a, b, out=out)
        return single
    local = threading.local()

    def operands(p: Product) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cache: dict[Product, tuple[np.ndarray, np.ndarray, np.ndarray]] = local.__dict__
        if p not in cache:
            cache[p] = _operands(p, np.random.default_rng(len(cache)))
        return cache[p]

    def run() -> None:
        take = shared_counter()

        def worker() -> None:
            while (index := take()) < len(products):
                a, b, out = operands(products[index])
                np.matmul(a, b, out=out)

        with BLAS.single_threaded():
            run_workers(worker, min(threads, len(products)))

    return run


def gemm_flops(products: list[Product]) -> int:
    return sum(p.flops for p in products)
