"""stridelab.ops against PyTorch, two NumPy idioms and its own GEMM floor on ResNet-50's strided layers.

Run: ``.venv/bin/python benchmarks/bench_ops.py [--quick] [--repeats N] [--budget S] [--settle S]
[--no-doc]``.

Batch 8, float32, NCHW input. Layers: the stem (7x7/2, 3->64, 224x224, pad 3), a 3x3/2
(128->128, 56x56, pad 1) and a 1x1/2 projection (256->512, 56x56), each also at stride 1 on the
same input. Forward, and backward = grad_x + grad_weight (no bias). All implementations of a row
are timed round-robin, best of ``--repeats``, each timed call after ``--settle`` idle seconds
(threads a threaded BLAS call leaves spinning would otherwise slow the next one); GFLOP/s
counts FLOPs = 2 * MACs. PyTorch runs with as many threads as stridelab uses. The header
names the CPU, NumPy's BLAS and kernels (threadpoolctl), thread counts and the environment
variables that change them. Prints a table, the targets of issue 15 (MET / NOT MET, and for
each NOT MET one the score of an engine running at its GEMM floor), the per-phase split of
every call on one thread (``bench_ops_phases.py``), the serial part and critical path of every
call on the engine's threads (``_ops_threads.py``) and, unless ``--no-doc``, rewrites
docs/ops-benchmark.md. Never asserts on time.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _ops_memory import peak_bytes  # noqa: E402
from _ops_report import Memory, Row, render_doc, render_table, targets  # noqa: E402
from _ops_runners import BATCH, LAYERS, SETTLE, run_layer  # noqa: E402
from _ops_threads import thread_table  # noqa: E402
from bench_ops_phases import phase_table  # noqa: E402
from stridelab.ops._parallel import cores, current_threads  # noqa: E402
from stridelab.ops._workspace import cache_bytes, column_bytes  # noqa: E402

DOC = Path(__file__).resolve().parent.parent / "docs" / "ops-benchmark.md"
ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
            "MKL_NUM_THREADS", "STRIDELAB_NUM_THREADS")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _blas() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - a runtime dependency
        return "unknown BLAS (threadpoolctl missing)"
    found = [f"{i.get('internal_api')} {i.get('version')}, {i.get('architecture')} kernels, "
             f"{i.get('num_threads')} threads ({Path(i.get('filepath', '?')).name})"
             for i in threadpool_info() if i.get("user_api") == "blas"]
    return "; ".join(found) or "no BLAS found by threadpoolctl"


def machine() -> list[str]:
    env = ", ".join(f"{name}={os.environ[name]!r}" if name in os.environ else f"{name} unset"
                    for name in ENV_VARS)
    return [
        f"CPU: {_cpu_model()}, {cores()} cores usable, L2 {cache_bytes() >> 10} KiB per core "
        f"(stridelab's patch-matrix pieces: {column_bytes() >> 10} KiB forward, "
        f"{column_bytes(backward=True) >> 10} KiB backward)",
        f"NumPy {np.__version__} BLAS: {_blas()}",
        f"threads: stridelab {current_threads()}, torch {torch.get_num_threads()}; "
        f"Python {platform.python_version()}, torch {torch.__version__}",
        f"environment: {env}",
        f"load average at the start (1, 5, 15 min): {_load()} on {cores()} cores "
        "(a value above the core count means other processes shared the machine: noisy ratios)",
    ]


def _load() -> str:
    try:
        return ", ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover - not available
        return "unknown"


def measure_memory() -> Memory:
    stem = LAYERS[0]
    peaks = {impl: peak_bytes(impl, BATCH, stem.in_channels, stem.out_channels, stem.kernel,
                              stem.stride, stem.padding, stem.size)
             for impl in ("stridelab", "im2col", "einsum")}
    return Memory(peaks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 repeats instead of 7")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved rounds per row")
    parser.add_argument("--budget", type=float, default=20.0,
                        help="seconds per row before fewer rounds are run (default 20)")
    parser.add_argument("--settle", type=float, default=SETTLE,
                        help=f"idle seconds before each timed call, so threads a previous "
                             f"implementation left spinning stop (default {SETTLE})")
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite the doc page")
    args = parser.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 7)
    if repeats < 1:
        parser.error("--repeats must be >= 1")
    if args.budget <= 0:
        parser.error("--budget must be > 0")
    if args.settle < 0:
        parser.error("--settle must be >= 0")
    torch.set_num_threads(current_threads())
    info = machine()
    print("\n".join(info))
    print(f"best of {repeats} interleaved warm runs, batch {BATCH}, float32\n", flush=True)
    rows: list[Row] = []
    for layer in LAYERS:
        rows.extend(run_layer(layer, repeats, args.budget, args.settle))
    memory = measure_memory()
    phases = phase_table(min(repeats, 5))
    threads = thread_table(current_threads(), min(repeats, 5))
    table = render_table(rows)
    verdicts = targets(rows, memory)
    print(table)
    print()
    print("\n".join(verdicts))
    print()
    print(phases)
    print()
    print(threads)
    if not args.no_doc:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        text = render_doc(table, verdicts, info, stamp, repeats, phases, threads, args.settle)
        DOC.parent.mkdir(parents=True, exist_ok=True)
        tmp = DOC.with_suffix(".md.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, DOC)
        print(f"\nwrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
