"""How a multi-threaded stridelab.ops call spends its threads: serial part and critical path.

Every parallel section of the engine goes through :func:`stridelab.ops._parallel.run_workers`;
wrapped here, each worker's *thread CPU time* is recorded per section. For one call:

* ``serial``: the calling thread's CPU time outside the parallel sections (argument checks,
  zero-filled buffers, the final sums, layout bookkeeping): what no second thread can shorten;
* ``critical path``: ``serial`` + the slowest worker of every section: the call's time on an
  idle machine with one core per thread and no shared-memory slowdown;
* ``total CPU``: all threads' CPU time; ``total CPU / critical path`` is the speed-up the work
  split allows (at most the thread count).

CPU times are hardly disturbed by other processes (unlike wall time on a shared machine), so the
ratios of these columns are what the code allows; what the machine then gives (memory bandwidth
shared by the threads, other processes) is the difference to the wall times of the first table.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial

import numpy as np

from _ops_runners import BATCH, LAYERS
from stridelab import ops
from stridelab.ops import _parallel

Section = tuple[list[float], float]  # worker CPU seconds, the caller's CPU seconds inside


@contextmanager
def _sections(found: list[Section]) -> Iterator[None]:
    real = _parallel.run_workers

    def recording(worker: Callable[[], None], count: int) -> None:
        spent: list[float] = []
        lock = threading.Lock()

        def timed() -> None:
            start = time.thread_time()
            try:
                worker()
            finally:
                with lock:
                    spent.append(time.thread_time() - start)

        start = time.thread_time()
        real(timed, count)
        found.append((spent, time.thread_time() - start))

    _parallel.run_workers = recording
    try:
        yield
    finally:
        _parallel.run_workers = real


def split(call: Callable[[], object], repeats: int) -> dict[str, float]:
    """Fastest of ``repeats`` runs (by critical path): seconds of serial, critical path, total."""
    call()
    best: dict[str, float] = {}
    for _ in range(repeats):
        found: list[Section] = []
        with _sections(found):
            start = time.thread_time()
            call()
            caller = time.thread_time() - start
        serial = caller - sum(inside for _, inside in found)
        path = serial + sum(max(spent, default=0.0) for spent, _ in found)
        total = serial + sum(sum(spent) for spent, _ in found)
        if not best or path < best["path"]:
            best = {"serial": serial, "path": path, "total": total, "sections": len(found)}
    return best


def thread_table(threads: int, repeats: int) -> str:
    """Markdown table: every layer of bench_ops.py at both strides, fwd and bwd, ``threads``."""
    lines = ["| layer | stride | pass | serial ms | critical path ms | total CPU ms | "
             "total / path | parallel sections | path s1/s2 |", "|---|---|---|" + "---|" * 6]
    rng = np.random.default_rng(0)
    for layer in LAYERS:
        x = rng.standard_normal((BATCH, layer.in_channels, layer.size, layer.size), np.float32)
        w = rng.standard_normal((layer.out_channels, layer.in_channels, layer.kernel,
                                 layer.kernel), np.float32) * np.float32(0.05)
        p = layer.padding
        found: dict[tuple[str, int], dict[str, float]] = {}
        for s in (layer.stride, 1):
            y = ops.conv(x, w, stride=s, padding=p, threads=threads)
            g = np.empty_like(y)  # the layout the forward returned, as in bench_ops.py
            g[...] = rng.standard_normal(y.shape, np.float32)
            found[("fwd", s)] = split(partial(ops.conv, x, w, None, s, p, threads=threads),
                                      repeats)
            found[("bwd", s)] = split(partial(ops.conv_backward, g, x, w, s, p, 1, 1, False,
                                              threads=threads), repeats)
        for pass_name in ("fwd", "bwd"):
            for s in (layer.stride, 1):
                t = found[(pass_name, s)]
                ratio = (f"{found[(pass_name, 1)]['path'] / t['path']:.2f}"
                         if s != 1 else "-")
                lines.append(f"| {layer.name} | {s} | {pass_name} | {t['serial'] * 1e3:.1f} | "
                             f"{t['path'] * 1e3:.1f} | {t['total'] * 1e3:.1f} | "
                             f"{t['total'] / t['path']:.2f} | {t['sections']:.0f} | {ratio} |")
    return "\n".join(lines)
