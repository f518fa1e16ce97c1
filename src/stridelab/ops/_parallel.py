"""Threads for :mod:`stridelab.ops`: how many, one shared pool, single-threaded BLAS in workers.

How many threads a call uses, first match wins:

1. the ``threads=`` argument of :func:`stridelab.ops.conv` / ``conv_backward``;
2. the environment variable ``STRIDELAB_NUM_THREADS`` (a positive integer);
3. what NumPy's BLAS is currently allowed (``threadpoolctl``; so ``threadpool_limits(1)`` and
   ``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` are respected), at most the cores this process
   may run on.

Chunked work (patch gathering + GEMM) is split over that many threads, each calling BLAS
single-threaded: while such a section runs, NumPy's BLAS is limited to one thread and restored
afterwards (reference-counted, so concurrent calls from several user threads are safe). Other
BLAS calls keep the BLAS's own threading.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

ENV_VAR = "STRIDELAB_NUM_THREADS"
_MIN_PARALLEL_BYTES = 1 << 20

_SCOPE: ContextVar[int | None] = ContextVar("stridelab_ops_threads", default=None)
_LOCK = threading.Lock()
_POOL: ThreadPoolExecutor | None = None
_POOL_SIZE = 0


@lru_cache(maxsize=1)
def cores() -> int:
    """CPU cores this process may run on (read once)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def check_threads(name: str, value: object) -> int | None:
    """``None`` or a positive int; TypeError / ValueError naming ``name`` otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be None or a positive int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be None or a positive int (>= 1), got {value}")
    return int(value)


def env_threads() -> int | None:
    """``STRIDELAB_NUM_THREADS`` as a positive int, None when unset or empty."""
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{ENV_VAR} must be a positive integer, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{ENV_VAR} must be a positive integer (>= 1), got {raw!r}")
    return value


class _Blas:
    """NumPy's BLAS as seen by threadpoolctl (found once), and the single-thread guard."""

    def __init__(self) -> None:
        self._libs: list[Any] | None = None
        self._depth = 0
        self._saved: list[int] = []
        self._lock = threading.Lock()

    def libs(self) -> list[Any]:
        if self._libs is None:
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError:  # pragma: no cover - threadpoolctl is a dependency
                self._libs = []
                return self._libs
            blas = ThreadpoolController().select(user_api="blas").lib_controllers
            numpy_dir = Path(np.__file__).resolve().parent
            mine = [lib for lib in blas if _is_numpys(lib.filepath, numpy_dir)]
            self._libs = mine or list(blas)
        return self._libs

    def threads(self) -> int | None:
        """Threads the BLAS is allowed (as before any guard of ours), None if unknown."""
        with self._lock:
            if self._depth:
                return max(self._saved) if self._saved else None
        counts = [lib.num_threads for lib in self.libs()]
        return max(counts) if counts else None

    @contextmanager
    def single_threaded(self) -> Iterator[None]:
        libs = self.libs()
        with self._lock:
            if self._depth == 0:
                self._saved = [lib.num_threads for lib in libs]
                for lib in libs:
                    _setter(lib)(1)
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    for lib, count in zip(libs, self._saved):
                        _setter(lib)(count)


@lru_cache(maxsize=8)
def _setter(lib: Any) -> Callable[[int], object]:
    """How to set ``lib``'s thread count from *any* thread.

    Recent OpenBLAS builds ignore ``openblas_set_num_threads`` (threadpoolctl's setter) unless it
    is called from the thread that loaded the library; ``openblas_set_num_threads_local``
    changes the same count from any thread, so it is preferred when exported.
    """
    if getattr(lib, "internal_api", None) == "openblas":
        try:
            import ctypes

            dll = getattr(lib, "dynlib", None) or ctypes.CDLL(lib.filepath)
            local = dll.openblas_set_num_threads_local
            local.argtypes, local.restype = [ctypes.c_int], ctypes.c_int
            return local
        except (OSError, AttributeError):
            pass
    return lib.set_num_threads  # type: ignore[no-any-return]


def _is_numpys(filepath: str, numpy_dir: Path) -> bool:
    path = Path(filepath).resolve()
    return numpy_dir in path.parents or path.parent.name in ("numpy.libs", ".dylibs")


BLAS = _Blas()


def current_threads() -> int:
    """Threads for the running call: ``threads=``, then the env var, then the BLAS setting."""
    scoped = _SCOPE.get()
    if scoped is not None:
        return scoped
    from_env = env_threads()
    if from_env is not None:
        return from_env
    allowed = BLAS.threads()
    return max(1, min(allowed or cores(), cores()))


@contextmanager
def thread_scope(threads: int | None) -> Iterator[int]:
    """Fix the thread count of everything inside (per calling thread / context)."""
    count = threads if threads is not None else current_threads()
    token = _SCOPE.set(count)
    try:
        yield count
    finally:
        _SCOPE.reset(token)


def _pool(size: int) -> ThreadPoolExecutor:
    global _POOL, _POOL_SIZE
    with _LOCK:
        if _POOL is None or _POOL_SIZE < size:
            old = _POOL
            _POOL = ThreadPoolExecutor(max_workers=size, thread_name_prefix="stridelab-ops")
            _POOL_SIZE = size
            if old is not None:
                old.shutdown(wait=False)
        return _POOL


def run_workers(worker: Callable[[], None], count: int) -> None:
    """Run ``worker()`` on ``count`` threads (the caller is one of them) and wait for all.

    Workers share their work through a counter they advance themselves (see
    :func:`shared_counter`); the first exception is re-raised after every worker stopped.
    """
    if count <= 1:
        worker()
        return
    futures: list[Future[None]] = [_pool(count - 1).submit(worker) for _ in range(count - 1)]
    error: BaseException | None = None
    try:
        worker()
    except BaseException as err:  # re-raised below, after the other workers finished
        error = err
    for future in futures:
        try:
            future.result()
        except BaseException as err:
            error = error or err
    if error is not None:
        raise error


def run_pieces(work: Callable[[int], None], count: int) -> None:
    """``work(i)`` for ``i < count`` over the call's threads, BLAS single-threaded in each.

    Always single-threaded BLAS, even for one piece or one thread, so that a product computes
    the same bits whatever the thread count.
    """
    threads = min(current_threads(), count)
    take = shared_counter()

    def worker() -> None:
        while (index := take()) < count:
            work(index)

    with BLAS.single_threaded():
        run_workers(worker, threads)


def shared_counter() -> Callable[[], int]:
    """A thread-safe ``next index`` function (CPython's ``itertools.count`` is atomic)."""
    counter = itertools.count()
    return counter.__next__


def parallel(func: Callable[[slice], None], length: int, nbytes: int) -> None:
    """Run ``func(chunk)`` over ``range(length)`` split in contiguous chunks, one per thread.

    NumPy releases the GIL inside copies and ufunc loops, so threads give real parallelism for
    memory-bound work. Small jobs run inline.
    """
    if nbytes < _MIN_PARALLEL_BYTES or length <= 1:
        func(slice(0, length))
        return
    n = min(current_threads(), length)
    if n <= 1:
        func(slice(0, length))
        return
    bounds = [length * i // n for i in range(n + 1)]
    parts = [slice(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]
    take = shared_counter()

    def worker() -> None:
        index = take()
        if index < len(parts):
            func(parts[index])

    run_workers(worker, len(parts))
