"""stridelab.ops against PyTorch and two NumPy idioms on ResNet-50's strided layers.

Run: ``.venv/bin/python benchmarks/bench_ops.py [--quick] [--repeats N] [--no-doc]``.

Batch 8, float32. Layers: the stem (7x7/2, 3->64, 224x224, pad 3), a 3x3/2 (128->128, 56x56,
pad 1) and a 1x1/2 projection (256->512, 56x56), each also at stride 1 on the same input.
Forward, and backward = grad_x + grad_weight (no bias). Times are the best of ``--repeats`` warm
runs; GFLOP/s counts FLOPs = 2 * MACs (backward = 2 * forward). PyTorch runs with
``torch.set_num_threads(2)`` in NCHW and channels_last. Prints a table, the targets of issue 3,
and (unless ``--no-doc``) rewrites docs/ops-benchmark.md. Never asserts on time.

The BLAS kernels NumPy uses (OpenBLAS's choice, or ``OPENBLAS_CORETYPE`` from the environment)
are printed in the header: they set the ceiling for every NumPy implementation here.
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
from _ops_report import Row, render_doc, render_table, targets  # noqa: E402
from _ops_runners import LAYERS, run_layer  # noqa: E402


def _cpu_info() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return ""

DOC = Path(__file__).resolve().parent.parent / "docs" / "ops-benchmark.md"


def machine() -> str:
    model = "unknown CPU"
    for line in _cpu_info().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    try:
        from threadpoolctl import threadpool_info

        blas = ", ".join(f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')} "
                         f"kernels, {i.get('num_threads')} threads)"
                         for i in threadpool_info() if i.get("user_api") == "blas")
    except ImportError:  # pragma: no cover
        blas = "unknown BLAS"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{model}, {cores} cores, no GPU; Python {platform.python_version()}, NumPy "
            f"{np.__version__} with {blas}; torch {torch.__version__} "
            f"({torch.get_num_threads()} threads)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 repeats instead of 5")
    parser.add_argument("--repeats", type=int, default=None, help="warm runs per timing")
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite the doc page")
    args = parser.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 5)
    if repeats < 1:
        parser.error("--repeats must be >= 1")
    torch.set_num_threads(2)
    info = machine()
    print(f"machine: {info}")
    print(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}; "
          f"best of {repeats} warm runs, batch 8, float32\n")
    rows: list[Row] = []
    for layer in LAYERS:
        rows.extend(run_layer(layer, repeats))
    table = render_table(rows)
    verdicts = targets(rows)
    print(table)
    print()
    print("\n".join(verdicts))
    if not args.no_doc:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        text = render_doc(table, verdicts, info, stamp, repeats,
                          os.environ.get("OPENBLAS_CORETYPE", "(unset)"))
        DOC.parent.mkdir(parents=True, exist_ok=True)
        tmp = DOC.with_suffix(".md.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, DOC)
        print(f"\nwrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
