"""Timed runs for bench_ops.py: one layer at its stride and at stride 1, every implementation.

Implementations are timed round-robin (A, B, C, A, B, C, ...), at both strides of a layer in
the same rounds, and each keeps its best time, so load from other processes hits all of them
alike; ratios are what to read on a busy machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

from _ops_floor import gemm_flops, record, replay
from _ops_idioms import einsum_backward, einsum_forward, im2col_backward, im2col_forward
from _ops_report import GEMM, IMPLS, Row
from stridelab import arith, ops
from stridelab.ops._parallel import current_threads


@dataclass(frozen=True)
class Layer:
    name: str
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    padding: int
    size: int


LAYERS = [
    Layer("stem 7x7 3->64 @224", 3, 64, 7, 2, 3, 224),
    Layer("3x3 128->128 @56", 128, 128, 3, 2, 1, 56),
    Layer("1x1 256->512 @56", 256, 512, 1, 2, 0, 56),
]
BATCH = 8


SETTLE = 0.15  # seconds of idle before each timed call (see best_times)


def best_times(fns: dict[str, Callable[[], object]], repeats: int, budget: float,
               settle: float = SETTLE) -> dict[str, float]:
    """Best of up to ``repeats`` interleaved rounds (fewer if a round exceeds ``budget`` / repeats).

    Before every timed call the process sleeps ``settle`` seconds: a threaded BLAS call leaves
    its worker threads spinning (OpenBLAS: 2^28 cycles by default, about 0.1 s here), and
    without a pause they take a core from whichever implementation runs next (measured: the
    stridelab 1x1 stride-2 backward 85-91 ms right after the im2col idiom, 65 ms after a pause,
    on a loaded machine). The pause is not timed.
    """
    best = {}
    for name, fn in fns.items():  # warm: allocations, BLAS threads, oneDNN primitives
        time.sleep(settle)
        start = time.perf_counter()
        fn()
        best[name] = time.perf_counter() - start
    rounds = max(2, min(repeats, int(budget / max(sum(best.values()), 1e-9))))
    for _ in range(rounds):
        for name, fn in fns.items():
            time.sleep(settle)
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def _torch_fns(x: np.ndarray, w: np.ndarray, g_shape: tuple[int, ...], s: int, p: int,
               channels_last: bool) -> tuple[Callable[[], object], Callable[[], object]]:
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    xt = torch.from_numpy(x).contiguous(memory_format=fmt)
    wt = torch.from_numpy(w).contiguous(memory_format=fmt)
    gt = torch.randn(g_shape).contiguous(memory_format=fmt)
    conv = torch.nn.functional.conv2d

    def fwd() -> object:
        with torch.no_grad():
            return conv(xt, wt, None, s, p)

    def bwd() -> object:
        return torch.ops.aten.convolution_backward(gt, xt, wt, None, [s, s], [p, p], [1, 1],
                                                   False, [0, 0], 1, [True, True, False])
    return fwd, bwd


def run_layer(layer: Layer, repeats: int, budget: float, settle: float = SETTLE) -> list[Row]:
    """Rows of ``layer`` at its stride and at stride 1. Both strides of a pass are timed in the
    same round-robin (every implementation at both strides, round after round), so the stride
    ratios compare calls made under the same load; ``budget`` is per stride."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, layer.in_channels, layer.size, layer.size), np.float32)
    w = rng.standard_normal((layer.out_channels, layer.in_channels, layer.kernel, layer.kernel),
                            np.float32) * np.float32(0.05)
    p, k = layer.padding, layer.kernel
    threads = current_threads()
    strides = (layer.stride, 1)
    calls: dict[int, dict[str, tuple[Callable[[], object], Callable[[], object]]]] = {}
    flops_of: dict[int, int] = {}
    for s in strides:
        out = arith.conv_output_size(layer.size, k, s, p)
        assert isinstance(out, int)
        flops_of[s] = 2 * BATCH * out * out * layer.out_channels * layer.in_channels * k * k
        y = ops.conv(x, w, stride=s, padding=p)
        g = np.empty_like(y)  # the layout the forward returned, as in a training loop
        g[...] = rng.standard_normal(y.shape, np.float32)
        g_nchw = np.ascontiguousarray(g)
        calls[s] = {
            "stridelab": (partial(ops.conv, x, w, None, s, p),
                          partial(ops.conv_backward, g, x, w, s, p, 1, 1, False)),
            "torch NCHW": _torch_fns(x, w, y.shape, s, p, channels_last=False),
            "torch CL": _torch_fns(x, w, y.shape, s, p, channels_last=True),
            "im2col": (partial(im2col_forward, x, w, s, p),
                       partial(im2col_backward, g_nchw, x, w, s, p)),
            "einsum": (partial(einsum_forward, x, w, s, p),
                       partial(einsum_backward, g_nchw, x, w, s, p)),
        }
    rows: dict[tuple[int, str], Row] = {}
    for pass_name, index, factor in (("fwd", 0, 1), ("bwd", 1, 2)):
        timed: dict[str, Callable[[], object]] = {}
        for s in strides:
            products = record(calls[s]["stridelab"][index])
            assert gemm_flops(products) == factor * flops_of[s], \
                "the engine's GEMMs must be exactly the MACs"
            timed.update({f"{impl}@{s}": calls[s][impl][index] for impl in IMPLS})
            timed[f"{GEMM}@{s}"] = replay(products, threads)
        times = best_times(timed, repeats, budget * len(strides), settle)
        for s in strides:
            mine = {impl: times[f"{impl}@{s}"] for impl in (*IMPLS, GEMM)}
            rows[(s, pass_name)] = Row(layer.name, s, s == layer.stride, pass_name,
                                       factor * flops_of[s], mine)
            print(f"  {layer.name} s{s} {pass_name}: " + ", ".join(
                f"{impl} {t * 1e3:.1f} ms" for impl, t in mine.items()), flush=True)
    return [rows[(s, pass_name)] for s in strides for pass_name in ("fwd", "bwd")]
