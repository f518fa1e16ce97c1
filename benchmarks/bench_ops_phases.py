"""Where stridelab.ops spends a strided layer's time, phase by phase, next to its stride-1 twin.

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/bench_ops_phases.py [--repeats N]``.

Same layers as ``bench_ops.py`` (batch 8, float32, NCHW input). Every call runs with
``threads=1`` and is timed in *thread CPU time* (``time.thread_time``), so other processes on a
shared machine slow it only through shared caches, not by taking the core away, and the four
calls of a layer (fwd / bwd at both strides) run round-robin: the phases of one call add up to
its time. Phases: the padded channels-last layout copy, the patch gather,
the GEMMs (``np.matmul``), col2im (adding patch gradients into the input gradient) and the rest
(zero-filled buffers, subsample copies, scatters, bookkeeping). Each row keeps the fastest of
``--repeats`` rounds. The last columns are time(stride 1) / time(stride 2) for the GEMMs alone
and for the whole call: stride 2 has 4x fewer MACs, so every phase whose time does not shrink
4x pulls the call's ratio below the GEMMs'. Prints a markdown table; never asserts on time.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _ops_runners import BATCH, LAYERS, Layer  # noqa: E402
from stridelab import ops  # noqa: E402
from stridelab.ops import _gemm  # noqa: E402

PHASES = ("layout copy", "gather", "GEMM", "col2im")


@contextmanager
def _phase_clock(spent: dict[str, float]) -> Iterator[None]:
    """Accumulate thread CPU time per phase while the engine runs (single-threaded calls)."""
    patched: list[tuple[Any, str, Any]] = [
        (_gemm, "padded_view", "layout copy"), (_gemm, "gather", "gather"),
        (np, "matmul", "GEMM"), (_gemm, "_col2im", "col2im"), (_gemm, "_col2im_first", "col2im"),
    ]
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in patched]

    def timed(real: Callable[..., Any], phase: str) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.thread_time()
            try:
                return real(*args, **kwargs)
            finally:
                spent[phase] += time.thread_time() - start
        return wrapper

    for (owner, name, phase), (_, _, real) in zip(patched, originals):
        setattr(owner, name, timed(real, phase))
    try:
        yield
    finally:
        for owner, name, real in originals:
            setattr(owner, name, real)


def measure(calls: dict[Any, Callable[[], object]], repeats: int) -> dict[Any, dict[str, float]]:
    """Per call, its fastest of ``repeats`` runs: seconds per phase, ``rest`` and ``total``.

    The calls are run round-robin (a, b, c, a, b, c, ...), so a change of load on the machine
    hits all of them alike and their ratios stay comparable.
    """
    for call in calls.values():
        call()  # warm: buffers, cached weight matrices
    best: dict[Any, dict[str, float]] = {key: {} for key in calls}
    for _ in range(repeats):
        for key, call in calls.items():
            spent = dict.fromkeys(PHASES, 0.0)
            with _phase_clock(spent):
                start = time.thread_time()
                call()
                total = time.thread_time() - start
            if not best[key] or total < best[key]["total"]:
                best[key] = {**spent, "rest": total - sum(spent.values()), "total": total}
    return best


def layer_rows(layer: Layer, repeats: int) -> list[str]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, layer.in_channels, layer.size, layer.size), np.float32)
    w = rng.standard_normal((layer.out_channels, layer.in_channels, layer.kernel, layer.kernel),
                            np.float32) * np.float32(0.05)
    p = layer.padding
    calls: dict[tuple[str, int], Callable[[], object]] = {}
    for s in (layer.stride, 1):
        y = ops.conv(x, w, stride=s, padding=p, threads=1)
        g = np.empty_like(y)  # the layout the forward returned, as in a training loop
        g[...] = rng.standard_normal(y.shape, np.float32)
        calls[("fwd", s)] = partial(ops.conv, x, w, None, s, p, threads=1)
        calls[("bwd", s)] = partial(ops.conv_backward, g, x, w, s, p, 1, 1, False, threads=1)
    found = measure(calls, repeats)
    rows = []
    for pass_name in ("fwd", "bwd"):
        dense = found[(pass_name, 1)]
        for s in (layer.stride, 1):
            t = found[(pass_name, s)]
            cells = " | ".join(f"{t[k] * 1e3:.1f}" for k in (*PHASES, "rest", "total"))
            ratios = (f"{dense['GEMM'] / t['GEMM']:.2f} | {dense['total'] / t['total']:.2f}"
                      if s != 1 else "- | -")
            rows.append(f"| {layer.name} | {s} | {pass_name} | {cells} | {ratios} |")
    return rows


def phase_table(repeats: int) -> str:
    """The markdown table for every layer of ``bench_ops.py`` (also used by it)."""
    lines = ["| layer | stride | pass | " + " | ".join(f"{p} ms" for p in PHASES)
             + " | rest ms | total ms | GEMM s1/s2 | total s1/s2 |",
             "|---|---|---|" + "---|" * (len(PHASES) + 4)]
    for layer in LAYERS:
        lines.extend(layer_rows(layer, repeats))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="rounds per layer (default 5)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    print(phase_table(args.repeats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
