"""Peak memory of one forward call, each measured in a fresh interpreter (tracemalloc).

NumPy reports its array allocations to tracemalloc, so the peak counts every array the call
creates (patch matrices, padded copies, per-thread buffers, the result) and nothing allocated
before it (the inputs). A fresh process means a cold call: stridelab's reusable per-thread
buffers are allocated inside the measurement, not hidden by an earlier call.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"

_SCRIPT = """
import sys, tracemalloc
import numpy as np
sys.path[:0] = [{here!r}, {src!r}]
from _ops_idioms import einsum_forward, im2col_forward
from stridelab import ops
rng = np.random.default_rng(0)
x = rng.standard_normal(({batch}, {cin}, {size}, {size}), np.float32)
w = rng.standard_normal(({cout}, {cin}, {k}, {k}), np.float32)
fns = {{
    "stridelab": lambda: ops.conv(x, w, None, {stride}, {padding}),
    "im2col": lambda: im2col_forward(x, w, {stride}, {padding}),
    "einsum": lambda: einsum_forward(x, w, {stride}, {padding}),
}}
tracemalloc.start()
y = fns[{impl!r}]()
print(tracemalloc.get_traced_memory()[1])
"""


def peak_bytes(impl: str, batch: int, cin: int, cout: int, k: int, stride: int, padding: int,
               size: int) -> int:
    """Peak bytes NumPy allocated during one cold ``impl`` forward (output included)."""
    code = _SCRIPT.format(here=str(HERE), src=str(SRC), batch=batch, cin=cin, cout=cout, k=k,
                          stride=stride, padding=padding, size=size, impl=impl)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, env=dict(os.environ))
    return int(result.stdout.strip().splitlines()[-1])
